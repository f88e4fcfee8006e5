/*
 * virtio-balloon (virtio 1.2, 5.5): the host sets a target (num_pages,
 * 4 KiB pages), the driver hands pages over on the inflate queue (their
 * host memory is given back: a hole punched in guest RAM's memfd) and
 * takes them again on the deflate queue; a statistics queue the host
 * polls by returning the driver's buffer; free page reporting (ranges the
 * driver reports free are given back the same way); deflate-on-OOM as a
 * plain feature bit.
 *
 * The device's whole state is struct virtio_balloon_state (transport
 * registers and queues, config space, settings, the guest's latest
 * statistics and the statistics buffer held): plain data, for snapshots.
 * Everything runs on the event loop thread (queue ioeventfds, the
 * statistics timerfd, API calls), under the device lock.
 */
#ifndef VMM_VIRTIO_BALLOON_H
#define VMM_VIRTIO_BALLOON_H

#include <linux/virtio_balloon.h>
#include <stdbool.h>
#include <stdint.h>

#include "../vmm.h"
#include "mmio.h"
#include "virtio.h"

#define VIRTIO_BALLOON_QUEUE_SIZE 256
#define BALLOON_PAGE_SIZE (1ULL << VIRTIO_BALLOON_PFN_SHIFT)
#define BALLOON_PAGES_PER_MIB (MIB / BALLOON_PAGE_SIZE)
/* One inflate / deflate chain carries at most this many PFNs (Linux sends
 * 256): a longer one is refused whole, so a pass stays short. */
#define BALLOON_MAX_PFNS 65536
/* Chains per pass over a queue before the rest of the event loop runs. */
#define BALLOON_BUDGET 64
/* A statistics buffer holds at most this many (tag, value) entries. */
#define BALLOON_STATS_MAX_ENTRIES 64
/* Tags 0..15: the ten of virtio 1.2 and the six newer Linux sends (OOM
 * kills, allocation stalls, scans, reclaims), all named by Firecracker. */
#define BALLOON_STAT_TAGS 16
#define BALLOON_STAT_LEN 10 /* u16 tag, u64 value, packed */

#ifndef VIRTIO_BALLOON_F_REPORTING
#define VIRTIO_BALLOON_F_REPORTING 5
#endif

/* What a queue is for. Linux numbers the queues that exist in this order,
 * consecutively: statsq only with STATS_VQ, reporting_vq only with
 * REPORTING (free page hinting is never offered). */
enum balloon_queue {
	BALLOON_Q_INFLATE,
	BALLOON_Q_DEFLATE,
	BALLOON_Q_STATS,
	BALLOON_Q_REPORTING,
	BALLOON_Q_NONE,
};

struct virtio_balloon_settings {
	uint32_t stats_interval_s; /* 0: no statistics queue */
	uint8_t deflate_on_oom;
	uint8_t free_page_reporting;
	uint8_t pad[2];
};

/* The guest's latest statistics: val[tag] for each tag bit set in valid. */
struct virtio_balloon_guest_stats {
	uint64_t val[BALLOON_STAT_TAGS];
	uint32_t valid;
	uint32_t updates; /* buffers parsed */
};

struct virtio_balloon_state {
	struct virtio_mmio_state transport;
	struct virtio_balloon_config config; /* num_pages: ours; actual: the driver's */
	struct virtio_balloon_settings settings;
	struct virtio_balloon_guest_stats stats;
	uint16_t stats_head; /* the driver's statistics buffer, held until we want more */
	uint8_t stats_held;
	uint8_t pad[5];
};

/* Counters since creation, for metrics and tests. */
struct virtio_balloon_counters {
	uint64_t inflated_pages;  /* valid PFNs received on the inflate queue */
	uint64_t deflated_pages;  /* ... on the deflate queue */
	uint64_t reported_bytes;  /* free page reporting: bytes in the ranges reported */
	uint64_t bad_pfns;	  /* PFNs outside guest RAM, ignored */
	uint64_t bad_chains;	  /* chains refused whole (malformed, writable, too long) */
	uint64_t discard_errors;  /* the host refused to give memory back */
	uint64_t stats_updates;	  /* statistics buffers received */
	uint64_t stats_malformed; /* ... that could not be parsed */
};

