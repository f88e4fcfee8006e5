/*
 * virtio-balloon device: configuration, the queues, the statistics timer,
 * the host's target. Page lists are checked and given back in
 * balloon_pages.c, statistics parsed in balloon_stats.c.
 *
 * Statistics follow the spec's protocol: the driver queues one buffer
 * holding its statistics; the device keeps it, and when it wants fresh
 * figures (every stats_interval_s, from a timerfd on the event loop) it
 * returns the buffer; the driver refills it and queues it again.
 */
#include "balloon.h"

#include <endian.h>
#include <errno.h>
#include <linux/virtio_ids.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "../log.h"

static bool offered(const struct virtio_balloon *b, unsigned bit)
{
	return (b->st.transport.device_features >> bit) & 1;
}

enum balloon_queue virtio_balloon_queue_role(const struct virtio_balloon *b, unsigned q)
{
	if (q <= BALLOON_Q_DEFLATE)
		return (enum balloon_queue)q;
	unsigned next = BALLOON_Q_STATS;
	if (virtio_dev_has_feature(&b->vdev, VIRTIO_BALLOON_F_STATS_VQ) && q == next++)
		return BALLOON_Q_STATS;
	if (virtio_dev_has_feature(&b->vdev, VIRTIO_BALLOON_F_REPORTING) && q == next)
		return BALLOON_Q_REPORTING;
	return BALLOON_Q_NONE;
}

/* The statistics queue's index: 2 whenever it exists (it comes first). */
static bool stats_queue_live(const struct virtio_balloon *b)
{
	return virtio_dev_has_feature(&b->vdev, VIRTIO_BALLOON_F_STATS_VQ) &&
	       virtio_dev_queue_live(&b->vdev, BALLOON_Q_STATS);
}

/* ---- the queues, on the loop thread with the lock held ---- */

static void warn_refused(struct virtio_balloon *b, unsigned q, const char *why)
{
	b->ctr.bad_chains++;
	vmm_warn_ratelimited(&b->rl, "%s q%u: %s; chain ignored", b->vdev.name, q, why);
}

static void count_pages(struct virtio_balloon *b, unsigned q, enum balloon_queue role,
			const struct balloon_pages_result *r)
{
	if (r->why) {
		warn_refused(b, q, r->why);
		return;
	}
	if (role == BALLOON_Q_INFLATE)
		b->ctr.inflated_pages += r->valid;
	else if (role == BALLOON_Q_DEFLATE)
		b->ctr.deflated_pages += r->valid;
	else
		b->ctr.reported_bytes += r->bytes;
	b->ctr.bad_pfns += r->bad;
	b->ctr.discard_errors += r->errors;
	if (r->bad)
		vmm_warn_ratelimited(&b->rl, "%s q%u: %u PFNs outside guest RAM ignored",
				     b->vdev.name, q, r->bad);
	if (r->errors)
		vmm_warn_ratelimited(&b->rl, "%s: giving guest memory back failed: %s",
				     b->vdev.name, strerror(-r->err));
}

/* Return the statistics buffer held: the driver refills it (our request
 * for fresh figures). */
static void request_stats(struct virtio_balloon *b)
{
	if (!b->st.stats_held || !stats_queue_live(b))
		return;
	b->st.stats_held = 0;
	vq_push(&b->vdev.vq[BALLOON_Q_STATS], b->st.stats_head, 0);
	virtio_dev_used(&b->vdev, BALLOON_Q_STATS);
}

static void take_stats(struct virtio_balloon *b, const struct vq_chain *c)
{
	b->ctr.stats_updates++;
	if (balloon_stats_parse(c, &b->st.stats) < 0) {
		b->ctr.stats_malformed++;
		vmm_warn_ratelimited(&b->rl,
				     "%s: statistics buffer of %llu readable / %llu writable bytes "
				     "is not whole (tag, value) entries; ignored",
				     b->vdev.name, (unsigned long long)c->out_len,
				     (unsigned long long)c->in_len);
	}
	/* A second buffer before we asked: give the older one back. */
	if (b->st.stats_held)
		vq_push(&b->vdev.vq[BALLOON_Q_STATS], b->st.stats_head, 0);
	b->st.stats_head = c->head;
	b->st.stats_held = 1;
}

/* One chain of queue q. Returns true when it is done (push it now). */
static bool handle(struct virtio_balloon *b, unsigned q, enum balloon_queue role,
		   const struct vq_chain *c)
{
	struct balloon_pages_result r;
	switch (role) {
	case BALLOON_Q_INFLATE:
	case BALLOON_Q_DEFLATE:
		balloon_pfn_chain(b->vdev.mem, c, role == BALLOON_Q_INFLATE, &r);
		break;
	case BALLOON_Q_REPORTING:
		balloon_report_chain(b->vdev.mem, c, &r);
		break;
	case BALLOON_Q_STATS:
		take_stats(b, c);
		return false;
	default:
		return true;
	}
	count_pages(b, q, role, &r);
	return true;
}

