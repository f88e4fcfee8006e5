/*
 * virtio-mmio version 2 transport: registers, the device-status machine,
 * feature negotiation, queue set-up, ioeventfd/irqfd wiring.
 */
#include "mmio.h"

#include <errno.h>
#include <linux/kvm.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../vmm.h"

#define VIRTIO_MMIO_MAGIC 0x74726976U /* "virt" */
#define STATUS_DRIVER_BITS                                                       \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK | \
	 VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_FAILED)

/* ISA lines nothing else uses; the MP table (and the DSDT, which gets the
 * windows from vmm.c) make them edge-triggered. */
static const unsigned slot_irqs[VIRTIO_MMIO_SLOTS] = { 5, 6, 7, 9, 10, 11, 12, 14, 15 };

uint64_t virtio_mmio_slot_base(unsigned slot)
{
	return VIRTIO_MMIO_BASE + (uint64_t)slot * VIRTIO_MMIO_SIZE;
}

unsigned virtio_mmio_slot_irq(unsigned slot)
{
	return slot < VIRTIO_MMIO_SLOTS ? slot_irqs[slot] : 0;
}

bool virtio_dev_has_feature(const struct virtio_dev *d, unsigned bit)
{
	return bit < 64 && (d->st->driver_features >> bit) & 1;
}

static void raise_irq(struct virtio_dev *d, uint32_t why)
{
	d->st->interrupt_status |= why;
	uint64_t one = 1;
	/* Only fails if the counter would overflow: the line is raised anyway. */
	if (write(d->irq_fd, &one, sizeof(one)) < 0) {
	}
}

