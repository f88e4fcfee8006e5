/*
 * The test guest's polling virtio-net driver (netdev.c), its tiny IPv4
 * stack (ARP, ICMP echo, UDP echo on port 7) and the network tests
 * (net.c): `net` serves until stopped, `net_bench` floods or sinks.
 */
#ifndef GUEST_NET_H
#define GUEST_NET_H

#include "virtio.h"

#define VIRTIO_ID_NET 1
#define VNET_F_CSUM (1ULL << 0)
#define VNET_F_GUEST_CSUM (1ULL << 1)
#define VNET_F_MAC (1ULL << 5)
#define VNET_F_MRG_RXBUF (1ULL << 15)
#define VNET_F_STATUS (1ULL << 16)
#define VNET_S_LINK_UP 1
#define VNET_HDR_F_NEEDS_CSUM 1
#define VNET_HDR_F_DATA_VALID 2
#define VNET_HDR_LEN 12

#define NET_QSIZE 256
#define NET_TX_SLOT 2048   /* header + the largest frame we send (1514) */
#define NET_MAX_FRAME 1514 /* no TSO: the device sends no more than this */
#define NET_MAX_NICS 2

struct vnet_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};

struct netdev {
	struct vdev dev;
	struct gvq rx, tx;
	unsigned index;
	uint8_t mac[6];
	uint32_t ip; /* host byte order */
	bool mrg, csum;
	uint32_t rxbuf;   /* bytes per receive buffer */
	uint8_t *rx_bufs; /* NET_QSIZE of them */
	uint8_t *tx_bufs; /* NET_QSIZE slots of NET_TX_SLOT */
	uint8_t *frame;   /* a frame spanning several buffers, assembled */
	uint16_t tx_free[NET_QSIZE];
	unsigned ntx_free;
	uint64_t rx_frames, tx_frames, rx_bad, rx_merged;
};

/* What a received frame came with. */
struct rx_info {
	const struct vnet_hdr *hdr;
	unsigned nbufs;
};

typedef void (*net_rx_fn)(struct netdev *nd, uint8_t *frame, uint32_t len,
			  const struct rx_info *info);

/* Options (guest.ip=, guest.net_*=), parsed by main.c through
 * parse_net_option(). */
struct net_options {
	uint32_t ip[NET_MAX_NICS]; /* guest.ip, guest.ip1 */
	uint32_t peer;             /* guest.net_peer: net_bench tx destination */
	const char *bench;         /* guest.net_bench=tx|rx */
	uint64_t size, secs;       /* guest.net_size (frame bytes), guest.net_secs */
	uint64_t mrg, offload;     /* guest.net_mrg=0|1, guest.net_offload=0|1 (default 1) */
	uint64_t rxbuf;            /* guest.net_rxbuf: receive buffer bytes */
};
extern struct net_options net_opt;
bool parse_net_option(const char *key, const char *val);

/* netdev.c */
bool netdev_open(struct netdev *nd, unsigned index, uint32_t ip, char *why, size_t n);
/* Hand every received frame to fn, recycle the buffers, kick if asked.
 * Returns frames handled, or -1 when a frame's buffers never came. */
int netdev_poll(struct netdev *nd, net_rx_fn fn);
/* Take back sent slots. */
void netdev_reclaim(struct netdev *nd);
/* A free transmit slot's frame area (NET_MAX_FRAME bytes), or NULL. */
uint8_t *netdev_tx_slot(struct netdev *nd, unsigned *slot);
/* Queue slot's frame of len bytes (not yet kicked); hdr NULL: no offload. */
void netdev_tx_post(struct netdev *nd, unsigned slot, uint32_t len, const struct vnet_hdr *hdr);
void netdev_tx_kick(struct netdev *nd);
/* Copy a frame into a slot and kick; false when the ring stays full. */
bool netdev_send(struct netdev *nd, const void *frame, uint32_t len, const struct vnet_hdr *hdr);

/* the stack (netdev.c) */
uint16_t be16(uint16_t v);
uint32_t be32(uint32_t v);
uint16_t ip_checksum(const void *data, size_t len, uint32_t initial);
void format_ip(char *buf, size_t n, uint32_t ip);
void format_mac(char *buf, size_t n, const uint8_t mac[6]);
/* ARP replies, ICMP echo, UDP echo (port 7); UDP to port 9 is counted,
 * and "quit" there ends the `net` test. */
void net_serve(struct netdev *nd, uint8_t *frame, uint32_t len, const struct rx_info *info);
extern volatile bool net_quit;
extern uint64_t net_udp9_frames;

bool test_net(char *why, size_t n);
bool test_net_bench(char *why, size_t n);

#endif
