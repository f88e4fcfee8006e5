/*
 * Split virtqueue walking, used-ring publication and notification
 * suppression. See virtqueue.h for the rules every access follows.
 *
 * Barriers (the driver is another CPU):
 *  - avail->idx is loaded with acquire, so the ring entries and descriptors
 *    it covers are read after it;
 *  - used entries are stored before used->idx is stored with release;
 *  - deciding whether to interrupt (reading used_event / avail->flags) and
 *    re-checking avail->idx after re-enabling notifications both follow a
 *    store the driver must see first, so they sit behind a full fence.
 */
#include "virtqueue.h"

#include <string.h>

static const char *vq_label(const struct virtqueue *vq)
{
	return vq->name ? vq->name : "virtqueue";
}

uint64_t vq_desc_bytes(uint16_t size)
{
	return 16ULL * size;
}

uint64_t vq_avail_bytes(uint16_t size)
{
	return 4 + 2ULL * size + 2; /* flags, idx, ring[size], used_event */
}

uint64_t vq_used_bytes(uint16_t size)
{
	return 4 + 8ULL * size + 2; /* flags, idx, ring[size], avail_event */
}

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

int vq_enable(struct virtqueue *vq, struct vq_state *st, const struct guest_mem *mem,
	      uint16_t max_size, bool event_idx, bool indirect, const char *name,
	      const char **why)
{
	memset(vq, 0, sizeof(*vq));
	vq->name = name;
	if (!is_pow2(st->size) || st->size > max_size) {
		*why = "queue size is not a power of two within QueueNumMax";
		return -1;
	}
	if ((st->desc_addr & 15) || (st->avail_addr & 1) || (st->used_addr & 3)) {
		*why = "ring address misaligned";
		return -1;
	}
	vq->desc = guest_ptr(mem, st->desc_addr, vq_desc_bytes(st->size));
	vq->avail = guest_ptr(mem, st->avail_addr, vq_avail_bytes(st->size));
	vq->used = guest_ptr(mem, st->used_addr, vq_used_bytes(st->size));
	if (!vq->desc || !vq->avail || !vq->used) {
		vq->desc = NULL;
		*why = "ring outside guest RAM";
		return -1;
	}
	vq->st = st;
	vq->mem = mem;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	return 0;
}

void vq_disable(struct virtqueue *vq)
{
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	vq->st = NULL;
}

bool vq_enabled(const struct virtqueue *vq)
{
	return vq->desc != NULL;
}

/* ---- chain walking ---- */

struct walk {
	const struct vring_desc *table; /* descriptor table being walked */
	uint16_t table_len;             /* its entries */
	bool in_indirect;
	unsigned count; /* buffer descriptors seen, direct and indirect together */
};

static int bad(struct virtqueue *vq, uint16_t head, const char *what)
{
	vmm_warn_ratelimited(&vq->rl, "%s: chain at head %u: %s; request failed", vq_label(vq),
			     head, what);
	return -1;
}

static int add_segment(struct virtqueue *vq, struct vq_chain *c, const struct vring_desc *d)
{
	bool writable = d->flags & VRING_DESC_F_WRITE;
	if (!writable && c->nr_in)
		return bad(vq, c->head, "device-readable descriptor after a writable one");
	if (d->len == 0)
		return 0; /* nothing to access; the address is never used */
	void *p = guest_ptr(vq->mem, d->addr, d->len);
	if (!p)
		return bad(vq, c->head, "buffer outside guest RAM");
	if (c->nr_out + c->nr_in >= c->max_iov)
		return bad(vq, c->head, "too many segments");
	c->iov[c->nr_out + c->nr_in] = (struct iovec){ .iov_base = p, .iov_len = d->len };
	if (writable) {
		c->nr_in++;
		c->in_len += d->len;
	} else {
		c->nr_out++;
		c->out_len += d->len;
	}
	return 0;
}

/* Switch w to the indirect table d describes. */
static int enter_indirect(struct virtqueue *vq, struct walk *w, uint16_t head,
			  const struct vring_desc *d)
{
	if (!vq->indirect)
		return bad(vq, head, "indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC");
	if (w->in_indirect)
		return bad(vq, head, "indirect descriptor inside an indirect table");
	if (d->flags & VRING_DESC_F_NEXT)
		return bad(vq, head, "indirect descriptor with NEXT set");
	if (d->len == 0 || d->len % sizeof(struct vring_desc))
		return bad(vq, head, "indirect table length not a positive multiple of 16");
	/* The descriptor pointing at the table is not a buffer: the chain is
	 * the buffers before it plus the table's entries. */
	w->count--;
	uint64_t entries = d->len / sizeof(struct vring_desc);
	if (entries + w->count > vq->st->size)
		return bad(vq, head, "chain longer than the queue");
	const struct vring_desc *t = guest_ptr(vq->mem, d->addr, d->len);
	if (!t)
		return bad(vq, head, "indirect table outside guest RAM");
	w->table = t;
	w->table_len = (uint16_t)entries;
	w->in_indirect = true;
	return 0;
}

