/*
 * The test guest's polling virtio-balloon driver (balloondev.c) and its
 * tests: `balloon` follows the host's target (balloon.c), `balloon_evil`
 * misbehaves (balloonevil.c). Constants are from the virtio 1.2 spec.
 */
#ifndef GUEST_BALLOON_H
#define GUEST_BALLOON_H

#include "virtio.h"

#define VIRTIO_ID_BALLOON 5
#define VBAL_F_STATS_VQ (1ULL << 1)
#define VBAL_F_DEFLATE_ON_OOM (1ULL << 2)
#define VBAL_F_REPORTING (1ULL << 5)
#define VBAL_S_MINFLT 3
#define VBAL_S_MEMFREE 4
#define VBAL_S_MEMTOT 5
#define VBAL_S_AVAIL 6
#define VBAL_CFG_NUM_PAGES 0
#define VBAL_CFG_ACTUAL 4

#define BALLOON_PAGE 4096ULL
#define BALLOON_QSIZE 64
#define BALLOON_PFNS 256 /* PFNs per inflate / deflate chain, as Linux */
#define BALLOON_NSTATS 4
#define BALLOON_TIMEOUT_NS (10ULL * 1000000000)

/* One statistics entry as the device reads it: packed, 10 bytes. */
struct vbal_stat {
	uint16_t tag;
	uint64_t val;
} __attribute__((packed));

struct balloondev {
	struct vdev dev;
	uint64_t offered;
	struct gvq inflate, deflate, stats, report;
	bool has_stats, has_report;
	uint32_t *pfns;		    /* BALLOON_PFNS entries */
	struct vbal_stat *stat_buf; /* BALLOON_NSTATS entries */
	uint64_t stats_sent;	    /* buffers handed to the device */
	uint64_t ram_bytes;	    /* MEMTOT */
	uint64_t free_bytes;	    /* MEMFREE and AVAIL, kept by the test */
};

/* guest.balloon_* options (main.c). */
struct balloon_options {
	uint64_t touch_mib;  /* pages to touch and balloon from (default 48) */
	uint64_t report_mib; /* free page reporting: MiB to report (default 4; 0: none) */
	uint64_t rounds;     /* target changes to follow before passing (default 3) */
	uint64_t hold;	     /* balloon_evil: wait for a target change before passing */
};
extern struct balloon_options balloon_opt;
bool parse_balloon_option(const char *key, const char *val);

/* Find and initialise the first balloon: every feature offered among
 * STATS_VQ, DEFLATE_ON_OOM and REPORTING is accepted, the queues that
 * gives are set up, and the statistics buffer is queued. */
bool balloon_open(struct balloondev *b, char *why, size_t n);
/* num_pages, read under an unchanged ConfigGeneration. */
uint32_t balloon_target(struct balloondev *b);
void balloon_set_actual(struct balloondev *b, uint32_t pages);
/* Give the pages [pfn, pfn + count) to the host (inflate) or take them
 * back (deflate), BALLOON_PFNS per chain. */
bool balloon_pages(struct balloondev *b, bool inflate, uint64_t pfn, uint32_t count, char *why,
		   size_t n);
/* Report [addr, addr + len) free and wait until the device returns it. */
bool balloon_report(struct balloondev *b, uint64_t addr, uint64_t len, char *why, size_t n);
/* The device returned the statistics buffer: refill it and queue it again. */
void balloon_poll_stats(struct balloondev *b);
/* Queue the chain at `head`, kick, and wait for it: its used length, or
 * -1 after BALLOON_TIMEOUT_NS. The statistics queue is served meanwhile. */
int64_t balloon_run(struct balloondev *b, struct gvq *q, uint16_t head);

bool test_balloon(char *why, size_t n);
bool test_balloon_evil(char *why, size_t n);

#endif
