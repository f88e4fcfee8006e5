/*
 * virtio-net data path: frames between the virtqueues and the tap.
 *
 * Transmit: each chain is one frame, a 12-byte virtio_net_hdr_v1 then the
 * Ethernet frame, laid out over any descriptors. The header is copied out
 * once and checked (offloads the driver did not negotiate, unknown flags
 * or GSO types, a checksum position outside the frame), and the frame goes
 * to the tap in one writev() with our copy of the header in front: the
 * driver cannot change it between the check and the write. Malformed
 * frames are dropped and counted; every chain is returned (length 0).
 *
 * Receive: one frame is read ahead from the tap into a host buffer, then
 * copied into receive chains. Chains are popped into a reserve and held
 * until a frame fills them, so a frame larger than the buffers at hand
 * waits (nothing is dropped, nothing is pushed back into the avail ring)
 * until the driver adds more; the caller then stops polling the tap.
 * With VIRTIO_NET_F_MRG_RXBUF a frame spans as many chains as it needs
 * and num_buffers says how many; without it a frame must fit one chain.
 *
 * No event loop, no KVM here: unit tests and the fuzzer drive these
 * functions directly. The caller holds the device lock.
 */
#include <endian.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net.h"

#define ETH_HDR_LEN 14

/* read() and writev() without glibc's cancellation-point wrappers, which
 * cost about a tenth of the per-frame time on these hosts (nothing here
 * is ever cancelled). */
static ssize_t tap_read(int fd, void *buf, size_t len)
{
	return syscall(SYS_read, fd, buf, len);
}

static ssize_t tap_writev(int fd, const struct iovec *iov, int cnt)
{
	return syscall(SYS_writev, fd, iov, cnt);
}

static uint64_t features(const struct virtio_net *n)
{
	return n->st.transport.driver_features;
}

static bool has(const struct virtio_net *n, unsigned bit)
{
	return (features(n) >> bit) & 1;
}

unsigned net_offloads_for(uint64_t f)
{
#define F(b) ((f >> (b)) & 1)
	if (!F(VIRTIO_NET_F_GUEST_CSUM))
		return 0; /* TSO needs partial checksums: the tap refuses it alone */
	unsigned o = TUN_F_CSUM;
	if (F(VIRTIO_NET_F_GUEST_TSO4))
		o |= TUN_F_TSO4;
	if (F(VIRTIO_NET_F_GUEST_TSO6))
		o |= TUN_F_TSO6;
	if (F(VIRTIO_NET_F_GUEST_ECN) && (o & (TUN_F_TSO4 | TUN_F_TSO6)))
		o |= TUN_F_TSO_ECN;
	if (F(VIRTIO_NET_F_GUEST_UFO))
		o |= TUN_F_UFO;
	return o;
#undef F
}

/* ---- transmit ---- */

static void tx_malformed(struct virtio_net *n, uint64_t *why)
{
	(*why)++;
	n->ctr.tx_dropped_malformed++;
}

/* Copy the header out of the readable stream and drop it from the iovs
 * (every iov has bytes: zero-length descriptors take no slot). Returns
 * the index of the first iov after it. */
static unsigned take_header(struct iovec *iov, struct virtio_net_hdr_v1 *h)
{
	uint8_t *dst = (uint8_t *)h;
	size_t need = sizeof(*h);
	unsigned i = 0;
	while (need) {
		size_t k = iov[i].iov_len < need ? iov[i].iov_len : need;
		memcpy(dst, iov[i].iov_base, k);
		dst += k;
		need -= k;
		iov[i].iov_base = (uint8_t *)iov[i].iov_base + k;
		iov[i].iov_len -= k;
		if (iov[i].iov_len == 0)
			i++;
	}
	return i;
}

