/*
 * virtio-net (virtio 1.2, 5.1) on a tap: one receive and one transmit
 * queue, VERSION_1 headers (struct virtio_net_hdr_v1, 12 bytes), checksum
 * and TSO offloads passed through the tap, mergeable receive buffers,
 * link status, and (optionally) vhost-net.
 *
 * The device's whole state is struct virtio_net_state (transport
 * registers and queues, config space, settings): plain data, for
 * snapshots. Frames move on the event loop thread, never on a vCPU:
 * transmit on the TX queue's ioeventfd, receive when the tap is readable.
 */
#ifndef VMM_VIRTIO_NET_H
#define VMM_VIRTIO_NET_H

#include <linux/virtio_net.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "../vmm.h"
#include "mmio.h"
#include "virtio.h"

#define VIRTIO_NET_QUEUE_SIZE 256
#define VIRTIO_NET_RXQ 0
#define VIRTIO_NET_TXQ 1
#define VIRTIO_NET_HDR_LEN 12 /* struct virtio_net_hdr_v1 */
/* The largest frame the guest may send, header included: a 64 KiB GSO
 * frame plus its headers. Longer ones are dropped as malformed. */
#define VIRTIO_NET_MAX_TX 65550
/* The largest frame the tap can hand us (65535-byte MTU, Ethernet and
 * VLAN headers, the vnet header), rounded up. */
#define VIRTIO_NET_RX_BUF (68 * 1024)
/* Receive buffers held for a frame that does not fit yet: iovec pool. */
#define VIRTIO_NET_RX_IOV_POOL (4 * VQ_MAX_SIZE)
/* Frames per pass before the rest of the event loop gets a turn. */
#define VIRTIO_NET_TX_BUDGET 256
#define VIRTIO_NET_RX_BUDGET 128
/* After a transmit batch empties the ring, how long to keep watching it
 * before asking for a kick (a VM exit for the guest, 12-27 us on some
 * hosts). Only after frames were sent: an idle queue costs nothing. */
#define VIRTIO_NET_TX_POLL_NS (30 * 1000ULL)

/* Offered features, on top of the transport's (VERSION_1, INDIRECT_DESC,
 * EVENT_IDX). */
#define VIRTIO_NET_DEVICE_FEATURES                                                          \
	((1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_CSUM) |                  \
	 (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_GUEST_TSO4) |                   \
	 (1ULL << VIRTIO_NET_F_GUEST_TSO6) | (1ULL << VIRTIO_NET_F_HOST_TSO4) |             \
	 (1ULL << VIRTIO_NET_F_HOST_TSO6) | (1ULL << VIRTIO_NET_F_MRG_RXBUF) |              \
	 (1ULL << VIRTIO_NET_F_STATUS))

/*
 * Per-device counters, for the API's metrics. Frames the guest sent that
 * were dropped as malformed count once in tx_dropped_malformed and once
 * in the field saying why.
 */
struct virtio_net_counters {
	uint64_t rx_packets, rx_bytes; /* delivered to the guest (bytes without the header) */
	uint64_t tx_packets, tx_bytes; /* written to the tap */
	uint64_t rx_dropped_too_big;   /* did not fit the guest's buffers */
	uint64_t rx_dropped_offload;   /* GSO or partial checksum the driver did not accept */
	uint64_t rx_dropped_short;     /* shorter than the vnet header */
	uint64_t rx_bad_buffers;       /* receive chains returned unused: malformed,
					* device-readable, or smaller than the header */
	uint64_t rx_errors;            /* tap read errors */
	uint64_t tx_dropped_malformed; /* the sum of the four below */
	uint64_t tx_bad_chain;         /* the chain did not walk, or had writable buffers */
	uint64_t tx_short_header;      /* shorter than the vnet header */
	uint64_t tx_oversized;         /* more than VIRTIO_NET_MAX_TX bytes */
	uint64_t tx_bad_offload;       /* header flags / GSO type not negotiated or unknown */
	uint64_t tx_dropped_io;        /* the tap refused the frame (write error) */
	uint64_t rx_stalls;            /* times reception stopped for lack of buffers */
};

