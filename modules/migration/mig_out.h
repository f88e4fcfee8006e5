/*
 * Live migration, the sending side (mig_out.c): a thread of its own runs
 * the pre-copy passes and the final copy; the event loop only takes the
 * final state (vCPUs parked, devices quiet) and ends the migration.
 */
#ifndef VMM_MIGRATION_MIG_OUT_H
#define VMM_MIGRATION_MIG_OUT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mig.h"
#include "vmm.h"

enum mig_phase {
	MIG_SETUP,
	MIG_DISKS,
	MIG_PRECOPY,
	MIG_STOP_AND_COPY,
	MIG_COMPLETED,
	MIG_FAILED,
	MIG_CANCELLED,
};

#define MIG_MAX_PASSES 30
#define MIG_TINY_PAGES 64 /* a final copy this small is not worth another pass */
#define MIG_DEFAULT_DOWNTIME_MS 300
#define MIG_READY_TIMEOUT_MS 30000
#define MIG_DISK_CHUNK (256u << 10)

struct mig_request {
	char uri[512];
	uint64_t max_bw; /* bytes per second; 0: unlimited */
	uint32_t max_downtime_ms;
	bool copy_disks;
};

/* What the loop captured when it stopped the VM. */
struct mig_final {
	uint64_t *bits; /* the pages in `pages`, in order */
	uint8_t *pages; /* their contents */
	uint64_t npages;
	struct blob state;  /* everything but RAM */
	uint64_t paused_ns; /* CLOCK_REALTIME when the vCPUs stopped */
};

struct mig_progress {
	enum mig_phase phase;
	uint64_t bytes_sent, bytes_left, passes, expected_downtime_ms;
	double dirty_rate_mib_s;
	uint64_t start_ns, end_ns; /* CLOCK_MONOTONIC */
	char error[400];
};

struct mig_out {
	struct vm *vm;
	struct mig_request req;
	char *config; /* the VM configuration, JSON */
	unsigned ndisks;
	char *disk_path[VMM_MAX_DISKS];
	uint64_t disk_size[VMM_MAX_DISKS];
	uint32_t *disk_crc[VMM_MAX_DISKS]; /* per MIG_DISK_CHUNK, as sent */

	pthread_t thread;
	bool thread_started;
	int fd;	 /* the connection, -1 before */
	int efd; /* eventfd the loop watches: capture, or the end */
	atomic_bool cancel;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool want_capture, captured, finished;
	int capture_rc;
	struct mig_final final;
	bool held, was_running; /* the VM held paused by the capture */
	struct mig_progress p;	/* under lock */

	/* the thread's own */
	uint64_t *bits;
	size_t words;
	uint8_t *buf; /* MIG_PAGES_MAX pages */
	uint64_t pace_t0, pace_bytes;
};

/* Start one (event loop thread; the VM started). 0, or -1 with why. */
int mig_out_begin(struct vm *vm, struct mig_vm *mv, const struct mig_request *req, char *why,
		  size_t n);
/* Ask it to stop: the VM runs on here. false if none is under way. */
bool mig_out_cancel(struct mig_out *o);
/* A consistent copy of the progress. */
void mig_out_progress(struct mig_out *o, struct mig_progress *p);
bool mig_out_active(const struct mig_out *o);

#endif