/* Take up to BALLOON_BUDGET chains. Returns VQ_EMPTY, VQ_BROKEN, or
 * VQ_CHAIN when the budget ran out with work left. */
static int pop_some(struct virtio_balloon *b, unsigned q, enum balloon_queue role)
{
	struct virtqueue *vq = &b->vdev.vq[q];
	struct vq_chain c = {.iov = b->iov, .max_iov = VQ_MAX_SIZE};
	for (unsigned n = 0; n < BALLOON_BUDGET; n++) {
		int rc = vq_pop(vq, &c);
		if (rc == VQ_EMPTY || rc == VQ_BROKEN)
			return rc;
		if (rc == VQ_BAD_CHAIN)
			b->ctr.bad_chains++;
		if (rc == VQ_BAD_CHAIN || handle(b, q, role, &c))
			vq_push(vq, c.head, 0); /* nothing written for the driver */
	}
	return VQ_CHAIN;
}

/* Drain queue q with notifications off; a ring that never empties gets
 * BALLOON_BUDGET chains per pass, then the loop comes back to it. */
static void process(struct virtio_balloon *b, unsigned q, enum balloon_queue role)
{
	struct virtqueue *vq = &b->vdev.vq[q];
	for (;;) {
		vq_disable_notify(vq);
		int rc = pop_some(b, q, role);
		if (rc == VQ_BROKEN) {
			virtio_dev_needs_reset(&b->vdev, "avail ring corrupt");
			break;
		}
		if (rc == VQ_CHAIN) {
			virtio_dev_kick(&b->vdev, q); /* notifications stay off: we will be back */
			break;
		}
		if (!vq_enable_notify(vq))
			break;
	}
	virtio_dev_used(&b->vdev, q);
}

static void balloon_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_balloon *b = d->opaque;
	enum balloon_queue role = virtio_balloon_queue_role(b, q);
	if (role == BALLOON_Q_NONE) {
		vmm_warn_ratelimited(&b->rl,
				     "%s: notify for queue %u, which the features "
				     "accepted do not give; ignored",
				     d->name, q);
		return;
	}
	process(b, q, role);
}

/* Only `actual` (bytes 4..7) is the driver's to write. */
static void balloon_config_write(struct virtio_dev *d, uint32_t offset, const uint8_t *data,
				 uint32_t len)
{
	struct virtio_balloon *b = d->opaque;
	const uint32_t at = offsetof(struct virtio_balloon_config, actual);
	if (offset < at || offset + len > at + sizeof(uint32_t)) {
		vmm_warn_ratelimited(&b->rl,
				     "%s: driver wrote read-only config bytes %u..%u; ignored",
				     d->name, offset, offset + len - 1);
		return;
	}
	memcpy((uint8_t *)&b->st.config + offset, data, len);
}

static bool balloon_reset(struct virtio_dev *d)
{
	struct virtio_balloon *b = d->opaque;
	/* The rings are the driver's again, and a new driver starts with an
	 * empty balloon; the target stays. */
	b->st.stats_held = 0;
	b->st.config.actual = 0;
	return true; /* nothing in flight: every chain is handled at once */
}

static void balloon_destroy_dev(struct virtio_dev *d)
{
	virtio_balloon_destroy(d->opaque);
}

/* ---- the statistics timer ---- */

static int arm_timer(struct virtio_balloon *b, uint32_t secs)
{
	struct itimerspec t = {
	    .it_interval = {.tv_sec = secs},
	    .it_value = {.tv_sec = secs},
	};
	return timerfd_settime(b->timer_fd, 0, &t, NULL);
}

