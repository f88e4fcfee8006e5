/*
 * libFuzzer target: virtio-net transmit (and receive) descriptor handling
 * (virtio/net_dp.c over virtio/virtqueue.c) on a fuzzed guest memory and
 * fuzzed rings, with fuzzed negotiated features.
 *
 * Input: a 20-byte header, then guest RAM contents (zero-filled to 64 KiB).
 *   [0] features: bit 0 EVENT_IDX, 1 INDIRECT_DESC, 2 CSUM, 3 HOST_TSO4,
 *       4 HOST_TSO6, 5 MRG_RXBUF, 6 GUEST_CSUM + GUEST_TSO4/6, 7 run receive
 *   [1] log2 of the TX queue size (mod 9), [2..3] TX descriptors / 16,
 *   [4..5] TX avail / 2, [6..7] TX used / 4
 *   [8] log2 of the RX queue size (mod 9), [9..10] RX descriptors / 16,
 *   [11..12] RX avail / 2, [13..14] RX used / 4
 *   [15] unused, [16..17], [18..19] lengths of two frames the "tap" hands
 *   the device (their bytes: the start of guest RAM, header included)
 * Transmit writes to /dev/null; receive reads from a SOCK_SEQPACKET pair.
 * Guest RAM is on the heap, so ASan sees any access outside it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzzvq.h"
#include "mem.h"
#include "virtio/net.h"

#define HDR 20

static int devnull = -1, sv[2] = { -1, -1 };
static struct virtio_net *n;

static uint64_t features(uint8_t b)
{
	uint64_t f = 1ULL << 32; /* VERSION_1 */
#define SET(bit, feature) \
	if (b & (1u << (bit))) \
	f |= 1ULL << (feature)
	SET(0, VIRTIO_RING_F_EVENT_IDX);
	SET(1, VIRTIO_RING_F_INDIRECT_DESC);
	SET(2, VIRTIO_NET_F_CSUM);
	SET(3, VIRTIO_NET_F_HOST_TSO4);
	SET(4, VIRTIO_NET_F_HOST_TSO6);
	SET(5, VIRTIO_NET_F_MRG_RXBUF);
	if (b & (1u << 6))
		f |= (1ULL << VIRTIO_NET_F_GUEST_CSUM) | (1ULL << VIRTIO_NET_F_GUEST_TSO4) |
		     (1ULL << VIRTIO_NET_F_GUEST_TSO6);
#undef SET
	return f;
}

static int queue(struct virtqueue *vq, struct vq_state *st, const struct guest_mem *mem,
		 const uint8_t *h, uint64_t f)
{
	return fz_queue(vq, st, mem, h, f & (1ULL << VIRTIO_RING_F_EVENT_IDX),
			f & (1ULL << VIRTIO_RING_F_INDIRECT_DESC));
}

static void drain_socket(void)
{
	static uint8_t junk[VIRTIO_NET_RX_BUF];
	while (recv(sv[0], junk, sizeof(junk), MSG_DONTWAIT) > 0) {
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HDR)
		return 0;
	if (devnull < 0) {
		devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (devnull < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) < 0)
			abort();
		int big = 1 << 20;
		setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
		vmm_log_configure(-1, VMM_LOG_ERROR, false, false); /* guest-triggered warnings */
		n = calloc(1, sizeof(*n));
		if (!n || !(n->rx_buf = malloc(VIRTIO_NET_RX_BUF)))
			abort();
	}
	struct guest_mem mem;
	if (!fz_ram(&mem, data + HDR, size - HDR))
		return 0;

	uint8_t *rx_buf = n->rx_buf;
	memset(n, 0, sizeof(*n));
	n->rx_buf = rx_buf;
	snprintf(n->vdev.name, sizeof(n->vdev.name), "fuzz-net");
	uint64_t f = features(data[0]);
	n->st.transport.driver_features = f;
	n->st.offloads = net_offloads_for(f);

	/* transmit: twice, so indices carry over */
	struct vq_state txs, rxs;
	n->tap_fd = devnull;
	if (queue(&n->vdev.vq[VIRTIO_NET_TXQ], &txs, &mem, data + 1, f) == 0) {
		bool broken;
		for (int pass = 0; pass < 2; pass++) {
			vq_disable_notify(&n->vdev.vq[VIRTIO_NET_TXQ]);
			net_tx_drain(n, VIRTIO_NET_TX_BUDGET, &broken);
			vq_enable_notify(&n->vdev.vq[VIRTIO_NET_TXQ]);
			if (vq_publish(&n->vdev.vq[VIRTIO_NET_TXQ]))
				vq_need_interrupt(&n->vdev.vq[VIRTIO_NET_TXQ]);
			if (broken)
				break;
		}
	}

	/* receive: two frames from the "tap" into a fuzzed RX ring */
	if ((data[0] & 0x80) && queue(&n->vdev.vq[VIRTIO_NET_RXQ], &rxs, &mem, data + 8, f) == 0) {
		n->tap_fd = sv[0];
		for (int i = 0; i < 2; i++) {
			size_t len = fz_le16(data + 16 + 2 * i);
			if (len > FZ_RAM)
				len = FZ_RAM;
			if (send(sv[1], mem.host, len, MSG_DONTWAIT) < 0) {
			}
		}
		for (int pass = 0; pass < 3; pass++) {
			enum net_rx_result r = net_rx_fill(n, 4);
			if (vq_publish(&n->vdev.vq[VIRTIO_NET_RXQ]))
				vq_need_interrupt(&n->vdev.vq[VIRTIO_NET_RXQ]);
			if (r == NET_RX_BROKEN || r == NET_RX_TAP_ERROR || r == NET_RX_IDLE)
				break;
		}
		net_rx_discard(n);
		drain_socket();
	}
	free(mem.host);
	return 0;
}