struct virtio_net_settings {
	char ifname[IFNAMSIZ]; /* the tap's interface name */
	char id[VMM_NET_ID_MAX + 1];
	uint8_t vhost; /* vhost-net carries the data path */
	uint8_t pad[7];
};

struct virtio_net_state {
	struct virtio_mmio_state transport;
	struct virtio_net_config config;
	uint8_t config_pad[8];
	struct virtio_net_settings settings;
	uint32_t offloads; /* TUN_F_* in force on the tap */
	uint8_t active;    /* the data path is running for this DRIVER_OK */
	uint8_t pad[3];
};

/* A receive chain popped and held until a frame fills it. */
struct net_rx_chain {
	uint16_t head;
	uint16_t niov;
	uint32_t iov_start; /* into rx_iov */
	uint32_t len;       /* writable bytes */
};

struct vhost_net;

struct virtio_net {
	struct virtio_net_state st; /* everything a snapshot needs */
	struct virtio_dev vdev;
	int tap_fd;
	bool is_tap;      /* false: a packet socket standing in (tests) */
	bool tap_on_loop; /* registered with the event loop */
	bool tap_polled;  /* EPOLLIN wanted */
	bool tap_dead;    /* the tap went away (interface deleted) */
	bool unsignalled[2]; /* used entries published since the last interrupt decision */
	struct virtio_net_counters ctr;
	/* receive: one frame read ahead, the chains held for it */
	uint8_t *rx_buf;     /* VIRTIO_NET_RX_BUF bytes */
	uint32_t rx_pending; /* bytes of a frame in rx_buf (header included); 0: none */
	unsigned rx_nres;
	uint64_t rx_res_bytes;
	unsigned rx_iov_used;
	struct net_rx_chain rx_res[VIRTIO_NET_QUEUE_SIZE];
	struct iovec rx_iov[VIRTIO_NET_RX_IOV_POOL];
	/* transmit: [0] is our copy of the header, then the chain */
	struct iovec tx_iov[VQ_MAX_SIZE + 1];
	struct vhost_net *vhost;
	struct ratelimit rl;
};

/* ---- the data path (net_dp.c): no event loop, no KVM; the lock held ---- */

enum net_rx_result {
	NET_RX_IDLE,       /* nothing more to read from the tap */
	NET_RX_NO_BUFFERS, /* a frame waits for receive buffers */
	NET_RX_BUDGET,     /* stopped after the budget: more may be waiting */
	NET_RX_BROKEN,     /* the ring is unusable: the device needs a reset */
	NET_RX_TAP_ERROR,  /* the tap failed for good */
};

/* Send up to `budget` frames from the TX ring to the tap, returning each
 * chain; *broken is set if the ring is unusable. Returns chains taken. */
unsigned net_tx_drain(struct virtio_net *n, unsigned budget, bool *broken);
/* Move up to `budget` frames from the tap into the RX ring. */
enum net_rx_result net_rx_fill(struct virtio_net *n, unsigned budget);
/* Forget the frame read ahead and the chains held (device reset: the
 * ring is the driver's again). */
void net_rx_discard(struct virtio_net *n);
/* TUN_F_* offloads matching the features the driver accepted. */
unsigned net_offloads_for(uint64_t driver_features);

/* ---- the device (net.c) ---- */

/* One device in window `slot` over tap `cfg`, not yet wired to KVM. NULL on
 * failure, with *status the exit status (message printed). */
struct virtio_net *virtio_net_create(struct vm *vm, const struct net_config *cfg, unsigned slot,
				     int *status);
/* The same over an fd the caller opened: a tap (is_tap) or, for tests, a
 * SOCK_SEQPACKET / SOCK_DGRAM socket; the device owns it from now on. */
struct virtio_net *virtio_net_create_fd(struct vm *vm, const struct net_config *cfg,
					unsigned slot, int fd, bool is_tap, int *status);
void virtio_net_destroy(struct virtio_net *n);
/* A consistent copy of the counters (any thread). */
void virtio_net_get_counters(struct virtio_net *n, struct virtio_net_counters *out);
/* The VM's virtio-net device with this id (the API's iface_id), or NULL. */
struct virtio_net *virtio_net_find(struct vm *vm, const char *id);

extern const struct virtio_device_kind virtio_net_kind;

#endif
