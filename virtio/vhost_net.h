/*
 * vhost-net offload for virtio-net: the host kernel moves frames between
 * the virtqueues and the tap, without the VMM on the data path.
 *
 * Set-up, from the uapi (linux/vhost.h): open /dev/vhost-net,
 * VHOST_SET_OWNER, VHOST_GET_FEATURES, VHOST_SET_MEM_TABLE with guest
 * RAM's regions (the memfd mapping). When the driver sets DRIVER_OK:
 * VHOST_SET_FEATURES, per vring VHOST_SET_VRING_NUM / _BASE / _ADDR, the
 * queue's KVM ioeventfd as VHOST_SET_VRING_KICK and the device's irqfd as
 * VHOST_SET_VRING_CALL, then VHOST_NET_SET_BACKEND with the tap. A reset
 * detaches the backend and reads the avail indices back.
 *
 * UNVERIFIED: the hosts this was written on have no /dev/vhost-net, so
 * only the pieces below that need no device are tested (mem table, vring
 * addresses, feature masking, open errors and the fallback).
 */
#ifndef VMM_VIRTIO_VHOST_NET_H
#define VMM_VIRTIO_VHOST_NET_H

#include <linux/vhost.h>
#include <stddef.h>
#include <stdint.h>

#include "../mem.h"
#include "virtqueue.h"

struct vhost_net;
struct virtio_dev;

#define VHOST_NET_DEVICE "/dev/vhost-net" /* VMM_VHOST_NET_DEVICE overrides it */
#define VHOST_MAX_REGIONS 2               /* guest_mem: below and above the hole */

/* The virtio bits vhost-net implements itself (rings and headers); any
 * other device feature is the tap's business and passes through. */
#define VHOST_NET_RING_FEATURES                                                 \
	((1ULL << 32 /* VIRTIO_F_VERSION_1 */) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | \
	 (1ULL << VIRTIO_RING_F_EVENT_IDX) | (1ULL << 15 /* VIRTIO_NET_F_MRG_RXBUF */))

/* Open and own a vhost-net instance over guest RAM. NULL with the reason
 * in why when it cannot be had. */
struct vhost_net *vhost_net_open(const struct guest_mem *mem, char *why, size_t why_size);
/* What VHOST_GET_FEATURES said. */
uint64_t vhost_net_features(const struct vhost_net *v);
/* The features a device over vhost can offer: ring features vhost lacks
 * are withdrawn. */
uint64_t vhost_net_mask_features(uint64_t offered, uint64_t vhost_features);
/* Hand d's two queues (RX 0, TX 1) and the tap to vhost-net, using the
 * features d's driver accepted. 0, or -1 with the reason in why (nothing
 * is left half-started). */
int vhost_net_start(struct vhost_net *v, struct virtio_dev *d, int tap_fd, char *why,
		    size_t why_size);
/* Detach the tap; the avail indices come back into d's queue state. */
void vhost_net_stop(struct vhost_net *v, struct virtio_dev *d);
/* Stop if started, close, free. */
void vhost_net_close(struct vhost_net *v, struct virtio_dev *d);

/* ---- pure helpers (unit-tested) ---- */

/* Guest RAM's regions for VHOST_SET_MEM_TABLE; returns how many (<= max). */
unsigned vhost_mem_regions(const struct guest_mem *mem, struct vhost_memory_region *r,
			   unsigned max);
/* VHOST_SET_VRING_ADDR for queue `index` from its state: host addresses
 * of the three rings, each checked to lie in RAM. 0, or -1. */
int vhost_vring_addr(const struct guest_mem *mem, unsigned index, const struct vq_state *q,
		     struct vhost_vring_addr *out);
/* VHOST_SET_FEATURES' argument for what the driver accepted. */
uint64_t vhost_net_acked(uint64_t driver_features, uint64_t vhost_features);

#endif
