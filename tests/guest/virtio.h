/*
 * A polling virtio-mmio (version 2) driver for the test guest: find
 * devices from `virtio_mmio.device=` on the command line, run the init
 * sequence, set up split virtqueues and poll their used rings. No
 * interrupts: the IOAPIC stays masked, and EVENT_IDX's used_event is kept
 * behind the used index so the device has no reason to send any.
 * Constants are from the virtio 1.2 spec.
 */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include "guest.h"

/* virtio-mmio registers */
#define VMMIO_MAGIC 0x000
#define VMMIO_VERSION 0x004
#define VMMIO_DEVICE_ID 0x008
#define VMMIO_DEVICE_FEATURES 0x010
#define VMMIO_DEVICE_FEATURES_SEL 0x014
#define VMMIO_DRIVER_FEATURES 0x020
#define VMMIO_DRIVER_FEATURES_SEL 0x024
#define VMMIO_QUEUE_SEL 0x030
#define VMMIO_QUEUE_NUM_MAX 0x034
#define VMMIO_QUEUE_NUM 0x038
#define VMMIO_QUEUE_READY 0x044
#define VMMIO_QUEUE_NOTIFY 0x050
#define VMMIO_INTERRUPT_STATUS 0x060
#define VMMIO_INTERRUPT_ACK 0x064
#define VMMIO_STATUS 0x070
#define VMMIO_QUEUE_DESC_LOW 0x080
#define VMMIO_QUEUE_DESC_HIGH 0x084
#define VMMIO_QUEUE_AVAIL_LOW 0x090
#define VMMIO_QUEUE_AVAIL_HIGH 0x094
#define VMMIO_QUEUE_USED_LOW 0x0a0
#define VMMIO_QUEUE_USED_HIGH 0x0a4
#define VMMIO_CONFIG_GENERATION 0x0fc
#define VMMIO_CONFIG 0x100

#define VSTATUS_ACK 1
#define VSTATUS_DRIVER 2
#define VSTATUS_DRIVER_OK 4
#define VSTATUS_FEATURES_OK 8
#define VSTATUS_NEEDS_RESET 0x40
#define VSTATUS_FAILED 0x80

#define VF_INDIRECT_DESC (1ULL << 28)
#define VF_EVENT_IDX (1ULL << 29)
#define VF_VERSION_1 (1ULL << 32)

#define VDESC_NEXT 1
#define VDESC_WRITE 2
#define VDESC_INDIRECT 4
#define VUSED_NO_NOTIFY 1
#define VAVAIL_NO_INTERRUPT 1

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vdev {
	uint64_t base;
	unsigned irq;
	uint32_t device_id;
	uint64_t features; /* negotiated */
};

struct gvq {
	struct vdev *dev;
	unsigned index;
	uint16_t size;
	volatile struct vdesc *desc;
	volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
	volatile uint8_t *used;   /* flags, idx, {id, len}[size], avail_event */
	uint16_t avail_idx;  /* next avail slot (published on vq_publish) */
	uint16_t kicked_idx; /* avail index when we last decided about a kick */
	uint16_t last_used;
	bool event_idx;
	uint64_t kicks; /* notifications actually sent */
};

static inline uint32_t vread(const struct vdev *d, unsigned reg)
{
	return mmio_read32(d->base + reg);
}
static inline void vwrite(const struct vdev *d, unsigned reg, uint32_t v)
{
	mmio_write32(d->base + reg, v);
}

/* Bump allocator over RAM above the image: zeroed, aligned, never freed.
 * NULL when RAM runs out. */
void *galloc(uint64_t size, uint64_t align);

/* The index-th device with this id announced on the command line. */
bool virtio_find(uint32_t device_id, unsigned index, struct vdev *d);
/* Reset, ACKNOWLEDGE, DRIVER, negotiate (offered & want; VERSION_1 is
 * required), FEATURES_OK. */
bool virtio_init(struct vdev *d, uint64_t want, char *why, size_t n);
bool vq_setup(struct vdev *d, struct gvq *q, unsigned index, uint16_t max_size, char *why,
	      size_t n);
void virtio_driver_ok(struct vdev *d);

/* Put a chain head in the avail ring (not yet visible). */
void vq_add(struct gvq *q, uint16_t head);
/* Publish added heads and notify the device if it wants to hear. */
void vq_kick(struct gvq *q);
/* Next used element: its id, or -1 if none yet. */
int vq_used(struct gvq *q, uint32_t *len);

#endif