void virtio_dev_needs_reset(struct virtio_dev *d, const char *why)
{
	vmm_warn_ratelimited(&d->rl, "%s: %s; device needs a reset", d->name, why);
	if (d->st->needs_reset)
		return;
	d->st->needs_reset = 1;
	raise_irq(d, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_dev_config_changed(struct virtio_dev *d)
{
	d->st->config_generation++;
	raise_irq(d, VIRTIO_MMIO_INT_CONFIG);
}

void virtio_dev_used(struct virtio_dev *d, unsigned q)
{
	struct virtqueue *vq = &d->vq[q];
	if (!vq_enabled(vq) || !vq_publish(vq))
		return;
	if (vq_need_interrupt(vq))
		raise_irq(d, VIRTIO_MMIO_INT_VRING);
}

void virtio_dev_interrupt(struct virtio_dev *d)
{
	raise_irq(d, VIRTIO_MMIO_INT_VRING);
}

bool virtio_dev_queue_live(const struct virtio_dev *d, unsigned q)
{
	const struct virtio_mmio_state *st = d->st;
	return q < d->ops->num_queues && (st->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	       !(st->status & VIRTIO_CONFIG_S_FAILED) && !st->needs_reset &&
	       !st->reset_pending && st->queues[q].ready && vq_enabled(&d->vq[q]);
}

/* ---- reset ---- */

static void do_reset(struct virtio_dev *d)
{
	struct virtio_mmio_state *st = d->st;
	uint64_t features = st->device_features;
	uint32_t generation = st->config_generation;
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
		vq_disable(&d->vq[q]);
	memset(st, 0, sizeof(*st));
	st->device_features = features;
	st->config_generation = generation;
}

void virtio_dev_reset_done(struct virtio_dev *d)
{
	if (d->st->reset_pending)
		do_reset(d);
}

static void begin_reset(struct virtio_dev *d)
{
	/* Until in-flight I/O drains, Status keeps reading non-zero, so the
	 * driver (which must wait for 0) cannot reuse buffers we still fill. */
	if (d->ops->reset && !d->ops->reset(d)) {
		d->st->reset_pending = 1;
		return;
	}
	do_reset(d);
}

/* ---- device status ---- */

static bool features_acceptable(const struct virtio_mmio_state *st)
{
	uint64_t f = st->driver_features;
	return (f & ~st->device_features) == 0 && (f & (1ULL << VIRTIO_F_VERSION_1));
}

void virtio_dev_kick(struct virtio_dev *d, unsigned q)
{
	uint64_t one = 1;
	/* Fails only if the counter would overflow: a kick is pending anyway. */
	if (q < d->ops->num_queues && write(d->notify_fd[q], &one, sizeof(one)) < 0) {
	}
}

/* Kick every ready queue once: the driver may have queued buffers before
 * DRIVER_OK, and notifications sent before then count for nothing. */
static void kick_ready_queues(struct virtio_dev *d)
{
	for (unsigned q = 0; q < d->ops->num_queues; q++)
		if (d->st->queues[q].ready)
			virtio_dev_kick(d, q);
}

/* Returns a reason if the step from st->status to v skips one. */
static const char *check_step(struct virtio_dev *d, uint32_t *v)
{
	uint32_t old = d->st->status, add = *v & ~old;
	if (old & ~*v)
		return "driver cleared status bits without a reset";
	if ((add & VIRTIO_CONFIG_S_DRIVER) && !(*v & VIRTIO_CONFIG_S_ACKNOWLEDGE))
		return "DRIVER set before ACKNOWLEDGE";
	if (add & VIRTIO_CONFIG_S_FEATURES_OK) {
		if (!(*v & VIRTIO_CONFIG_S_DRIVER))
			return "FEATURES_OK set before DRIVER";
		/* Refused features: FEATURES_OK simply stays clear (3.1.1). */
		if (!features_acceptable(d->st)) {
			vmm_warn_ratelimited(&d->rl,
					     "%s: driver features 0x%llx refused (VERSION_1 is "
					     "required; offered 0x%llx)",
					     d->name, (unsigned long long)d->st->driver_features,
					     (unsigned long long)d->st->device_features);
			*v &= ~(uint32_t)VIRTIO_CONFIG_S_FEATURES_OK;
		}
	}
	if ((add & VIRTIO_CONFIG_S_DRIVER_OK) && !(*v & VIRTIO_CONFIG_S_FEATURES_OK))
		return "DRIVER_OK set without FEATURES_OK";
	return NULL;
}

static void write_status(struct virtio_dev *d, uint32_t v)
{
	if (v == 0) {
		begin_reset(d);
		return;
	}
	if (d->st->needs_reset)
		return; /* nothing but a reset helps now */
	v &= STATUS_DRIVER_BITS; /* DEVICE_NEEDS_RESET is the device's bit */
	const char *why = check_step(d, &v);
	if (why) {
		virtio_dev_needs_reset(d, why);
		return;
	}
	uint32_t add = v & ~d->st->status;
	d->st->status = v;
	if (add & VIRTIO_CONFIG_S_DRIVER_OK)
		kick_ready_queues(d);
}

/* ---- features ---- */

static uint32_t features_half(uint64_t f, uint32_t sel)
{
	return sel == 0 ? (uint32_t)f : sel == 1 ? (uint32_t)(f >> 32) : 0;
}

static void write_driver_features(struct virtio_dev *d, uint32_t v)
{
	struct virtio_mmio_state *st = d->st;
	if (!(st->status & VIRTIO_CONFIG_S_DRIVER) || (st->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
		virtio_dev_needs_reset(d, "features written outside DRIVER..FEATURES_OK");
		return;
	}
	if (st->driver_features_sel == 0)
		st->driver_features = (st->driver_features & ~0xffffffffULL) | v;
	else if (st->driver_features_sel == 1)
		st->driver_features = (st->driver_features & 0xffffffffULL) | ((uint64_t)v << 32);
	/* Higher words: no feature bits exist there; a set bit there would be
	 * unoffered and is simply not recorded. */
}

/* ---- queues ---- */

/* The selected queue, if the driver may set it up now (3.1.1 step 7). */
static struct vq_state *queue_for_setup(struct virtio_dev *d)
{
	struct virtio_mmio_state *st = d->st;
	if (!(st->status & VIRTIO_CONFIG_S_FEATURES_OK) || (st->status & VIRTIO_CONFIG_S_DRIVER_OK)) {
		virtio_dev_needs_reset(d, "queue set up outside FEATURES_OK..DRIVER_OK");
		return NULL;
	}
	if (st->queue_sel >= d->ops->num_queues) {
		virtio_dev_needs_reset(d, "queue set up with QueueSel out of range");
		return NULL;
	}
	struct vq_state *q = &st->queues[st->queue_sel];
	if (q->ready) {
		virtio_dev_needs_reset(d, "queue changed while ready");
		return NULL;
	}
	return q;
}

static void set_low(uint64_t *r, uint32_t v)
{
	*r = (*r & ~0xffffffffULL) | v;
}

static void set_high(uint64_t *r, uint32_t v)
{
	*r = (*r & 0xffffffffULL) | ((uint64_t)v << 32);
}

static void enable_queue(struct virtio_dev *d, struct vq_state *q)
{
	unsigned n = d->st->queue_sel;
	const char *why = NULL;
	if (vq_enable(&d->vq[n], q, d->mem, d->ops->queue_max,
		      virtio_dev_has_feature(d, VIRTIO_RING_F_EVENT_IDX),
		      virtio_dev_has_feature(d, VIRTIO_RING_F_INDIRECT_DESC), d->vq_name[n],
		      &why) < 0) {
		virtio_dev_needs_reset(d, why);
		return;
	}
	q->last_avail = q->used_idx = q->published = q->signalled_used = 0;
	q->signalled_valid = 0;
	q->ready = 1;
}

static void write_queue_ready(struct virtio_dev *d, uint32_t v)
{
	struct virtio_mmio_state *st = d->st;
	if (v == 0) {
		/* Drivers tear queues down this way after a reset: harmless
		 * then, but pulling a live queue is a protocol violation. */
		if (st->status & VIRTIO_CONFIG_S_DRIVER_OK) {
			virtio_dev_needs_reset(d, "queue disabled after DRIVER_OK");
		} else if (st->queue_sel < d->ops->num_queues) {
			st->queues[st->queue_sel].ready = 0;
			vq_disable(&d->vq[st->queue_sel]);
		}
		return;
	}
	struct vq_state *q = queue_for_setup(d);
	if (q)
		enable_queue(d, q);
}

static void write_queue_reg(struct virtio_dev *d, uint64_t reg, uint32_t v)
{
	struct vq_state *q = queue_for_setup(d);
	if (!q)
		return;
	switch (reg) {
	case VIRTIO_MMIO_QUEUE_NUM:
		q->size = v <= 0xffff ? (uint16_t)v : 0; /* checked when enabled */
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
		set_low(&q->desc_addr, v);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		set_high(&q->desc_addr, v);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
		set_low(&q->avail_addr, v);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		set_high(&q->avail_addr, v);
		break;
	case VIRTIO_MMIO_QUEUE_USED_LOW:
		set_low(&q->used_addr, v);
		break;
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		set_high(&q->used_addr, v);
		break;
	}
}

/* A QueueNotify write that KVM's ioeventfd did not take (odd value or no
 * KVM): forward it to the same eventfd so the loop does the work. */
static void write_queue_notify(struct virtio_dev *d, uint32_t v)
{
	if (v >= d->ops->num_queues) {
		vmm_warn_ratelimited(&d->rl, "%s: notify for queue %u that does not exist",
				     d->name, v);
		return;
	}
	virtio_dev_kick(d, v);
}

/* ---- register dispatch ---- */

static uint32_t read_reg(struct virtio_dev *d, uint64_t reg)
{
	const struct virtio_mmio_state *st = d->st;
	const struct vq_state *q =
		st->queue_sel < d->ops->num_queues ? &st->queues[st->queue_sel] : NULL;
	switch (reg) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return d->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		return features_half(st->device_features, st->device_features_sel);
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return q ? d->ops->queue_max : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return q ? q->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return st->interrupt_status | (d->external ? VIRTIO_MMIO_INT_VRING : 0);
	case VIRTIO_MMIO_STATUS:
		return st->status | (st->needs_reset ? VIRTIO_CONFIG_S_NEEDS_RESET : 0);
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
		return 0xffffffffU; /* no shared memory regions */
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return st->config_generation;
	default:
		return 0;
	}
}

static void write_reg(struct virtio_dev *d, uint64_t reg, uint32_t v)
{
	struct virtio_mmio_state *st = d->st;
	if (st->reset_pending)
		return; /* the driver must wait for Status to read 0 */
	switch (reg) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		st->device_features_sel = v;
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		st->driver_features_sel = v;
		return;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		st->interrupt_status &= ~v;
		return;
	case VIRTIO_MMIO_STATUS:
		write_status(d, v);
		return;
	}
	if (st->needs_reset)
		return;
	switch (reg) {
	case VIRTIO_MMIO_DRIVER_FEATURES:
		write_driver_features(d, v);
		return;
	case VIRTIO_MMIO_QUEUE_SEL:
		st->queue_sel = v;
		return;
	case VIRTIO_MMIO_QUEUE_READY:
		write_queue_ready(d, v);
		return;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		write_queue_notify(d, v);
		return;
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
	case VIRTIO_MMIO_QUEUE_USED_LOW:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		write_queue_reg(d, reg, v);
		return;
	default:
		vmm_warn_ratelimited(&d->rl, "%s: write of 0x%x to read-only or unknown register 0x%llx",
				     d->name, v, (unsigned long long)reg);
	}
}

static void config_access(struct virtio_dev *d, uint64_t off, uint8_t *data, uint32_t len,
			  bool is_write)
{
	bool inside = off < d->config_len && len <= d->config_len - off;
	if (!is_write) {
		if (inside)
			memcpy(data, d->config + off, len);
		else
			memset(data, 0, len);
		return;
	}
	if (inside && d->ops->config_write && !d->st->needs_reset && !d->st->reset_pending)
		d->ops->config_write(d, (uint32_t)off, data, len);
	else
		vmm_warn_ratelimited(&d->rl, "%s: config write at 0x%llx (%u bytes) ignored",
				     d->name, (unsigned long long)off, len);
}

void virtio_mmio_access(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_dev *d = dev;
	pthread_mutex_lock(&d->lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		config_access(d, offset - VIRTIO_MMIO_CONFIG, data, len, is_write);
	} else if (len != 4 || (offset & 3)) {
		/* 4.2.2.2: registers are 32 bits wide, naturally aligned. */
		vmm_warn_ratelimited(&d->rl, "%s: %u-byte access at register 0x%llx ignored",
				     d->name, len, (unsigned long long)offset);
		if (!is_write)
			memset(data, 0, len);
	} else if (is_write) {
		uint32_t v;
		memcpy(&v, data, 4);
		write_reg(d, offset, v);
	} else {
		uint32_t v = read_reg(d, offset);
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&d->lock);
}

/* ---- notifications from the event loop ---- */

static void on_notify(void *opaque, uint32_t events)
{
	struct virtio_notify_ctx *n = opaque;
	struct virtio_dev *d = n->dev;
	uint64_t count;
	(void)events;
	if (read(d->notify_fd[n->queue], &count, sizeof(count)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&d->lock);
	if (virtio_dev_queue_live(d, n->queue) && d->ops->queue_notify)
		d->ops->queue_notify(d, n->queue);
	pthread_mutex_unlock(&d->lock);
}

void virtio_mmio_set_external(struct virtio_dev *d, bool external)
{
	if (d->external == external)
		return;
	d->external = external;
	for (unsigned q = 0; q < d->ops->num_queues; q++) {
		if (external)
			loop_del(&d->vm->loop, d->notify_fd[q]);
		else
			loop_add(&d->vm->loop, d->notify_fd[q], EPOLLIN, on_notify, &d->notify_ctx[q]);
	}
}

/* ---- life cycle ---- */

static void init_fields(struct virtio_dev *d, struct vm *vm, const struct virtio_device_ops *ops,
			void *opaque, struct virtio_mmio_state *st, void *config, uint32_t config_len,
			unsigned slot)
{
	memset(d, 0, sizeof(*d));
	d->ops = ops;
	d->opaque = opaque;
	d->st = st;
	d->config = config;
	d->config_len = config_len;
	d->vm = vm;
	d->mem = &vm->mem;
	d->slot = slot;
	d->base = virtio_mmio_slot_base(slot);
	d->irq = virtio_mmio_slot_irq(slot);
	d->irq_fd = -1;
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
		d->notify_fd[q] = -1;
	snprintf(d->name, sizeof(d->name), "%s%u", ops->name, slot);
	for (unsigned q = 0; q < ops->num_queues && q < VIRTIO_MMIO_MAX_QUEUES; q++) {
		snprintf(d->vq_name[q], sizeof(d->vq_name[q]), "%s q%u", d->name, q);
		d->notify_ctx[q] = (struct virtio_notify_ctx){ d, q };
	}
}

int virtio_mmio_init(struct virtio_dev *d, struct vm *vm, const struct virtio_device_ops *ops,
		     void *opaque, struct virtio_mmio_state *st, void *config, uint32_t config_len,
		     unsigned slot)
{
	/* Fields and lock first: virtio_mmio_destroy() is safe after any failure. */
	init_fields(d, vm, ops, opaque, st, config, config_len, slot);
	pthread_mutex_init(&d->lock, NULL);
	if (slot >= VIRTIO_MMIO_SLOTS || ops->num_queues > VIRTIO_MMIO_MAX_QUEUES ||
	    ops->queue_max > VQ_MAX_SIZE) {
		vmm_err("%s: no room for another virtio-mmio device (at most %d)", ops->name,
			VIRTIO_MMIO_SLOTS);
		return -1;
	}
	d->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->irq_fd < 0) {
		vmm_perr("%s: eventfd", d->name);
		return -1;
	}
	for (unsigned q = 0; q < ops->num_queues; q++) {
		d->notify_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (d->notify_fd[q] < 0) {
			vmm_perr("%s: eventfd", d->name);
			return -1;
		}
		if (loop_add(&vm->loop, d->notify_fd[q], EPOLLIN, on_notify, &d->notify_ctx[q]) < 0)
			return -1;
	}
	return bus_register(&vm->mmio, d->base, VIRTIO_MMIO_SIZE, virtio_mmio_access, d, d->name);
}

static int ioeventfd(struct virtio_dev *d, unsigned q, uint32_t flags)
{
	struct kvm_ioeventfd io = {
		.datamatch = q,
		.addr = d->base + VIRTIO_MMIO_QUEUE_NOTIFY,
		.len = 4,
		.fd = d->notify_fd[q],
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | flags,
	};
	return ioctl(d->vm->vm_fd, KVM_IOEVENTFD, &io);
}

static int irqfd(struct virtio_dev *d, uint32_t flags)
{
	struct kvm_irqfd f = { .fd = (uint32_t)d->irq_fd, .gsi = d->irq, .flags = flags };
	return ioctl(d->vm->vm_fd, KVM_IRQFD, &f);
}

int virtio_mmio_attach_kvm(struct virtio_dev *d)
{
	for (unsigned q = 0; q < d->ops->num_queues; q++) {
		if (ioeventfd(d, q, 0) < 0) {
			vmm_perr("%s: KVM_IOEVENTFD", d->name);
			return -1;
		}
	}
	if (irqfd(d, 0) < 0) {
		vmm_perr("%s: KVM_IRQFD (GSI %u)", d->name, d->irq);
		return -1;
	}
	d->kvm_attached = true;
	return 0;
}

void virtio_mmio_destroy(struct virtio_dev *d)
{
	if (d->kvm_attached) {
		for (unsigned q = 0; q < d->ops->num_queues; q++)
			ioeventfd(d, q, KVM_IOEVENTFD_FLAG_DEASSIGN);
		irqfd(d, KVM_IRQFD_FLAG_DEASSIGN);
		d->kvm_attached = false;
	}
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
		if (d->notify_fd[q] < 0)
			continue;
		loop_del(&d->vm->loop, d->notify_fd[q]);
		close(d->notify_fd[q]);
		d->notify_fd[q] = -1;
	}
	if (d->irq_fd >= 0)
		close(d->irq_fd);
	d->irq_fd = -1;
	pthread_mutex_destroy(&d->lock);
}

int virtio_mmio_announce(const struct virtio_dev *d, char *buf, size_t size)
{
	int n = snprintf(buf, size, " virtio_mmio.device=4K@0x%llx:%u",
			 (unsigned long long)d->base, d->irq);
	return n < 0 || (size_t)n >= size ? -1 : n;
}