static void on_timer(void *opaque, uint32_t events)
{
	struct virtio_balloon *b = opaque;
	uint64_t expirations;
	(void)events;
	if (read(b->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&b->vdev.lock);
	request_stats(b);
	pthread_mutex_unlock(&b->vdev.lock);
}

/* ---- creation ---- */

static uint64_t balloon_features(const struct balloon_config *cfg)
{
	uint64_t f = VIRTIO_TRANSPORT_FEATURES;
	if (cfg->stats_interval_s)
		f |= 1ULL << VIRTIO_BALLOON_F_STATS_VQ;
	if (cfg->deflate_on_oom)
		f |= 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	if (cfg->free_page_reporting)
		f |= 1ULL << VIRTIO_BALLOON_F_REPORTING;
	return f;
}

static void fill_state(struct virtio_balloon *b, const struct balloon_config *cfg)
{
	struct virtio_balloon_state *st = &b->st;
	st->transport.device_features = balloon_features(cfg);
	st->config.num_pages = htole32(cfg->amount_mib * (uint32_t)BALLOON_PAGES_PER_MIB);
	st->settings.stats_interval_s = cfg->stats_interval_s;
	st->settings.deflate_on_oom = cfg->deflate_on_oom;
	st->settings.free_page_reporting = cfg->free_page_reporting;
	b->ops = (struct virtio_device_ops){
	    .name = "virtio-balloon",
	    .device_id = VIRTIO_ID_BALLOON,
	    .num_queues = 2 + (offered(b, VIRTIO_BALLOON_F_STATS_VQ) ? 1 : 0) +
			  (offered(b, VIRTIO_BALLOON_F_REPORTING) ? 1 : 0),
	    .queue_max = VIRTIO_BALLOON_QUEUE_SIZE,
	    .queue_notify = balloon_queue_notify,
	    .config_write = balloon_config_write,
	    .reset = balloon_reset,
	    .destroy = balloon_destroy_dev,
	};
}

static int setup_timer(struct virtio_balloon *b, struct vm *vm)
{
	b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (b->timer_fd < 0 || arm_timer(b, b->st.settings.stats_interval_s) < 0) {
		vmm_perr("virtio-balloon: statistics timer");
		return -1;
	}
	if (loop_add(&vm->loop, b->timer_fd, EPOLLIN, on_timer, b) < 0)
		return -1;
	b->timer_on_loop = true;
	return 0;
}

struct virtio_balloon *virtio_balloon_create(struct vm *vm, const struct balloon_config *cfg,
					     unsigned slot, int *status)
{
	struct virtio_balloon *b = calloc(1, sizeof(*b));
	*status = VMM_EXIT_RESOURCE;
	if (!b) {
		vmm_err("virtio-balloon: out of memory");
		return NULL;
	}
	b->timer_fd = -1;
	fill_state(b, cfg);
	/* The lock exists from here on, so the timer handler may take it. */
	if (virtio_mmio_init(&b->vdev, vm, &b->ops, b, &b->st.transport, &b->st.config,
			     offsetof(struct virtio_balloon_config, free_page_hint_cmd_id),
			     slot) < 0 ||
	    (cfg->stats_interval_s && setup_timer(b, vm) < 0)) {
		virtio_balloon_destroy(b);
		return NULL;
	}
	*status = 0;
	return b;
}

void virtio_balloon_destroy(struct virtio_balloon *b)
{
	if (b->timer_on_loop)
		loop_del(&b->vdev.vm->loop, b->timer_fd);
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	if (b->vdev.ops)
		virtio_mmio_destroy(&b->vdev);
	free(b);
}

static int balloon_create_all(struct vm *vm)
{
	if (!vm->cfg->balloon.enabled)
		return 0;
	int slot = virtio_next_slot(vm, "virtio-balloon"), rc;
	if (slot < 0)
		return VMM_EXIT_RESOURCE;
	struct virtio_balloon *b =
	    virtio_balloon_create(vm, &vm->cfg->balloon, (unsigned)slot, &rc);
	if (!b)
		return rc;
	return virtio_add_device(vm, &b->vdev);
}

const struct virtio_device_kind virtio_balloon_kind = {
    .name = "virtio-balloon",
    .create_all = balloon_create_all,
};

/* ---- the API ---- */

struct virtio_balloon *virtio_balloon_find(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nvirtio; i++) {
		struct virtio_dev *d = vm->virtio[i];
		if (d && d->ops->device_id == VIRTIO_ID_BALLOON)
			return d->opaque;
	}
	return NULL;
}

void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t pages)
{
	pthread_mutex_lock(&b->vdev.lock);
	b->st.config.num_pages = htole32(pages);
	virtio_dev_config_changed(&b->vdev); /* the driver re-reads num_pages */
	pthread_mutex_unlock(&b->vdev.lock);
}

int virtio_balloon_set_stats_interval(struct virtio_balloon *b, uint32_t secs, char *why, size_t n)
{
	if (b->timer_fd < 0 || secs == 0) {
		snprintf(why, n, "statistics cannot be turned on or off once the device exists");
		return -1;
	}
	pthread_mutex_lock(&b->vdev.lock);
	int rc = arm_timer(b, secs);
	if (rc == 0) {
		b->st.settings.stats_interval_s = secs;
		/* Fresh figures now, then every `secs` (as Firecracker's
		 * BalloonStatsUpdate): no waiting out the old interval. */
		request_stats(b);
	} else {
		snprintf(why, n, "timerfd_settime: %s", strerror(errno));
	}
	pthread_mutex_unlock(&b->vdev.lock);
	return rc;
}

void virtio_balloon_state_loaded(struct virtio_balloon *b)
{
	uint32_t secs = b->st.settings.stats_interval_s;
	if (b->timer_fd >= 0 && secs && arm_timer(b, secs) < 0)
		vmm_warn("%s: statistics timer: %s", b->vdev.name, strerror(errno));
}

void virtio_balloon_get_report(struct virtio_balloon *b, struct virtio_balloon_report *out)
{
	pthread_mutex_lock(&b->vdev.lock);
	out->target_pages = le32toh(b->st.config.num_pages);
	out->actual_pages = le32toh(b->st.config.actual);
	out->stats = b->st.stats;
	pthread_mutex_unlock(&b->vdev.lock);
}

void virtio_balloon_get_counters(struct virtio_balloon *b, struct virtio_balloon_counters *out)
{
	pthread_mutex_lock(&b->vdev.lock);
	*out = b->ctr;
	pthread_mutex_unlock(&b->vdev.lock);
}