/* Is the header one the negotiated features allow? */
static bool tx_header_ok(const struct virtio_net *n, const struct virtio_net_hdr_v1 *h,
			 uint64_t frame_len)
{
	if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return false; /* DATA_VALID / RSC_INFO are the device's to set */
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		uint64_t start = le16toh(h->csum_start), off = le16toh(h->csum_offset);
		if (!has(n, VIRTIO_NET_F_CSUM) || start + off + 2 > frame_len)
			return false;
	}
	uint8_t gso = h->gso_type;
	if (gso & VIRTIO_NET_HDR_GSO_ECN) {
		if (!has(n, VIRTIO_NET_F_HOST_ECN))
			return false;
		gso &= (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	}
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return !(h->gso_type & VIRTIO_NET_HDR_GSO_ECN);
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!has(n, VIRTIO_NET_F_HOST_TSO4))
			return false;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!has(n, VIRTIO_NET_F_HOST_TSO6))
			return false;
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		if (!has(n, VIRTIO_NET_F_HOST_UFO))
			return false;
		break;
	default:
		return false;
	}
	return h->gso_size != 0;
}

static void tx_frame(struct virtio_net *n, struct vq_chain *c)
{
	if (c->nr_in) {
		vmm_warn_ratelimited(&n->rl, "%s: transmit chain with device-writable buffers dropped",
				     n->vdev.name);
		tx_malformed(n, &n->ctr.tx_bad_chain);
		return;
	}
	if (c->out_len < VIRTIO_NET_HDR_LEN + ETH_HDR_LEN) {
		tx_malformed(n, &n->ctr.tx_short_header);
		return;
	}
	if (c->out_len > VIRTIO_NET_MAX_TX) {
		vmm_warn_ratelimited(&n->rl, "%s: %llu-byte frame dropped (at most %u with the header)",
				     n->vdev.name, (unsigned long long)c->out_len, VIRTIO_NET_MAX_TX);
		tx_malformed(n, &n->ctr.tx_oversized);
		return;
	}
	struct virtio_net_hdr_v1 h;
	unsigned first = take_header(c->iov, &h); /* c->iov is tx_iov + 1 */
	uint64_t frame_len = c->out_len - VIRTIO_NET_HDR_LEN;
	if (!tx_header_ok(n, &h, frame_len)) {
		vmm_warn_ratelimited(&n->rl,
				     "%s: frame with header flags 0x%x gso_type 0x%x dropped (not "
				     "negotiated, or malformed)",
				     n->vdev.name, h.flags, h.gso_type);
		tx_malformed(n, &n->ctr.tx_bad_offload);
		return;
	}
	h.num_buffers = 0;
	struct iovec *iov = c->iov + first - 1; /* our header goes just before the data */
	iov[0] = (struct iovec){ .iov_base = &h, .iov_len = sizeof(h) };
	ssize_t w = tap_writev(n->tap_fd, iov, (int)(c->nr_out - first + 1));
	if (w < 0) {
		if (errno != EIO) /* EIO: the tap is down, nothing to say */
			vmm_warn_ratelimited(&n->rl, "%s: tap write: %s", n->vdev.name,
					     strerror(errno));
		n->ctr.tx_dropped_io++;
		return;
	}
	n->ctr.tx_packets++;
	n->ctr.tx_bytes += frame_len;
}

unsigned net_tx_drain(struct virtio_net *n, unsigned budget, bool *broken)
{
	struct virtqueue *vq = &n->vdev.vq[VIRTIO_NET_TXQ];
	struct vq_chain c = { .iov = n->tx_iov + 1, .max_iov = VQ_MAX_SIZE };
	unsigned done = 0;
	*broken = false;
	while (done < budget) {
		int rc = vq_pop(vq, &c);
		if (rc == VQ_EMPTY)
			break;
		if (rc == VQ_BROKEN) {
			*broken = true;
			break;
		}
		if (rc == VQ_BAD_CHAIN)
			tx_malformed(n, &n->ctr.tx_bad_chain);
		else
			tx_frame(n, &c);
		vq_push(vq, c.head, 0);
		done++;
	}
	return done;
}

