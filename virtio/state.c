/*
 * Saved state of virtio devices (state.h): the transport's part, common to
 * every kind, and what each kind adds (its config space and backend).
 */
#include "state.h"

#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../vmm.h"
#include "balloon.h"
#include "blk.h"
#include "mmio.h"
#include "net.h"

size_t virtio_state_size(const struct virtio_dev *d)
{
	switch (d->ops->device_id) {
	case VIRTIO_ID_BLOCK:
		return sizeof(struct virtio_blk_state);
	case VIRTIO_ID_NET:
		return sizeof(struct virtio_net_state);
	case VIRTIO_ID_BALLOON:
		return sizeof(struct virtio_balloon_state);
	default:
		return 0;
	}
}

/* The device's own state struct (the transport's state lies inside it). */
static void *state_of(const struct virtio_dev *d)
{
	switch (d->ops->device_id) {
	case VIRTIO_ID_BLOCK:
		return &((struct virtio_blk *)d->opaque)->st;
	case VIRTIO_ID_NET:
		return &((struct virtio_net *)d->opaque)->st;
	case VIRTIO_ID_BALLOON:
		return &((struct virtio_balloon *)d->opaque)->st;
	default:
		return NULL;
	}
}

/* A virtio-net device holds receive chains popped ahead of a frame: give
 * them back empty (a driver drops a zero-length receive) and forget the
 * frame read ahead, so no buffer of the driver's is left in limbo. */
static void net_settle(struct virtio_net *n)
{
	struct virtqueue *vq = &n->vdev.vq[VIRTIO_NET_RXQ];
	if (vq_enabled(vq)) {
		for (unsigned i = 0; i < n->rx_nres; i++)
			vq_push(vq, n->rx_res[i].head, 0);
		if (n->rx_nres)
			virtio_dev_used(&n->vdev, VIRTIO_NET_RXQ);
	}
	net_rx_discard(n);
}

int virtio_state_save(struct virtio_dev *d, void *buf, size_t len, char *why, size_t n)
{
	size_t size = virtio_state_size(d);
	if (!size || len != size) {
		snprintf(why, n, "%s: saving this kind of device is not supported yet", d->name);
		return -1;
	}
	pthread_mutex_lock(&d->lock);
	if (d->ops->device_id == VIRTIO_ID_NET)
		net_settle(d->opaque);
	memcpy(buf, state_of(d), size);
	pthread_mutex_unlock(&d->lock);
	if (d->ops->device_id == VIRTIO_ID_NET) {
		/* The restored device sets the tap up again at its first kick. */
		struct virtio_net_state *s = buf;
		s->active = 0;
		s->offloads = 0;
		s->settings.vhost = 0;
	}
	return 0;
}

/* ---- checks ---- */

static int check_transport(const struct virtio_dev *d, const struct virtio_mmio_state *t, char *why,
			   size_t n)
{
	if (t->device_features != d->st->device_features) {
		snprintf(why, n, "%s: the saved device offered features %#llx, this one %#llx",
			 d->name, (unsigned long long)t->device_features,
			 (unsigned long long)d->st->device_features);
		return -1;
	}
	if ((t->driver_features & ~t->device_features) || t->needs_reset > 1 ||
	    t->reset_pending > 1) {
		snprintf(why, n, "%s: malformed transport state", d->name);
		return -1;
	}
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
		const struct vq_state *s = &t->queues[q];
		if (s->ready > 1 ||
		    (s->ready && (q >= d->ops->num_queues || !s->size ||
				  (s->size & (s->size - 1)) || s->size > d->ops->queue_max))) {
			snprintf(why, n, "%s: queue %u's saved state is malformed", d->name, q);
			return -1;
		}
		/* Its rings must lie in this VM's RAM (a dry run of the enable). */
		struct virtqueue scratch;
		struct vq_state copy = *s;
		const char *reason;
		if (s->ready && vq_enable(&scratch, &copy, d->mem, d->ops->queue_max, false, false,
					  "check", &reason) < 0) {
			snprintf(why, n, "%s queue %u: %s", d->name, q, reason);
			return -1;
		}
	}
	return 0;
}

static int check_blk(const struct virtio_blk *b, const struct virtio_blk_state *s, char *why,
		     size_t n)
{
	if (s->settings.ro != b->st.settings.ro) {
		snprintf(why, n, "%s: the disk was %s when saved", b->vdev.name,
			 s->settings.ro ? "read-only" : "writable");
		return -1;
	}
	if (s->config.capacity != b->st.config.capacity) {
		snprintf(why, n,
			 "disk %s: %llu sectors now, %llu when saved: the image changed size",
			 b->st.settings.path, (unsigned long long)b->st.config.capacity,
			 (unsigned long long)s->config.capacity);
		return -1;
	}
	return 0;
}

