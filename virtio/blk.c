/*
 * virtio-blk device: configuration, the request loop, completions.
 *
 * Requests are taken from the ring on the event loop thread (the queue's
 * ioeventfd), handed to the disk's engine in one batch, and completed
 * there too (the engine's eventfd), always under the device lock. The
 * guest is told about completions once per batch, subject to its
 * interrupt suppression.
 */
#include "blk.h"

#include <errno.h>
#include <linux/virtio_ids.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "../log.h"

struct blk_req {
	struct blk_io io; /* first: the engine hands it back */
	struct vq_chain chain;
	uint8_t *status;
	uint32_t written;
	struct iovec iov[VQ_MAX_SIZE];
};

static struct virtqueue *blk_vq(struct virtio_blk *b)
{
	return &b->vdev.vq[0];
}

/* Free slots are a stack of indices kept apart from the slots, so only
 * slots in use are ever touched (the pool is large, and mostly untouched
 * pages cost nothing); the most recently freed, still cache-warm, goes
 * out first. */
static struct blk_req *req_get(struct virtio_blk *b)
{
	return b->nfree ? &b->reqs[b->free[--b->nfree]] : NULL;
}

static void req_put(struct virtio_blk *b, struct blk_req *r)
{
	b->free[b->nfree++] = (uint16_t)(r - b->reqs);
}

/* Report `status` and return the chain. During a deferred reset the ring
 * is the driver's again: nothing is written. */
static void complete(struct virtio_blk *b, struct blk_req *r, uint8_t status)
{
	struct virtqueue *vq = blk_vq(b);
	if (status != VIRTIO_BLK_S_OK)
		b->stats.errors++;
	if (vq_enabled(vq) && !b->vdev.st->reset_pending) {
		*r->status = status;
		vq_push(vq, r->chain.head, status == VIRTIO_BLK_S_OK ? r->written : 1);
	}
	req_put(b, r);
}