/* ---- receive ---- */

void net_rx_discard(struct virtio_net *n)
{
	n->rx_pending = 0;
	n->rx_nres = 0;
	n->rx_iov_used = 0;
	n->rx_res_bytes = 0;
}

/* Drop the first m held chains (they were pushed). */
static void rx_consume(struct virtio_net *n, unsigned m)
{
	if (m == n->rx_nres) {
		n->rx_nres = 0;
		n->rx_iov_used = 0;
		n->rx_res_bytes = 0;
		return;
	}
	uint32_t base = n->rx_res[m].iov_start;
	for (unsigned i = 0; i < m; i++)
		n->rx_res_bytes -= n->rx_res[i].len;
	memmove(n->rx_iov, n->rx_iov + base, (n->rx_iov_used - base) * sizeof(n->rx_iov[0]));
	for (unsigned i = m; i < n->rx_nres; i++) {
		n->rx_res[i - m] = n->rx_res[i];
		n->rx_res[i - m].iov_start -= base;
	}
	n->rx_nres -= m;
	n->rx_iov_used -= base;
}

enum reserve_result { RES_OK, RES_EMPTY, RES_FULL, RES_BROKEN };

/* Pop chains into the reserve until it has `chains` chains and `bytes`
 * bytes. Chains the frame cannot use go back at once with length 0. */
static enum reserve_result rx_reserve(struct virtio_net *n, unsigned chains, uint64_t bytes)
{
	struct virtqueue *vq = &n->vdev.vq[VIRTIO_NET_RXQ];
	while (n->rx_nres < chains || n->rx_res_bytes < bytes) {
		if (n->rx_nres >= VIRTIO_NET_QUEUE_SIZE ||
		    VIRTIO_NET_RX_IOV_POOL - n->rx_iov_used < VQ_MAX_SIZE)
			return RES_FULL;
		struct vq_chain c = { .iov = n->rx_iov + n->rx_iov_used, .max_iov = VQ_MAX_SIZE };
		int rc = vq_pop(vq, &c);
		if (rc == VQ_EMPTY)
			return RES_EMPTY;
		if (rc == VQ_BROKEN)
			return RES_BROKEN;
		if (rc == VQ_BAD_CHAIN || c.nr_out || c.in_len < VIRTIO_NET_HDR_LEN) {
			if (rc != VQ_BAD_CHAIN)
				vmm_warn_ratelimited(&n->rl,
						     "%s: receive chain at head %u returned unused "
						     "(%s)",
						     n->vdev.name, c.head,
						     c.nr_out ? "device-readable buffers"
							      : "smaller than the header");
			n->ctr.rx_bad_buffers++;
			vq_push(vq, c.head, 0);
			continue;
		}
		n->rx_res[n->rx_nres++] = (struct net_rx_chain){
			.head = c.head, .niov = c.nr_in, .iov_start = n->rx_iov_used,
			.len = (uint32_t)c.in_len,
		};
		n->rx_iov_used += c.nr_in;
		n->rx_res_bytes += c.in_len;
	}
	return RES_OK;
}

/* Copy len bytes into iovs that hold at least that many. */
static void copy_to_iov(const struct iovec *iov, const uint8_t *src, size_t len)
{
	for (unsigned i = 0; len; i++) {
		size_t k = iov[i].iov_len < len ? iov[i].iov_len : len;
		memcpy(iov[i].iov_base, src, k);
		src += k;
		len -= k;
	}
}

