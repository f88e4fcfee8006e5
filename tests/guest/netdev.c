/*
 * Polling virtio-net driver and a tiny IPv4 stack for the test guest.
 *
 * Receive: every queue entry is one device-writable buffer of
 * net_opt.rxbuf bytes (head i = buffer i), all posted at start and
 * reposted after use. With VIRTIO_NET_F_MRG_RXBUF a frame may span
 * num_buffers used entries; they are copied together. Transmit: one
 * descriptor per frame, header and frame contiguous in a fixed slot.
 * With EVENT_IDX the driver kicks only when the device asks for it.
 */
#include "net.h"

/* ---- byte order and checksums ---- */

uint16_t be16(uint16_t v)
{
	return (uint16_t)(v << 8 | v >> 8);
}

uint32_t be32(uint32_t v)
{
	return (v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (; len > 1; p += 2, len -= 2)
		sum += get16(p);
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

uint16_t ip_checksum(const void *data, size_t len, uint32_t initial)
{
	return (uint16_t)~csum_fold(csum_add(initial, data, len));
}

void format_ip(char *buf, size_t n, uint32_t ip)
{
	snformat(buf, n, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

void format_mac(char *buf, size_t n, const uint8_t mac[6])
{
	snformat(buf, n, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

/* ---- the driver ---- */

static uint32_t cfg32(const struct netdev *nd, unsigned off)
{
	return vread(&nd->dev, VMMIO_CONFIG + off);
}

static uint8_t *rx_buf(struct netdev *nd, unsigned i)
{
	return nd->rx_bufs + (uint64_t)i * nd->rxbuf;
}

static void rx_repost(struct netdev *nd, unsigned i)
{
	vq_add(&nd->rx, (uint16_t)i);
}

static bool alloc_rings(struct netdev *nd, char *why, size_t n)
{
	if (!vq_setup(&nd->dev, &nd->rx, 0, NET_QSIZE, why, n) ||
	    !vq_setup(&nd->dev, &nd->tx, 1, NET_QSIZE, why, n))
		return false;
	nd->rx_bufs = galloc((uint64_t)nd->rx.size * nd->rxbuf, 4096);
	nd->tx_bufs = galloc((uint64_t)nd->tx.size * NET_TX_SLOT, 4096);
	nd->frame = galloc(65536 + 4096, 4096);
	if (!nd->rx_bufs || !nd->tx_bufs || !nd->frame) {
		snformat(why, n, "out of guest memory for buffers");
		return false;
	}
	for (unsigned i = 0; i < nd->rx.size; i++) {
		nd->rx.desc[i].addr = (uint64_t)(uintptr_t)rx_buf(nd, i);
		nd->rx.desc[i].len = nd->rxbuf;
		nd->rx.desc[i].flags = VDESC_WRITE;
		nd->rx.desc[i].next = 0;
		rx_repost(nd, i);
	}
	for (unsigned i = nd->tx.size; i-- > 0;)
		nd->tx_free[nd->ntx_free++] = (uint16_t)i;
	return true;
}

bool netdev_open(struct netdev *nd, unsigned index, uint32_t ip, char *why, size_t n)
{
	time_init();
	memset(nd, 0, sizeof(*nd));
	nd->index = index;
	nd->ip = ip;
	if (!virtio_find(VIRTIO_ID_NET, index, &nd->dev)) {
		snformat(why, n, "no virtio-net device #%u on the command line", index);
		return false;
	}
	uint64_t want = VF_VERSION_1 | VF_EVENT_IDX | VF_INDIRECT_DESC | VNET_F_MAC | VNET_F_STATUS;
	if (net_opt.mrg)
		want |= VNET_F_MRG_RXBUF;
	if (net_opt.offload)
		want |= VNET_F_CSUM | VNET_F_GUEST_CSUM;
	if (!virtio_init(&nd->dev, want, why, n))
		return false;
	uint64_t f = nd->dev.features;
	if (!(f & VNET_F_MAC)) {
		snformat(why, n, "device offers no MAC address");
		return false;
	}
	nd->mrg = f & VNET_F_MRG_RXBUF;
	nd->csum = f & VNET_F_CSUM;
	uint32_t gen, w0, w1;
	do {
		gen = vread(&nd->dev, VMMIO_CONFIG_GENERATION);
		w0 = cfg32(nd, 0);
		w1 = cfg32(nd, 4);
	} while (gen != vread(&nd->dev, VMMIO_CONFIG_GENERATION));
	memcpy(nd->mac, &w0, 4);
	memcpy(nd->mac + 4, &w1, 2);
	if ((f & VNET_F_STATUS) && !((w1 >> 16) & VNET_S_LINK_UP)) {
		snformat(why, n, "link is down (status 0x%x)", w1 >> 16);
		return false;
	}
	nd->rxbuf = net_opt.rxbuf ? (uint32_t)net_opt.rxbuf : 2048;
	if (nd->rxbuf < (nd->mrg ? 64u : VNET_HDR_LEN + NET_MAX_FRAME) || nd->rxbuf > 65536) {
		snformat(why, n, "guest.net_rxbuf=%u too small or too large (%s)", nd->rxbuf,
			 nd->mrg ? "64..65536" : "1526..65536 without mergeable buffers");
		return false;
	}
	if (!alloc_rings(nd, why, n))
		return false;
	virtio_driver_ok(&nd->dev);
	if (vread(&nd->dev, VMMIO_STATUS) & VSTATUS_NEEDS_RESET) {
		snformat(why, n, "device needs reset after DRIVER_OK");
		return false;
	}
	vq_kick(&nd->rx);
	return true;
}

/* The next used receive entry, waiting up to 1 s (the rest of a frame
 * whose first buffer we already have). */
static int rx_next(struct netdev *nd, uint32_t *len)
{
	uint64_t end = time_ns() + 1000000000ULL;
	for (;;) {
		int id = vq_used(&nd->rx, len);
		if (id >= 0 || time_ns() > end)
			return id;
		cpu_relax();
	}
}

int netdev_poll(struct netdev *nd, net_rx_fn fn)
{
	int handled = 0;
	uint32_t len;
	int id;
	while ((id = vq_used(&nd->rx, &len)) >= 0) {
		if ((unsigned)id >= nd->rx.size) {
			nd->rx_bad++;
			continue;
		}
		uint8_t *b = rx_buf(nd, (unsigned)id);
		struct vnet_hdr h = *(const struct vnet_hdr *)b;
		unsigned nb = nd->mrg ? h.num_buffers : 1;
		struct rx_info info = { &h, nb };
		if (len < VNET_HDR_LEN || len > nd->rxbuf || nb == 0 || nb > nd->rx.size) {
			nd->rx_bad++;
			rx_repost(nd, (unsigned)id);
			continue;
		}
		if (nb == 1) {
			fn(nd, b + VNET_HDR_LEN, len - VNET_HDR_LEN, &info);
			rx_repost(nd, (unsigned)id);
		} else {
			uint32_t total = len - VNET_HDR_LEN;
			memcpy(nd->frame, b + VNET_HDR_LEN, total);
			rx_repost(nd, (unsigned)id);
			bool ok = true;
			for (unsigned k = 1; k < nb; k++) {
				int id2 = rx_next(nd, &len);
				if (id2 < 0)
					return -1;
				if ((unsigned)id2 >= nd->rx.size || len > nd->rxbuf ||
				    total + len > 65536) {
					ok = false;
					if ((unsigned)id2 < nd->rx.size)
						rx_repost(nd, (unsigned)id2);
					continue;
				}
				memcpy(nd->frame + total, rx_buf(nd, (unsigned)id2), len);
				total += len;
				rx_repost(nd, (unsigned)id2);
			}
			if (!ok) {
				nd->rx_bad++;
				continue;
			}
			nd->rx_merged++;
			fn(nd, nd->frame, total, &info);
		}
		nd->rx_frames++;
		handled++;
	}
	if (handled)
		vq_kick(&nd->rx);
	return handled;
}

void netdev_reclaim(struct netdev *nd)
{
	uint32_t len;
	int id;
	while ((id = vq_used(&nd->tx, &len)) >= 0)
		if ((unsigned)id < nd->tx.size && nd->ntx_free < nd->tx.size)
			nd->tx_free[nd->ntx_free++] = (uint16_t)id;
}

uint8_t *netdev_tx_slot(struct netdev *nd, unsigned *slot)
{
	if (!nd->ntx_free)
		netdev_reclaim(nd);
	if (!nd->ntx_free)
		return NULL;
	*slot = nd->tx_free[--nd->ntx_free];
	return nd->tx_bufs + (uint64_t)*slot * NET_TX_SLOT + VNET_HDR_LEN;
}

void netdev_tx_post(struct netdev *nd, unsigned slot, uint32_t len, const struct vnet_hdr *hdr)
{
	uint8_t *b = nd->tx_bufs + (uint64_t)slot * NET_TX_SLOT;
	if (hdr)
		memcpy(b, hdr, VNET_HDR_LEN);
	else
		memset(b, 0, VNET_HDR_LEN);
	nd->tx.desc[slot].addr = (uint64_t)(uintptr_t)b;
	nd->tx.desc[slot].len = VNET_HDR_LEN + len;
	nd->tx.desc[slot].flags = 0;
	nd->tx.desc[slot].next = 0;
	vq_add(&nd->tx, (uint16_t)slot);
	nd->tx_frames++;
}

void netdev_tx_kick(struct netdev *nd)
{
	vq_kick(&nd->tx);
}

bool netdev_send(struct netdev *nd, const void *frame, uint32_t len, const struct vnet_hdr *hdr)
{
	unsigned slot;
	uint8_t *p;
	uint64_t end = time_ns() + 1000000000ULL;
	while (!(p = netdev_tx_slot(nd, &slot))) {
		if (time_ns() > end)
			return false;
		cpu_relax();
	}
	memcpy(p, frame, len);
	netdev_tx_post(nd, slot, len, hdr);
	netdev_tx_kick(nd);
	return true;
}

/* ---- the stack ---- */

#define ETH_LEN 14
#define ETYPE_ARP 0x0806
#define ETYPE_IP 0x0800

volatile bool net_quit;
uint64_t net_udp9_frames;
uint8_t net_peer_mac[6];
bool net_peer_known;

static void arp(struct netdev *nd, const uint8_t *f, uint32_t len)
{
	const uint8_t *a = f + ETH_LEN;
	if (len < ETH_LEN + 28 || get16(a) != 1 || get16(a + 2) != ETYPE_IP || a[4] != 6 ||
	    a[5] != 4)
		return;
	uint16_t op = get16(a + 6);
	uint32_t spa = get32(a + 14), tpa = get32(a + 24);
	if (op == 2 && net_opt.peer && spa == net_opt.peer) {
		memcpy(net_peer_mac, a + 8, 6);
		net_peer_known = true;
		return;
	}
	if (op != 1 || tpa != nd->ip)
		return;
	uint8_t r[ETH_LEN + 28];
	memcpy(r, a + 8, 6); /* to the asker */
	memcpy(r + 6, nd->mac, 6);
	put16(r + 12, ETYPE_ARP);
	uint8_t *ra = r + ETH_LEN;
	put16(ra, 1);
	put16(ra + 2, ETYPE_IP);
	ra[4] = 6;
	ra[5] = 4;
	put16(ra + 6, 2);
	memcpy(ra + 8, nd->mac, 6);
	put32(ra + 14, nd->ip);
	memcpy(ra + 18, a + 8, 6);
	put32(ra + 24, spa);
	netdev_send(nd, r, sizeof(r), NULL);
}

/* Turn the IPv4 frame in place into a reply: swap addresses, fresh TTL
 * and header checksum. */
static void ip_reply(struct netdev *nd, uint8_t *f, unsigned ihl)
{
	uint8_t *ip = f + ETH_LEN;
	memcpy(f, f + 6, 6);
	memcpy(f + 6, nd->mac, 6);
	uint32_t src = get32(ip + 12);
	put32(ip + 12, nd->ip);
	put32(ip + 16, src);
	ip[8] = 64;
	put16(ip + 10, 0);
	put16(ip + 10, ip_checksum(ip, ihl, 0));
}

static void icmp(struct netdev *nd, uint8_t *f, unsigned ihl, uint32_t iplen,
		 const struct rx_info *info)
{
	uint8_t *ic = f + ETH_LEN + ihl;
	uint32_t icl = iplen - ihl;
	if (icl < 8 || ic[0] != 8 || ic[1] != 0)
		return;
	if (!(info->hdr->flags & VNET_HDR_F_NEEDS_CSUM) && ip_checksum(ic, icl, 0) != 0) {
		nd->rx_bad++;
		return;
	}
	ic[0] = 0;
	put16(ic + 2, 0);
	put16(ic + 2, ip_checksum(ic, icl, 0));
	ip_reply(nd, f, ihl);
	netdev_send(nd, f, ETH_LEN + iplen, NULL);
}

static void udp_echo(struct netdev *nd, uint8_t *f, unsigned ihl, uint32_t ulen)
{
	uint8_t *ip = f + ETH_LEN, *u = ip + ihl;
	uint16_t sport = get16(u);
	put16(u, get16(u + 2));
	put16(u + 2, sport);
	ip_reply(nd, f, ihl);
	/* pseudo-header: addresses, protocol, UDP length */
	uint32_t ph = csum_add(0, ip + 12, 8) + 17 + ulen;
	put16(u + 6, 0);
	struct vnet_hdr h = { 0 };
	if (nd->csum) { /* the device (the host) finishes the checksum */
		h.flags = VNET_HDR_F_NEEDS_CSUM;
		h.csum_start = (uint16_t)(ETH_LEN + ihl);
		h.csum_offset = 6;
		put16(u + 6, csum_fold(ph));
	} else {
		uint16_t c = ip_checksum(u, ulen, ph);
		put16(u + 6, c ? c : 0xffff);
	}
	netdev_send(nd, f, ETH_LEN + ihl + ulen, nd->csum ? &h : NULL);
}

static void udp(struct netdev *nd, uint8_t *f, unsigned ihl, uint32_t iplen)
{
	uint8_t *u = f + ETH_LEN + ihl;
	uint32_t ulen = iplen - ihl;
	if (ulen < 8 || get16(u + 4) < 8 || get16(u + 4) > ulen)
		return;
	ulen = get16(u + 4);
	uint16_t dport = get16(u + 2);
	if (dport == 7) {
		udp_echo(nd, f, ihl, ulen);
	} else if (dport == 9) {
		net_udp9_frames++;
		if (ulen >= 12 && !memcmp(u + 8, "quit", 4))
			net_quit = true;
	}
}

void net_serve(struct netdev *nd, uint8_t *f, uint32_t len, const struct rx_info *info)
{
	if (len < ETH_LEN)
		return;
	uint16_t type = get16(f + 12);
	if (type == ETYPE_ARP) {
		arp(nd, f, len);
		return;
	}
	if (type != ETYPE_IP || len < ETH_LEN + 20)
		return;
	uint8_t *ip = f + ETH_LEN;
	unsigned ihl = (ip[0] & 15) * 4u;
	uint32_t iplen = get16(ip + 2);
	if ((ip[0] >> 4) != 4 || ihl < 20 || iplen < ihl || iplen > len - ETH_LEN)
		return;
	if (ip_checksum(ip, ihl, 0) != 0) {
		nd->rx_bad++;
		return;
	}
	if (get32(ip + 16) != nd->ip || (get16(ip + 6) & 0x3fff))
		return; /* not ours, or a fragment */
	if (ip[9] == 1)
		icmp(nd, f, ihl, iplen, info);
	else if (ip[9] == 17)
		udp(nd, f, ihl, iplen);
}
