/* Live migration, the receiving side (mig_in.c). */
#ifndef VMM_MIGRATION_MIG_IN_H
#define VMM_MIGRATION_MIG_IN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mig.h"
#include "stream.h"
#include "vmm.h"

enum mig_in_phase {
	MIG_IN_WAITING,	  /* listening */
	MIG_IN_RECEIVING, /* pre-copy */
	MIG_IN_LOADING,	  /* the VM is being built, then waits for GO */
	MIG_IN_COMPLETED, /* the VM runs here */
	MIG_IN_FAILED,
};

/* What the thread asks of the loop: to build the VM. */
enum mig_in_step { STEP_NONE, STEP_BUILD };

struct mig_in_progress {
	enum mig_in_phase phase;
	uint64_t bytes, downtime_us, total_ms;
	char error[400];
};

struct mig_in {
	struct vm *vm;
	struct vm_config *cfg;
	int listen_fd, fd, efd;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum mig_in_phase phase;
	enum mig_in_step want, done; /* asked of the loop, and done */
	int step_rc;
	char error[400];
	/* what arrived */
	struct mig_hello hello;
	char *config;
	size_t config_len;
	int memfd;
	uint8_t *mem;
	struct blob state;
	uint64_t paused_ns; /* the source's CLOCK_REALTIME when it stopped */
	/* downtime: from the source's pause (its CLOCK_REALTIME: one host, or
	 * clocks in step) to the vCPUs running here */
	uint64_t bytes, start_ns, downtime_us, total_ms;
	/* this VMM's own drives (--disk): where copied images go */
	unsigned ndisks;
	char *disk_path[VMM_MAX_DISKS];
	int disk_fd[VMM_MAX_DISKS];
};

void mig_in_progress(struct mig_in *in, struct mig_in_progress *p);

#endif