/* May the frame read ahead go to this driver? Fixes the header up. */
static bool rx_header_ok(struct virtio_net *n)
{
	struct virtio_net_hdr_v1 *h = (struct virtio_net_hdr_v1 *)n->rx_buf;
	uint32_t o = n->st.offloads;
	uint8_t gso = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	/* A frame queued under offloads an earlier driver accepted. */
	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !(o & TUN_F_CSUM))
		return false;
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) && !(o & TUN_F_TSO_ECN))
		return false;
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		break;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!(o & TUN_F_TSO4))
			return false;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!(o & TUN_F_TSO6))
			return false;
		break;
	case VIRTIO_NET_HDR_GSO_UDP:
		if (!(o & TUN_F_UFO))
			return false;
		break;
	default:
		return false;
	}
	if (!has(n, VIRTIO_NET_F_GUEST_CSUM))
		h->flags = 0; /* 5.1.6.4.1 */
	return true;
}

enum deliver_result { DELIVERED, WAITING, DROPPED, BROKEN };

static enum deliver_result rx_deliver(struct virtio_net *n)
{
	struct virtqueue *vq = &n->vdev.vq[VIRTIO_NET_RXQ];
	uint32_t len = n->rx_pending;
	bool mrg = has(n, VIRTIO_NET_F_MRG_RXBUF);
	switch (rx_reserve(n, 1, mrg ? len : 0)) {
	case RES_OK:
		break;
	case RES_EMPTY:
		return WAITING;
	case RES_BROKEN:
		return BROKEN;
	case RES_FULL: /* the buffers a driver can offer will never hold it */
		n->ctr.rx_dropped_too_big++;
		n->rx_pending = 0;
		return DROPPED;
	}
	/* How many chains the frame takes. */
	unsigned m = 0;
	uint64_t have = 0;
	while (have < len && m < n->rx_nres)
		have += n->rx_res[m++].len;
	if (have < len || (!mrg && m > 1)) {
		/* Without mergeable buffers a frame must fit one chain; the
		 * chain stays for the next frame. */
		n->ctr.rx_dropped_too_big++;
		n->rx_pending = 0;
		return DROPPED;
	}
	struct virtio_net_hdr_v1 *h = (struct virtio_net_hdr_v1 *)n->rx_buf;
	h->num_buffers = htole16((uint16_t)m);
	uint32_t off = 0;
	for (unsigned i = 0; i < m; i++) {
		const struct net_rx_chain *r = &n->rx_res[i];
		uint32_t k = r->len < len - off ? r->len : len - off;
		copy_to_iov(n->rx_iov + r->iov_start, n->rx_buf + off, k);
		vq_push(vq, r->head, k);
		off += k;
	}
	rx_consume(n, m);
	n->rx_pending = 0;
	n->ctr.rx_packets++;
	n->ctr.rx_bytes += len - VIRTIO_NET_HDR_LEN;
	return DELIVERED;
}

enum net_rx_result net_rx_fill(struct virtio_net *n, unsigned budget)
{
	for (unsigned done = 0; done < budget; done++) {
		if (!n->rx_pending) {
			ssize_t r = tap_read(n->tap_fd, n->rx_buf, VIRTIO_NET_RX_BUF);
			if (r < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return NET_RX_IDLE;
				if (errno == EINTR)
					continue;
				n->ctr.rx_errors++;
				vmm_warn_ratelimited(&n->rl, "%s: tap read: %s", n->vdev.name,
						     strerror(errno));
				return NET_RX_TAP_ERROR;
			}
			if (r == 0)
				return NET_RX_TAP_ERROR; /* end of file: a tap never says that */
			if (r < VIRTIO_NET_HDR_LEN + ETH_HDR_LEN) {
				n->ctr.rx_dropped_short++;
				continue;
			}
			n->rx_pending = (uint32_t)r;
			if (!rx_header_ok(n)) {
				n->ctr.rx_dropped_offload++;
				n->rx_pending = 0;
				continue;
			}
		}
		switch (rx_deliver(n)) {
		case WAITING:
			return NET_RX_NO_BUFFERS;
		case BROKEN:
			return NET_RX_BROKEN;
		case DELIVERED:
		case DROPPED:
			break;
		}
	}
	return NET_RX_BUDGET;
}
