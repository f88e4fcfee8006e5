/*
 * virtio-mmio transport, version 2 (virtio 1.2, 4.2.2), shared by every
 * virtio device.
 *
 * Register accesses arrive on vCPU threads; queue notifications arrive on
 * an ioeventfd (KVM_IOEVENTFD on QueueNotify, one per queue) that the VMM
 * event loop reads, so device work never runs on a vCPU thread.
 * Interrupts go out through an irqfd on the device's GSI. One mutex per
 * device serialises registers, queue processing and completions.
 *
 * The transport enforces the device-status sequence: a driver that skips
 * a step or changes the queues after DRIVER_OK gets DEVICE_NEEDS_RESET
 * and a configuration-change interrupt, and the device does nothing more
 * until it is reset.
 */
#ifndef VMM_VIRTIO_MMIO_H
#define VMM_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../log.h"
#include "virtqueue.h"

struct vm;
struct virtio_dev;

#define VIRTIO_MMIO_MAX_QUEUES 8
#define VIRTIO_MMIO_VENDOR 0x00564d4dU /* "VMM\0" */

/* Features every device built on this transport and virtqueue.c can offer. */
#define VIRTIO_TRANSPORT_FEATURES                                                    \
	((1ULL << 32 /* VIRTIO_F_VERSION_1 */) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | \
	 (1ULL << VIRTIO_RING_F_EVENT_IDX))

/*
 * Everything the guest can observe about the transport, plus the queues.
 * Plain data: a device embeds it in its own state struct.
 */
struct virtio_mmio_state {
	uint64_t device_features; /* offered (fixed at creation) */
	uint64_t driver_features; /* accepted by the driver */
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint32_t queue_sel;
	uint32_t status; /* driver-set bits (DEVICE_NEEDS_RESET kept apart) */
	uint32_t interrupt_status;
	uint32_t config_generation;
	uint8_t needs_reset;   /* DEVICE_NEEDS_RESET */
	uint8_t reset_pending; /* status 0 written; waiting for in-flight I/O */
	uint8_t pad[6];
	struct vq_state queues[VIRTIO_MMIO_MAX_QUEUES];
};

/* What a device tells the transport. Every callback runs with the
 * device's lock held. */
struct virtio_device_ops {
	const char *name;   /* "virtio-blk" */
	uint32_t device_id; /* VIRTIO_ID_* */
	unsigned num_queues;
	uint16_t queue_max;
	/* The driver notified queue q (event loop thread; the queue is live). */
	void (*queue_notify)(struct virtio_dev *d, unsigned q);
	/* The driver wrote device config bytes (NULL: config is read-only). */
	void (*config_write)(struct virtio_dev *d, uint32_t offset, const uint8_t *data,
			     uint32_t len);
	/* Status 0 was written. Return true when the device is quiet (the
	 * transport then resets at once), or false if I/O is still in flight:
	 * the device then calls virtio_dev_reset_done() when it drains. */
	bool (*reset)(struct virtio_dev *d);
	/* Free the device (after virtio_mmio_destroy()); no lock held. */
	void (*destroy)(struct virtio_dev *d);
};

struct virtio_notify_ctx {
	struct virtio_dev *dev;
	unsigned queue;
};

struct virtio_dev {
	const struct virtio_device_ops *ops;
	void *opaque;                 /* the device */
	struct virtio_mmio_state *st; /* inside the device's state struct */
	uint8_t *config;              /* device config space, inside it too */
	uint32_t config_len;
	struct vm *vm;
	const struct guest_mem *mem;
	unsigned slot; /* window index: base and IRQ follow from it */
	uint64_t base;
	unsigned irq;
	pthread_mutex_t lock;
	int irq_fd;                                /* irqfd (eventfd) */
	int notify_fd[VIRTIO_MMIO_MAX_QUEUES];     /* ioeventfds */
	bool kvm_attached;
	bool external; /* vhost: the kernel reads the kicks and raises the irqfd */
	struct virtio_notify_ctx notify_ctx[VIRTIO_MMIO_MAX_QUEUES];
	struct virtqueue vq[VIRTIO_MMIO_MAX_QUEUES];
	char name[24];                             /* "virtio-blk0" */
	char vq_name[VIRTIO_MMIO_MAX_QUEUES][32];  /* "virtio-blk0 q0" */
	struct ratelimit rl;
};

/* Window `slot`: base VIRTIO_MMIO_BASE + slot * 4 KiB, and its IRQ. */
#define VIRTIO_MMIO_SLOTS 9
uint64_t virtio_mmio_slot_base(unsigned slot);
unsigned virtio_mmio_slot_irq(unsigned slot);

/* Set up d (eventfds, MMIO range, loop handlers) without touching KVM.
 * st must already hold device_features. Returns 0 or -1 (message printed). */
int virtio_mmio_init(struct virtio_dev *d, struct vm *vm, const struct virtio_device_ops *ops,
		     void *opaque, struct virtio_mmio_state *st, void *config, uint32_t config_len,
		     unsigned slot);
/* Wire the eventfds to KVM: ioeventfd per queue on QueueNotify, irqfd on
 * the GSI. Returns 0 or -1 (message printed). */
int virtio_mmio_attach_kvm(struct virtio_dev *d);
/* Undo init (and attach); the vCPUs must be stopped. */
void virtio_mmio_destroy(struct virtio_dev *d);
/* " virtio_mmio.device=4K@0xd0000000:5" into buf; returns its length, or
 * -1 if it does not fit. */
int virtio_mmio_announce(const struct virtio_dev *d, char *buf, size_t size);

/* The MMIO handler (exposed for tests and fuzzing). */
void virtio_mmio_access(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* ---- for devices; all with the device lock held ---- */

/* Queue q's used ring has new entries: publish them and interrupt the
 * driver unless it suppressed that. */
void virtio_dev_used(struct virtio_dev *d, unsigned q);
/* Raise the used-buffer interrupt now: for a device that publishes its
 * used ring in steps (vq_publish()) and decides once per batch, with
 * vq_need_interrupt(), whether the driver wants to hear about them. */
void virtio_dev_interrupt(struct virtio_dev *d);
/* Device config changed: bump ConfigGeneration, interrupt. */
void virtio_dev_config_changed(struct virtio_dev *d);
/* The device is in an error state: DEVICE_NEEDS_RESET + interrupt. */
void virtio_dev_needs_reset(struct virtio_dev *d, const char *why);
/* Have the event loop call queue_notify for q again soon, as if the
 * driver had notified (a device yielding in the middle of a busy ring). */
void virtio_dev_kick(struct virtio_dev *d, unsigned q);
/* Finish a reset that the device's reset() deferred. */
void virtio_dev_reset_done(struct virtio_dev *d);
/* Hand the queue notifications to someone else (vhost), or take them
 * back: the ioeventfds leave (or rejoin) the event loop, and while
 * external, InterruptStatus always shows the used-buffer bit, since the
 * irqfd is then written without the transport knowing (a driver checking
 * an idle queue finds nothing; nothing is lost). */
void virtio_mmio_set_external(struct virtio_dev *d, bool external);
/* The driver set DRIVER_OK, queue q is ready, and nothing is wrong. */
bool virtio_dev_queue_live(const struct virtio_dev *d, unsigned q);
bool virtio_dev_has_feature(const struct virtio_dev *d, unsigned bit);

#endif
