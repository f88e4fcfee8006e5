/*
 * virtio-blk (virtio 1.2, 5.2) over a raw image: IN, OUT, FLUSH, GET_ID,
 * DISCARD, WRITE_ZEROES; read-only disks; sync and io_uring engines.
 *
 * The device's whole state is struct virtio_blk_state: transport
 * registers and queues, device config, backend settings. Plain data, so
 * a snapshot can save it as is.
 */
#ifndef VMM_VIRTIO_BLK_H
#define VMM_VIRTIO_BLK_H

#include <linux/virtio_blk.h>
#include <stdbool.h>
#include <stdint.h>

#include "../vmm.h"
#include "blk_backend.h"
#include "disk.h"
#include "mmio.h"
#include "virtio.h"

#define VIRTIO_BLK_QUEUE_SIZE 256
/* Header and status take two descriptors of a chain. */
#define VIRTIO_BLK_SEG_MAX (VIRTIO_BLK_QUEUE_SIZE - 2)
#define VIRTIO_BLK_MAX_DISCARD_SECTORS (1U << 22) /* 2 GiB per segment */
#define VIRTIO_BLK_MAX_DISCARD_SEG 32
#define VIRTIO_BLK_DISCARD_ALIGNMENT 8 /* sectors: 4 KiB, the page size */
#define VIRTIO_BLK_MAX_WZ_SECTORS (1U << 22)
#define VIRTIO_BLK_MAX_WZ_SEG 32
#define VIRTIO_BLK_MAX_SEGS 32 /* the larger of the two segment limits */

/* The longest one pass over the ring may take before the rest of the
 * event loop gets a turn. */
#define BLK_BUDGET_NS (1000 * 1000ULL)

/* blk_parse(): the request has no status byte to report through. */
#define BLK_NO_STATUS 0x100

struct virtio_blk_settings {
	char path[VMM_DISK_PATH_MAX];
	char serial[VIRTIO_BLK_ID_BYTES]; /* NUL-padded, not terminated */
	uint8_t ro;
	uint8_t cache;  /* enum disk_cache */
	uint8_t engine; /* enum disk_engine actually in use */
	uint8_t pad[5];
};

struct virtio_blk_state {
	struct virtio_mmio_state transport;
	struct virtio_blk_config config;
	struct virtio_blk_settings settings;
};

/* What requests are checked against. */
struct blk_limits {
	uint64_t capacity; /* sectors */
	bool ro;
};

/* A request taken apart by blk_parse(). */
struct blk_parsed {
	uint32_t type;
	uint64_t sector;
	uint64_t offset;     /* sector * 512 */
	uint64_t len;        /* data bytes */
	struct iovec *data;  /* data segments (inside the chain's iov) */
	unsigned ndata;
	uint8_t *status;     /* the status byte in guest memory */
	uint32_t written;    /* used length on success: data in + status */
	unsigned nsegs;      /* DISCARD / WRITE_ZEROES ranges, copied out */
	struct virtio_blk_discard_write_zeroes segs[VIRTIO_BLK_MAX_SEGS];
};

/* Take a chain apart and check it: header, status byte, data, type,
 * read-only, range, length multiple of 512, discard / write-zeroes
 * ranges. Returns VIRTIO_BLK_S_OK (p is ready to execute), the status to
 * complete with (IOERR, UNSUPP; p->status and p->written are set), or
 * BLK_NO_STATUS. The chain's iov is trimmed in place. */
int blk_parse(struct vq_chain *c, const struct blk_limits *lim, struct blk_parsed *p);

struct blk_req;

/* Requests completed since creation, by type (metrics). */
struct virtio_blk_stats {
	uint64_t reads, writes, flushes, other; /* other: GET_ID, DISCARD, WRITE_ZEROES */
	uint64_t read_bytes, write_bytes;
	uint64_t errors; /* completed with IOERR or UNSUPP */
};

struct virtio_blk {
	struct virtio_blk_state st; /* everything a snapshot needs */
	struct virtio_dev vdev;
	struct disk_image img;
	struct blk_backend be;
	struct blk_limits lim;
	struct blk_req *reqs; /* VIRTIO_BLK_QUEUE_SIZE slots */
	uint16_t free[VIRTIO_BLK_QUEUE_SIZE]; /* indices of free slots */
	unsigned nfree;
	unsigned inflight; /* handed to the engine, not yet reaped */
	bool stalled;      /* out of request slots with work left in the ring */
	bool be_on_loop;
	struct virtio_blk_stats stats; /* under vdev.lock */
	struct ratelimit rl;
};

/* One disk in window `slot`, not yet wired to KVM. NULL on failure, with
 * *status the exit status (message printed). */
struct virtio_blk *virtio_blk_create(struct vm *vm, const struct disk_config *cfg, unsigned slot,
				     int *status);
void virtio_blk_destroy(struct virtio_blk *b);
/* Use the image at `path` from now on (same read-only mode, locked the
 * same way): the capacity is re-read and the driver gets a
 * configuration-change interrupt. Refused while requests are in flight.
 * Returns 0, or -1 with the reason in why. Event loop thread. */
int virtio_blk_swap_image(struct virtio_blk *b, const char *path, char *why, size_t n);
void virtio_blk_get_stats(struct virtio_blk *b, struct virtio_blk_stats *out);
/* Finish every request in flight (reaping completions on the caller's
 * thread, the event loop's), for a snapshot; new ones are not started.
 * Returns 0, or -1 if some were still in flight after timeout_ms. */
int virtio_blk_drain(struct virtio_blk *b, unsigned timeout_ms);

extern const struct virtio_device_kind virtio_blk_kind;

#endif