int virtio_state_check(const struct virtio_dev *d, const void *buf, size_t len, char *why, size_t n)
{
	size_t size = virtio_state_size(d);
	if (!size) {
		snprintf(why, n, "%s: restoring this kind of device is not supported yet", d->name);
		return -1;
	}
	if (len != size) {
		snprintf(why, n, "%s: saved state of %zu bytes, expected %zu", d->name, len, size);
		return -1;
	}
	/* The transport state sits first in every device's state struct. */
	struct virtio_mmio_state t;
	memcpy(&t, buf, sizeof(t));
	if (check_transport(d, &t, why, n) < 0)
		return -1;
	if (d->ops->device_id == VIRTIO_ID_BLOCK) {
		struct virtio_blk_state s;
		memcpy(&s, buf, sizeof(s));
		return check_blk(d->opaque, &s, why, n);
	}
	return 0;
}

/* ---- restore ---- */

/* The device's state struct gets the saved one; what belongs to this
 * host (image path, engine, tap name) stays the new device's. */
static void load(struct virtio_dev *d, const void *buf)
{
	if (d->ops->device_id == VIRTIO_ID_BLOCK) {
		struct virtio_blk *b = d->opaque;
		struct virtio_blk_settings keep = b->st.settings;
		memcpy(&b->st, buf, sizeof(b->st));
		b->st.settings = keep;
	} else if (d->ops->device_id == VIRTIO_ID_NET) {
		struct virtio_net *net = d->opaque;
		struct virtio_net_settings keep = net->st.settings;
		memcpy(&net->st, buf, sizeof(net->st));
		net->st.settings = keep;
		net->st.active = 0;
		net->st.offloads = 0;
	} else if (d->ops->device_id == VIRTIO_ID_BALLOON) {
		/* All of it: target, statistics, the buffer held (the rings it
		 * sits in come back with RAM); the timer follows the interval. */
		struct virtio_balloon *b = d->opaque;
		memcpy(&b->st, buf, sizeof(b->st));
		virtio_balloon_state_loaded(b);
	}
}

int virtio_state_restore(struct virtio_dev *d, const void *buf, size_t len, char *why, size_t n)
{
	if (virtio_state_check(d, buf, len, why, n) < 0)
		return -1;
	pthread_mutex_lock(&d->lock);
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
		vq_disable(&d->vq[q]);
	load(d, buf);
	int rc = 0;
	bool event_idx = virtio_dev_has_feature(d, VIRTIO_RING_F_EVENT_IDX);
	bool indirect = virtio_dev_has_feature(d, VIRTIO_RING_F_INDIRECT_DESC);
	for (unsigned q = 0; q < d->ops->num_queues && rc == 0; q++) {
		const char *reason;
		if (d->st->queues[q].ready &&
		    vq_enable(&d->vq[q], &d->st->queues[q], d->mem, d->ops->queue_max, event_idx,
			      indirect, d->vq_name[q], &reason) < 0) {
			snprintf(why, n, "%s queue %u: %s", d->name, q, reason);
			rc = -1;
		}
	}
	pthread_mutex_unlock(&d->lock);
	/* Buffers queued before the save may never be notified again. */
	if (rc == 0 && (d->st->status & VIRTIO_CONFIG_S_DRIVER_OK))
		for (unsigned q = 0; q < d->ops->num_queues; q++)
			if (d->st->queues[q].ready)
				virtio_dev_kick(d, q);
	return rc;
}

/* ---- quiesce, rings ---- */

int virtio_state_quiesce(struct vm *vm, unsigned timeout_ms, char *why, size_t n)
{
	for (unsigned i = 0; i < vm->nvirtio; i++) {
		struct virtio_dev *d = vm->virtio[i];
		if (d->ops->device_id != VIRTIO_ID_BLOCK)
			continue; /* the others finish their work synchronously */
		if (virtio_blk_drain(d->opaque, timeout_ms) < 0) {
			snprintf(why, n, "%s: I/O still in flight after %u ms", d->name,
				 timeout_ms);
			return -1;
		}
	}
	return 0;
}

void virtio_state_rings(struct vm *vm, void (*fn)(void *opaque, uint64_t gpa, uint64_t len),
			void *opaque)
{
	for (unsigned i = 0; i < vm->nvirtio; i++) {
		struct virtio_dev *d = vm->virtio[i];
		pthread_mutex_lock(&d->lock);
		for (unsigned q = 0; q < d->ops->num_queues; q++) {
			const struct vq_state *s = &d->st->queues[q];
			if (!vq_enabled(&d->vq[q]))
				continue;
			fn(opaque, s->desc_addr, vq_desc_bytes(s->size));
			fn(opaque, s->avail_addr, vq_avail_bytes(s->size));
			fn(opaque, s->used_addr, vq_used_bytes(s->size));
		}
		pthread_mutex_unlock(&d->lock);
	}
}