static unsigned reap_all(struct virtio_blk *b)
{
	unsigned n = 0;
	struct blk_io *io;
	while ((io = b->be.engine->reap(&b->be))) {
		struct blk_req *r = (struct blk_req *)io;
		b->inflight--;
		if (io->result)
			vmm_warn_ratelimited(&b->rl, "%s: %s: I/O error: %s", b->vdev.name,
					     b->st.settings.path, strerror(-io->result));
		complete(b, r, io->result ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
		n++;
	}
	return n;
}

static void submit(struct virtio_blk *b, struct blk_req *r)
{
	b->inflight++;
	b->be.engine->submit(&b->be, &r->io);
}

static void get_id(struct virtio_blk *b, const struct blk_parsed *p)
{
	const char *src = b->st.settings.serial;
	uint64_t left = p->len;
	for (unsigned i = 0; i < p->ndata && left; i++) {
		size_t n = p->data[i].iov_len < left ? p->data[i].iov_len : (size_t)left;
		memcpy(p->data[i].iov_base, src, n);
		src += n;
		left -= n;
	}
}

/* DISCARD and WRITE_ZEROES: rare, done here with fallocate. */
static uint8_t run_ranges(struct virtio_blk *b, const struct blk_parsed *p)
{
	for (unsigned i = 0; i < p->nsegs; i++) {
		const struct virtio_blk_discard_write_zeroes *s = &p->segs[i];
		uint64_t off = s->sector << 9, len = (uint64_t)s->num_sectors << 9;
		bool unmap = s->flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
		int rc = p->type == VIRTIO_BLK_T_DISCARD ? disk_discard(b->img.fd, off, len)
							 : disk_write_zeroes(b->img.fd, off, len, unmap);
		if (rc < 0) {
			vmm_warn_ratelimited(&b->rl, "%s: %s: %s: %s", b->vdev.name,
					     b->st.settings.path,
					     p->type == VIRTIO_BLK_T_DISCARD ? "discard" : "write zeroes",
					     strerror(-rc));
			return VIRTIO_BLK_S_IOERR;
		}
	}
	return VIRTIO_BLK_S_OK;
}

static void start_rw(struct virtio_blk *b, struct blk_req *r, const struct blk_parsed *p)
{
	if (p->len == 0) {
		complete(b, r, VIRTIO_BLK_S_OK);
		return;
	}
	r->io = (struct blk_io){
		.op = p->type == VIRTIO_BLK_T_IN ? BLK_IO_READ : BLK_IO_WRITE,
		.iov = p->data,
		.niov = p->ndata,
		.offset = p->offset,
		.len = p->len,
		/* A driver that cannot flush gets write-through (5.2.6.2). */
		.dsync = b->st.settings.cache == DISK_CACHE_WRITEBACK &&
			 !virtio_dev_has_feature(&b->vdev, VIRTIO_BLK_F_FLUSH),
	};
	submit(b, r);
}

static void count(struct virtio_blk_stats *st, const struct blk_parsed *p)
{
	if (p->type == VIRTIO_BLK_T_IN) {
		st->reads++;
		st->read_bytes += p->len;
	} else if (p->type == VIRTIO_BLK_T_OUT) {
		st->writes++;
		st->write_bytes += p->len;
	} else if (p->type == VIRTIO_BLK_T_FLUSH) {
		st->flushes++;
	} else {
		st->other++;
	}
}

static void start(struct virtio_blk *b, struct blk_req *r)
{
	struct blk_parsed p;
	int s = blk_parse(&r->chain, &b->lim, &p);
	if (s == BLK_NO_STATUS) {
		vmm_warn_ratelimited(&b->rl, "%s: request without a writable status byte",
				     b->vdev.name);
		vq_push(blk_vq(b), r->chain.head, 0);
		req_put(b, r);
		return;
	}
	r->status = p.status;
	r->written = p.written;
	count(&b->stats, &p);
	if (s != VIRTIO_BLK_S_OK) {
		complete(b, r, (uint8_t)s);
		return;
	}
	switch (p.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		start_rw(b, r, &p);
		return;
	case VIRTIO_BLK_T_FLUSH:
		if (b->st.settings.cache == DISK_CACHE_UNSAFE || b->st.settings.ro) {
			complete(b, r, VIRTIO_BLK_S_OK);
			return;
		}
		r->io = (struct blk_io){ .op = BLK_IO_FLUSH };
		submit(b, r);
		return;
	case VIRTIO_BLK_T_GET_ID:
		get_id(b, &p);
		complete(b, r, VIRTIO_BLK_S_OK);
		return;
	default: /* DISCARD, WRITE_ZEROES */
		complete(b, r, run_ranges(b, &p));
		return;
	}
}

enum pop_result { POP_EMPTY, POP_STALLED, POP_BROKEN };

static enum pop_result pop_batch(struct virtio_blk *b)
{
	struct virtqueue *vq = blk_vq(b);
	for (;;) {
		struct blk_req *r = req_get(b);
		if (!r)
			return POP_STALLED;
		r->chain.iov = r->iov;
		r->chain.max_iov = VQ_MAX_SIZE;
		int rc = vq_pop(vq, &r->chain);
		if (rc == VQ_CHAIN) {
			start(b, r);
			continue;
		}
		if (rc == VQ_BAD_CHAIN)
			vq_push(vq, r->chain.head, 0);
		req_put(b, r);
		if (rc == VQ_EMPTY)
			return POP_EMPTY;
		if (rc == VQ_BROKEN)
			return POP_BROKEN;
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Drain the ring: everything available goes to the engine in one commit
 * per round; notifications stay off while we look, and are turned back
 * on only when the ring is seen empty afterwards. One call works for at
 * most BLK_BUDGET_NS, then lets the rest of the event loop run and comes
 * back: a guest that never stops submitting cannot starve it. */
static void process(struct virtio_blk *b)
{
	struct virtqueue *vq = blk_vq(b);
	uint64_t deadline = now_ns() + BLK_BUDGET_NS;
	b->stalled = false;
	for (;;) {
		vq_disable_notify(vq);
		enum pop_result rc = pop_batch(b);
		b->be.engine->commit(&b->be);
		unsigned reaped = reap_all(b);
		if (rc == POP_BROKEN) {
			virtio_dev_needs_reset(&b->vdev, "avail ring corrupt");
			break;
		}
		if (rc == POP_STALLED && !reaped) {
			b->stalled = true; /* a completion restarts us */
			break;
		}
		virtio_dev_used(&b->vdev, 0);
		if (now_ns() > deadline) {
			virtio_dev_kick(&b->vdev, 0); /* notifications stay off: we will be back */
			break;
		}
		if (rc == POP_STALLED)
			continue;
		if (!vq_enable_notify(vq))
			break;
	}
	virtio_dev_used(&b->vdev, 0);
}

static void blk_queue_notify(struct virtio_dev *d, unsigned q)
{
	(void)q;
	process(d->opaque);
}

static void on_engine_event(void *opaque, uint32_t events)
{
	struct virtio_blk *b = opaque;
	uint64_t count;
	(void)events;
	if (read(b->be.event_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&b->vdev.lock);
	reap_all(b);
	b->be.engine->commit(&b->be); /* the rest of short transfers */
	if (b->vdev.st->reset_pending) {
		if (!b->inflight)
			virtio_dev_reset_done(&b->vdev);
	} else if (b->stalled && virtio_dev_queue_live(&b->vdev, 0)) {
		process(b); /* slots are free again: take the rest of the ring */
	} else {
		virtio_dev_used(&b->vdev, 0);
	}
	pthread_mutex_unlock(&b->vdev.lock);
}

static bool blk_reset(struct virtio_dev *d)
{
	struct virtio_blk *b = d->opaque;
	b->stalled = false;
	return b->inflight == 0;
}

static void blk_destroy_dev(struct virtio_dev *d)
{
	virtio_blk_destroy(d->opaque);
}

static const struct virtio_device_ops blk_ops = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.num_queues = 1,
	.queue_max = VIRTIO_BLK_QUEUE_SIZE,
	.queue_notify = blk_queue_notify,
	.reset = blk_reset,
	.destroy = blk_destroy_dev,
};

/* ---- creation ---- */

static uint64_t blk_features(bool ro)
{
	uint64_t f = VIRTIO_TRANSPORT_FEATURES | (1ULL << VIRTIO_BLK_F_SEG_MAX) |
		     (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH);
	if (ro)
		return f | (1ULL << VIRTIO_BLK_F_RO);
	return f | (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
}

static void fill_state(struct virtio_blk *b, const struct disk_config *cfg)
{
	struct virtio_blk_settings *s = &b->st.settings;
	memcpy(s->path, cfg->path, sizeof(s->path));
	/* GET_ID's 20 bytes: NUL-padded, unterminated when 20 long. */
	memcpy(s->serial, cfg->serial, strnlen(cfg->serial, sizeof(s->serial)));
	s->ro = cfg->ro;
	s->cache = (uint8_t)cfg->cache;

	struct virtio_blk_config *c = &b->st.config;
	c->capacity = b->img.size >> 9;
	c->seg_max = VIRTIO_BLK_SEG_MAX;
	c->blk_size = 512;
	c->max_discard_sectors = VIRTIO_BLK_MAX_DISCARD_SECTORS;
	c->max_discard_seg = VIRTIO_BLK_MAX_DISCARD_SEG;
	c->discard_sector_alignment = VIRTIO_BLK_DISCARD_ALIGNMENT;
	c->max_write_zeroes_sectors = VIRTIO_BLK_MAX_WZ_SECTORS;
	c->max_write_zeroes_seg = VIRTIO_BLK_MAX_WZ_SEG;
	c->write_zeroes_may_unmap = 1;
	b->st.transport.device_features = blk_features(cfg->ro);
	b->lim.capacity = c->capacity;
	b->lim.ro = cfg->ro;
}

static int open_engine(struct virtio_blk *b, const struct disk_config *cfg)
{
	b->be.fd = b->img.fd;
	b->be.event_fd = -1;
	if (cfg->engine != DISK_ENGINE_SYNC) {
		int rc = blk_engine_uring.open(&b->be, VIRTIO_BLK_QUEUE_SIZE);
		if (rc == 0) {
			b->be.engine = &blk_engine_uring;
			b->st.settings.engine = DISK_ENGINE_IO_URING;
			return 0;
		}
		if (cfg->engine == DISK_ENGINE_IO_URING) {
			vmm_err("disk %s: engine=io_uring is unavailable here: %s", cfg->path,
				strerror(-rc));
			return VMM_EXIT_RESOURCE;
		}
		vmm_warn("disk %s: io_uring unavailable (%s); using the sync engine", cfg->path,
			 strerror(-rc));
	}
	if (blk_engine_sync.open(&b->be, VIRTIO_BLK_QUEUE_SIZE) < 0) {
		vmm_err("disk %s: out of memory", cfg->path);
		return VMM_EXIT_RESOURCE;
	}
	b->be.engine = &blk_engine_sync;
	b->st.settings.engine = DISK_ENGINE_SYNC;
	return 0;
}

static int alloc_requests(struct virtio_blk *b)
{
	/* calloc of this size is fresh zero pages: only slots in use cost RAM. */
	b->reqs = calloc(VIRTIO_BLK_QUEUE_SIZE, sizeof(*b->reqs));
	if (!b->reqs)
		return -1;
	for (unsigned i = VIRTIO_BLK_QUEUE_SIZE; i-- > 0;)
		req_put(b, &b->reqs[i]);
	return 0;
}

static int setup(struct virtio_blk *b, struct vm *vm, const struct disk_config *cfg,
		 unsigned slot)
{
	int rc = disk_image_open(cfg, &b->img);
	if (rc)
		return rc;
	fill_state(b, cfg);
	if ((rc = open_engine(b, cfg)))
		return rc;
	if (alloc_requests(b) < 0) {
		vmm_err("disk %s: out of memory", cfg->path);
		return VMM_EXIT_RESOURCE;
	}
	if (virtio_mmio_init(&b->vdev, vm, &blk_ops, b, &b->st.transport, &b->st.config,
			     sizeof(b->st.config), slot) < 0)
		return VMM_EXIT_RESOURCE;
	if (b->be.event_fd >= 0) {
		if (loop_add(&vm->loop, b->be.event_fd, EPOLLIN, on_engine_event, b) < 0)
			return VMM_EXIT_RESOURCE;
		b->be_on_loop = true;
	}
	return 0;
}

struct virtio_blk *virtio_blk_create(struct vm *vm, const struct disk_config *cfg, unsigned slot,
				     int *status)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	if (!b) {
		vmm_err("disk %s: out of memory", cfg->path);
		*status = VMM_EXIT_RESOURCE;
		return NULL;
	}
	b->img.fd = -1;
	*status = setup(b, vm, cfg, slot);
	if (*status) {
		virtio_blk_destroy(b);
		return NULL;
	}
	return b;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	if (b->be_on_loop)
		loop_del(&b->vdev.vm->loop, b->be.event_fd);
	if (b->be.engine)
		b->be.engine->close(&b->be); /* waits for in-flight I/O */
	if (b->vdev.ops)
		virtio_mmio_destroy(&b->vdev);
	disk_image_close(&b->img);
	free(b->reqs);
	free(b);
}

static int blk_create_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->cfg->ndisks; i++) {
		int slot = virtio_next_slot(vm, "virtio-blk"), rc;
		if (slot < 0)
			return VMM_EXIT_RESOURCE;
		struct virtio_blk *b = virtio_blk_create(vm, &vm->cfg->disks[i], (unsigned)slot, &rc);
		if (!b)
			return rc;
		if ((rc = virtio_add_device(vm, &b->vdev)))
			return rc;
	}
	return 0;
}

const struct virtio_device_kind virtio_blk_kind = {
	.name = "virtio-blk",
	.create_all = blk_create_all,
};

/* ---- the API: backing-file swap, statistics ---- */

int virtio_blk_swap_image(struct virtio_blk *b, const char *path, char *why, size_t n)
{
	struct virtio_blk_settings *set = &b->st.settings;
	struct disk_config cfg = { .ro = set->ro };
	struct disk_image img;
	if (strlen(path) >= sizeof(cfg.path)) {
		snprintf(why, n, "path too long");
		return -1;
	}
	memcpy(cfg.path, path, strlen(path) + 1);
	pthread_mutex_lock(&b->vdev.lock);
	int rc = b->inflight ? -1 : 0;
	if (rc)
		snprintf(why, n, "%u requests in flight; retry", b->inflight);
	else if ((rc = disk_image_open(&cfg, &img) ? -1 : 0))
		snprintf(why, n, "%s", vmm_log_last_error());
	if (rc == 0) {
		struct disk_image old = b->img;
		b->img = img;
		b->be.fd = img.fd;
		memcpy(set->path, cfg.path, sizeof(set->path));
		b->st.config.capacity = img.size >> 9;
		b->lim.capacity = b->st.config.capacity;
		virtio_dev_config_changed(&b->vdev);
		disk_image_close(&old);
	}
	pthread_mutex_unlock(&b->vdev.lock);
	return rc;
}

int virtio_blk_drain(struct virtio_blk *b, unsigned timeout_ms)
{
	/* Completions normally arrive through the event loop (on_engine_event);
	 * a caller on the loop thread that needs them now reaps them here. */
	uint64_t deadline = now_ns() + timeout_ms * 1000000ULL;
	pthread_mutex_lock(&b->vdev.lock);
	for (;;) {
		reap_all(b);
		b->be.engine->commit(&b->be);
		if (!b->inflight || now_ns() > deadline)
			break;
		pthread_mutex_unlock(&b->vdev.lock);
		struct pollfd p = {.fd = b->be.event_fd, .events = POLLIN};
		poll(&p, 1, 5); /* fd -1 (sync engine): just a short wait */
		pthread_mutex_lock(&b->vdev.lock);
	}
	int rc = b->inflight ? -1 : 0;
	if (!rc && b->vdev.st->reset_pending)
		virtio_dev_reset_done(&b->vdev);
	else
		virtio_dev_used(&b->vdev, 0);
	pthread_mutex_unlock(&b->vdev.lock);
	return rc;
}

void virtio_blk_get_stats(struct virtio_blk *b, struct virtio_blk_stats *out)
{
	pthread_mutex_lock(&b->vdev.lock);
	*out = b->stats;
	pthread_mutex_unlock(&b->vdev.lock);
}
