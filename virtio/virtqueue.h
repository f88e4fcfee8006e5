/*
 * Split virtqueues (virtio 1.2, 2.7), one implementation for every device.
 *
 * The driver runs concurrently on other CPUs and may rewrite any byte of
 * the rings at any time, so every descriptor is copied once and checked
 * after the copy, every guest address goes through guest_ptr(), and ring
 * indices are read and published with the barriers the spec asks for.
 *
 * A queue's whole state is a plain struct vq_state (what the driver
 * programmed plus the device's own indices) so a snapshot can save it; the
 * struct virtqueue around it only caches host pointers derived from it.
 */
#ifndef VMM_VIRTIO_VIRTQUEUE_H
#define VMM_VIRTIO_VIRTQUEUE_H

#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../log.h"
#include "../mem.h"

/* Largest queue any device offers. A chain (direct descriptors plus the
 * entries of its indirect table) is never longer than the queue. */
#define VQ_MAX_SIZE 256

struct vq_state {
	uint64_t desc_addr;  /* descriptor table */
	uint64_t avail_addr; /* driver area */
	uint64_t used_addr;  /* device area */
	uint16_t size;       /* QueueNum: a power of two, 1..max */
	uint8_t ready;       /* QueueReady */
	uint8_t signalled_valid; /* signalled_used holds a real value */
	uint16_t last_avail;     /* next avail ring entry the device reads */
	uint16_t used_idx;       /* next used ring entry; published as used->idx */
	uint16_t signalled_used; /* used_idx when interrupts were last considered */
	uint16_t published;      /* used->idx as last written */
};

struct virtqueue {
	struct vq_state *st;
	const struct guest_mem *mem;
	bool event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;  /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	/* Host views of the rings, checked by vq_enable(). */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_shadow; /* avail->idx as last read (acquire) ... */
	uint16_t shadow_at;    /* ... valid while last_avail is still this */
	bool shadow_ok;
	const char *name; /* for messages, e.g. "virtio-blk0 q0" */
	struct ratelimit rl;
};

/* One popped descriptor chain: device-readable segments first
 * (iov[0..nr_out)), then device-writable ones (iov[nr_out..nr_out+nr_in)).
 * Zero-length descriptors take no iov slot. */
struct vq_chain {
	uint16_t head;
	uint16_t nr_out, nr_in;
	uint16_t max_iov; /* capacity of iov, set by the caller */
	uint64_t out_len, in_len;
	struct iovec *iov;
};

enum vq_pop_result {
	VQ_EMPTY = 0,     /* nothing new in the avail ring */
	VQ_CHAIN = 1,     /* c holds a valid chain */
	VQ_BAD_CHAIN = 2, /* c->head was consumed but its chain is malformed:
			   * the caller returns it with vq_push(vq, head, 0) */
	VQ_BROKEN = -1,   /* the ring itself is unusable (avail index ran ahead,
			   * head out of range): the device needs a reset */
};

/* Ring sizes in bytes for a queue of `size` entries, event fields included. */
uint64_t vq_desc_bytes(uint16_t size);
uint64_t vq_avail_bytes(uint16_t size);
uint64_t vq_used_bytes(uint16_t size);

/* Check st (size a power of two <= max, rings aligned and inside RAM) and
 * set vq up over it. Returns 0, or -1 with a reason in *why. */
int vq_enable(struct virtqueue *vq, struct vq_state *st, const struct guest_mem *mem,
	      uint16_t max_size, bool event_idx, bool indirect, const char *name,
	      const char **why);
void vq_disable(struct virtqueue *vq);
bool vq_enabled(const struct virtqueue *vq);

int vq_pop(struct virtqueue *vq, struct vq_chain *c);
/* Put `head` in the used ring with `len` bytes written; not yet visible. */
void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len);
/* Make pushed entries visible (release). Returns true if there were any. */
bool vq_publish(struct virtqueue *vq);
/* After vq_publish(): does the driver want an interrupt (EVENT_IDX's
 * used_event, else VRING_AVAIL_F_NO_INTERRUPT)? */
bool vq_need_interrupt(struct virtqueue *vq);

/* Driver-notification suppression while the device is draining the ring.
 * vq_enable_notify() returns true if more buffers arrived meanwhile (the
 * caller must then keep processing, or it could miss them). */
void vq_disable_notify(struct virtqueue *vq);
bool vq_enable_notify(struct virtqueue *vq);
/* Has the driver made buffers available that vq_pop() has not taken?
 * (A fresh look at avail->idx, for a device polling the ring.) */
bool vq_has_avail(struct virtqueue *vq);

/* The spec's vring_need_event(): should moving old -> new_idx signal the
 * side that asked to hear about event_idx? */
static inline bool vq_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

#endif