static int walk_chain(struct virtqueue *vq, struct vq_chain *c)
{
	struct walk w = { .table = vq->desc, .table_len = vq->st->size };
	uint16_t i = c->head;
	for (;;) {
		struct vring_desc d;
		/* One copy: the driver may rewrite the table while we look. */
		memcpy(&d, &w.table[i], sizeof(d));
		/* A chain can't revisit a descriptor, so a loop shows up as
		 * a chain longer than the queue. */
		if (++w.count > vq->st->size)
			return bad(vq, c->head, "descriptor loop or chain longer than the queue");
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (enter_indirect(vq, &w, c->head, &d) < 0)
				return -1;
			i = 0;
			continue;
		}
		if (add_segment(vq, c, &d) < 0)
			return -1;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= w.table_len)
			return bad(vq, c->head, "next index out of range");
		i = d.next;
	}
	if (c->out_len > UINT32_MAX || c->in_len > UINT32_MAX)
		return bad(vq, c->head, "chain larger than 4 GiB");
	return 0;
}

int vq_pop(struct virtqueue *vq, struct vq_chain *c)
{
	struct vq_state *st = vq->st;
	/* The avail index as last read covers entries not yet taken: use it
	 * without touching the driver's cache line again (unless last_avail
	 * was changed behind our back, e.g. by a restore or vhost). */
	uint16_t avail_idx = vq->avail_shadow, pending = 0;
	if (vq->shadow_ok && vq->shadow_at == st->last_avail)
		pending = (uint16_t)(avail_idx - st->last_avail);
	if (pending == 0 || pending > st->size) {
		avail_idx = vq->avail_shadow = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
		vq->shadow_ok = true;
		pending = (uint16_t)(avail_idx - st->last_avail);
	}
	if (pending == 0)
		return VQ_EMPTY;
	if (pending > st->size) {
		vmm_warn_ratelimited(&vq->rl, "%s: avail index %u ran %u entries ahead of %u",
				     vq_label(vq), avail_idx, pending, st->last_avail);
		return VQ_BROKEN;
	}
	uint16_t head = __atomic_load_n(&vq->avail->ring[st->last_avail & (st->size - 1)],
					__ATOMIC_RELAXED);
	if (head >= st->size) {
		vmm_warn_ratelimited(&vq->rl, "%s: avail ring head %u out of range (size %u)",
				     vq_label(vq), head, st->size);
		return VQ_BROKEN;
	}
	st->last_avail++;
	vq->shadow_at = st->last_avail;
	c->head = head;
	c->nr_out = c->nr_in = 0;
	c->out_len = c->in_len = 0;
	return walk_chain(vq, c) < 0 ? VQ_BAD_CHAIN : VQ_CHAIN;
}

/* ---- used ring ---- */

void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len)
{
	struct vq_state *st = vq->st;
	struct vring_used_elem *e = &vq->used->ring[st->used_idx & (st->size - 1)];
	__atomic_store_n(&e->id, (uint32_t)head, __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, len, __ATOMIC_RELAXED);
	st->used_idx++;
}

bool vq_publish(struct virtqueue *vq)
{
	struct vq_state *st = vq->st;
	if (st->used_idx == st->published)
		return false;
	__atomic_store_n(&vq->used->idx, st->used_idx, __ATOMIC_RELEASE);
	st->published = st->used_idx;
	return true;
}

bool vq_need_interrupt(struct virtqueue *vq)
{
	struct vq_state *st = vq->st;
	/* Our used->idx store must be visible before we read what the driver
	 * asked for, or both sides could decide the other will act. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(__atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED) &
			 VRING_AVAIL_F_NO_INTERRUPT);
	uint16_t used_event = __atomic_load_n(&vq->avail->ring[st->size], __ATOMIC_RELAXED);
	uint16_t old = st->signalled_used;
	bool valid = st->signalled_valid;
	st->signalled_used = st->published;
	st->signalled_valid = 1;
	return !valid || vq_need_event(used_event, st->published, old);
}

/* ---- driver notifications ---- */

static uint16_t *avail_event(struct virtqueue *vq)
{
	/* After ring[size]: 8-byte entries keep it 2-aligned. */
	return (uint16_t *)&vq->used->ring[vq->st->size];
}

void vq_disable_notify(struct virtqueue *vq)
{
	/* With EVENT_IDX, leaving avail_event where it is already stops
	 * notifications for entries past it. */
	if (!vq->event_idx)
		__atomic_store_n(&vq->used->flags, VRING_USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
}

bool vq_enable_notify(struct virtqueue *vq)
{
	struct vq_state *st = vq->st;
	if (vq->event_idx)
		__atomic_store_n(avail_event(vq), st->last_avail, __ATOMIC_RELAXED);
	else
		__atomic_store_n(&vq->used->flags, 0, __ATOMIC_RELAXED);
	/* The driver must see the store above before we look again, or a
	 * buffer added in between would get neither a notify nor a look. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) != st->last_avail;
}

bool vq_has_avail(struct virtqueue *vq)
{
	return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) != vq->st->last_avail;
}
