/*
 * Helpers for the virtqueue / virtio-mmio / virtio-blk unit tests: a
 * split ring laid out in a real guest_mem at fixed guest addresses, and
 * writers that play the driver's part (descriptors, avail entries).
 */
#ifndef VMM_TESTS_VQTEST_H
#define VMM_TESTS_VQTEST_H

#include <string.h>

#include "mem.h"
#include "virtio/virtqueue.h"

#define VQT_DESC 0x1000ULL
#define VQT_AVAIL 0x3000ULL
#define VQT_USED 0x4000ULL
#define VQT_BUF 0x10000ULL /* data buffers from here */

struct vqt {
	struct guest_mem mem;
	struct vq_state st;
	struct virtqueue vq;
	struct iovec iov[VQ_MAX_SIZE];
	struct vq_chain c;
};

static inline struct vring_desc *vqt_desc(struct vqt *t)
{
	return guest_ptr(&t->mem, VQT_DESC, 16);
}
static inline struct vring_avail *vqt_avail(struct vqt *t)
{
	return guest_ptr(&t->mem, VQT_AVAIL, 4);
}
static inline struct vring_used *vqt_used(struct vqt *t)
{
	return guest_ptr(&t->mem, VQT_USED, 4);
}
static inline uint16_t *vqt_used_event(struct vqt *t)
{
	return &vqt_avail(t)->ring[t->st.size];
}
static inline uint16_t *vqt_avail_event(struct vqt *t)
{
	return (uint16_t *)&vqt_used(t)->ring[t->st.size];
}

/* A queue of `size` entries over `mem_size` bytes of RAM. */
static inline int vqt_init(struct vqt *t, uint64_t mem_size, uint16_t size, bool event_idx,
			   bool indirect)
{
	memset(t, 0, sizeof(*t));
	if (guest_mem_init(&t->mem, mem_size, 0) < 0)
		return -1;
	t->st = (struct vq_state){ .desc_addr = VQT_DESC, .avail_addr = VQT_AVAIL,
				   .used_addr = VQT_USED, .size = size, .ready = 1 };
	const char *why;
	t->c.iov = t->iov;
	t->c.max_iov = VQ_MAX_SIZE;
	return vq_enable(&t->vq, &t->st, &t->mem, VQ_MAX_SIZE, event_idx, indirect, "test", &why);
}

static inline void vqt_free(struct vqt *t)
{
	guest_mem_destroy(&t->mem);
}

static inline void vqt_set(struct vqt *t, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
			   uint16_t next)
{
	vqt_desc(t)[i] = (struct vring_desc){ addr, len, flags, next };
}

/* An entry in an indirect table at guest address `table`. */
static inline void vqt_set_at(struct vqt *t, uint64_t table, uint16_t i, uint64_t addr,
			      uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc *d = guest_ptr(&t->mem, table + 16ULL * i, 16);
	*d = (struct vring_desc){ addr, len, flags, next };
}

/* The driver makes `head` available. */
static inline void vqt_offer(struct vqt *t, uint16_t head)
{
	struct vring_avail *a = vqt_avail(t);
	a->ring[a->idx % t->st.size] = head;
	a->idx++;
}

static inline int vqt_pop(struct vqt *t)
{
	return vq_pop(&t->vq, &t->c);
}

#endif