/* A copy of what GET /balloon/statistics reports. */
struct virtio_balloon_report {
	uint32_t target_pages, actual_pages;
	struct virtio_balloon_guest_stats stats;
};

struct virtio_balloon {
	struct virtio_balloon_state st; /* everything a snapshot needs */
	struct virtio_dev vdev;
	struct virtio_device_ops ops; /* num_queues follows the offered features */
	int timer_fd;		      /* statistics polling; -1 without statistics */
	bool timer_on_loop;
	struct virtio_balloon_counters ctr;
	struct iovec iov[VQ_MAX_SIZE];
	struct ratelimit rl;
};

/* ---- page lists and reports (balloon_pages.c): no lock, no I/O but the discard ---- */

struct balloon_pages_result {
	uint32_t valid;	 /* PFNs (or reported ranges) inside guest RAM */
	uint32_t bad;	 /* PFNs outside it, ignored */
	uint32_t errors; /* discards the host refused */
	uint64_t bytes;	 /* bytes in the ranges given back */
	int err;	 /* the last refused discard's -errno */
	const char *why; /* the chain was refused whole: why; NULL otherwise */
};

/* Reads a chain's readable bytes in order, across its buffers. */
struct balloon_cursor {
	const struct iovec *iov;
	unsigned n, i;
	size_t off;
};
void balloon_cursor_init(struct balloon_cursor *k, const struct vq_chain *c);
/* Copy the next len bytes out (once: the driver may be rewriting them);
 * false if the chain ends first. */
bool balloon_cursor_take(struct balloon_cursor *k, void *dst, size_t len);

/* An inflate (discard) or deflate (!discard) chain: little-endian u32
 * PFNs across its readable buffers, any layout. Runs of consecutive pages
 * are given back with one guest_mem_discard() each. */
void balloon_pfn_chain(const struct guest_mem *m, const struct vq_chain *c, bool discard,
		       struct balloon_pages_result *r);
/* A free page reporting chain: every buffer is a range the driver no
 * longer uses; the whole pages inside each are given back. */
void balloon_report_chain(const struct guest_mem *m, const struct vq_chain *c,
			  struct balloon_pages_result *r);

/* ---- statistics (balloon_stats.c) ---- */

/* Firecracker's BalloonStats field for a tag ("free_memory"), or NULL. */
const char *balloon_stat_name(unsigned tag);
/* Parse a statistics buffer (the chain's readable bytes, packed u16 tag +
 * u64 value, little-endian) into s, replacing what it held. Unknown tags
 * are skipped. Returns the entries read, or -1 (s unchanged) when the
 * chain is not a whole number of entries, is writable or too long. */
int balloon_stats_parse(const struct vq_chain *c, struct virtio_balloon_guest_stats *s);

/* ---- the device (balloon.c) ---- */

/* The device in window `slot`, not yet wired to KVM. NULL on failure, with
 * *status the exit status (message printed). */
struct virtio_balloon *virtio_balloon_create(struct vm *vm, const struct balloon_config *cfg,
					     unsigned slot, int *status);
void virtio_balloon_destroy(struct virtio_balloon *b);
/* The VM's balloon, or NULL. */
struct virtio_balloon *virtio_balloon_find(struct vm *vm);
/* A new target: num_pages changes and the driver gets a
 * configuration-change interrupt. */
void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t pages);
/* A new statistics interval (> 0): the buffer held goes back to the driver
 * now, then every `secs` seconds. Returns 0, or -1 with the reason in why
 * (the device has no statistics queue). */
int virtio_balloon_set_stats_interval(struct virtio_balloon *b, uint32_t secs, char *why, size_t n);
void virtio_balloon_get_report(struct virtio_balloon *b, struct virtio_balloon_report *out);
void virtio_balloon_get_counters(struct virtio_balloon *b, struct virtio_balloon_counters *out);
/* Its state struct was just loaded (virtio/state.c, lock held): the
 * statistics timer takes the loaded interval. */
void virtio_balloon_state_loaded(struct virtio_balloon *b);
/* Which queue index q is, given the features the driver accepted. */
enum balloon_queue virtio_balloon_queue_role(const struct virtio_balloon *b, unsigned q);

extern const struct virtio_device_kind virtio_balloon_kind;

#endif
