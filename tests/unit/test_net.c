/*
 * virtio-net: --net parsing, offload mapping, and the whole device driven
 * through its MMIO window over a SOCK_SEQPACKET socket standing in for the
 * tap (one packet per message, like a tap): crafted TX and RX rings with
 * malicious descriptors, truncated headers, oversized frames, offloads
 * the driver did not negotiate, mergeable-buffer accounting (num_buffers),
 * back-pressure, interrupts per batch, counters. Then the real tap code in
 * a private network namespace (root only; skipped otherwise), and the
 * vhost-net pieces that need no /dev/vhost-net.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "devtest.h"
#include "virtio/net.h"
#include "virtio/net_config.h"
#include "virtio/tap.h"
#include "virtio/vhost_net.h"
#include "vqtest.h"

/* ---- --net values ---- */

static void parse_good(void **state)
{
	(void)state;
	struct net_config c;
	char why[160];
	assert_true(net_config_parse("tap=tap0", &c, why, sizeof(why)));
	assert_string_equal(c.tap, "tap0");
	assert_int_equal(c.fd, -1);
	assert_false(c.mac_set);
	assert_int_equal(c.vhost, NET_VHOST_OFF);
	assert_true(net_config_parse("vhost=auto,mac=52:54:00:AB:cd:0f,tap=a-b.c_123456789", &c, why,
				     sizeof(why)));
	assert_string_equal(c.tap, "a-b.c_123456789");
	assert_true(c.mac_set);
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f };
	assert_memory_equal(c.mac, mac, 6);
	assert_int_equal(c.vhost, NET_VHOST_AUTO);
	assert_true(net_config_parse("fd=3,vhost=on", &c, why, sizeof(why)));
	assert_int_equal(c.fd, 3);
	assert_string_equal(c.tap, "");
	assert_int_equal(c.vhost, NET_VHOST_ON);
	assert_true(net_config_parse("fd=2147483647,vhost=off", &c, why, sizeof(why)));
	assert_int_equal(c.fd, 2147483647);
	char s[NET_MAC_STR];
	net_format_mac(mac, s);
	assert_string_equal(s, "52:54:00:ab:cd:0f");
}

static void parse_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "tap", "tap=", "tap=.", "tap=..", "tap=a/b", "tap=a:b", "tap=a b",
		"tap=0123456789abcdef", "tap=\x01", "fd=", "fd=-1", "fd=0", "fd=2", "fd=3x",
		"fd=2147483648", "fd=99999999999999999999", "tap=a,fd=3", "fd=3,fd=4",
		"tap=a,tap=b", "tap=a,mac=", "tap=a,mac=52:54:00:12:34", "tap=a,mac=52:54:00:12:34:5",
		"tap=a,mac=52:54:00:12:34:567", "tap=a,mac=52-54-00-12-34-56",
		"tap=a,mac=g2:54:00:12:34:56", "tap=a,mac=ff:ff:ff:ff:ff:ff",
		"tap=a,mac=01:00:5e:00:00:01", "tap=a,mac=00:00:00:00:00:00", "tap=a,vhost=",
		"tap=a,vhost=yes", "tap=a,vhost=on,vhost=off", "tap=a,x=1", "tap=a,", ",tap=a",
		"tap=a,,mac=52:54:00:12:34:56", "mac=52:54:00:12:34:56", "vhost=on",
	};
	struct net_config c;
	char why[160];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = 0;
		if (net_config_parse(bad[i], &c, why, sizeof(why)))
			fail_msg("'%s' accepted", bad[i]);
		assert_true(why[0] != 0);
	}
}

static void cli_net(void **state)
{
	(void)state;
	static struct vm_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	FILE *err = tmpfile();
	assert_non_null(err);
	char buf[32];
	for (unsigned i = 0; i < VMM_MAX_NETS; i++) {
		snprintf(buf, sizeof(buf), "tap=t%u", i);
		assert_true(cli_parse_net(buf, &cfg, err));
	}
	assert_int_equal(cfg.nnets, VMM_MAX_NETS);
	assert_false(cli_parse_net("tap=t9", &cfg, err));
	cfg.nnets = 1;
	assert_false(cli_parse_net("tap=t0", &cfg, err)); /* the same tap twice */
	assert_true(cli_parse_net("fd=7", &cfg, err));
	assert_false(cli_parse_net("fd=7,mac=52:54:00:00:00:01", &cfg, err));
	assert_false(cli_parse_net("tap=x,mac=01:02:03:04:05:06", &cfg, err));
	assert_int_equal(cfg.nnets, 2);
	char msg[512] = "";
	rewind(err);
	size_t got = fread(msg, 1, sizeof(msg) - 1, err);
	msg[got] = 0;
	assert_non_null(strstr(msg, "vmm: --net: too many network devices at 'tap=t9' (at most 8)"));
	assert_non_null(strstr(msg, "vmm: --net: invalid value 'tap=t0' (the tap is already used"));
	assert_non_null(strstr(msg, "vmm: --net: invalid value 'tap=x,mac=01:02:03:04:05:06' (bad MAC"));
	fclose(err);
}

static void offloads(void **state)
{
	(void)state;
#define B(x) (1ULL << VIRTIO_NET_F_##x)
	assert_int_equal(net_offloads_for(0), 0);
	assert_int_equal(net_offloads_for(B(GUEST_TSO4) | B(GUEST_TSO6)), 0); /* no GUEST_CSUM */
	assert_int_equal(net_offloads_for(B(GUEST_CSUM)), TUN_F_CSUM);
	assert_int_equal(net_offloads_for(B(GUEST_CSUM) | B(GUEST_TSO4)), TUN_F_CSUM | TUN_F_TSO4);
	assert_int_equal(net_offloads_for(B(GUEST_CSUM) | B(GUEST_TSO4) | B(GUEST_TSO6) | B(CSUM) |
					  B(HOST_TSO4)),
			 TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
	assert_int_equal(net_offloads_for(B(GUEST_CSUM) | B(GUEST_ECN)), TUN_F_CSUM);
#undef B
}

/* ---- the device over a socket ---- */

#define QSIZE 16
#define RX_DESC 0x1000ULL
#define RX_AVAIL 0x3000ULL
#define RX_USED 0x4000ULL
#define TX_DESC 0x5000ULL
#define TX_AVAIL 0x7000ULL
#define TX_USED 0x8000ULL
#define BUF 0x10000ULL /* buffers from here, 64 KiB apart */
#define BUFN(i) (BUF + 0x10000ULL * (i))

#define F(x) (1ULL << VIRTIO_NET_F_##x)
#define F_EVENT_IDX (1ULL << VIRTIO_RING_F_EVENT_IDX)
#define F_INDIRECT (1ULL << VIRTIO_RING_F_INDIRECT_DESC)
#define F_VERSION_1 (1ULL << VIRTIO_F_VERSION_1)
#define ALL (F_VERSION_1 | F_EVENT_IDX | F_INDIRECT | VIRTIO_NET_DEVICE_FEATURES)
#define PLAIN (F_VERSION_1 | F(MAC) | F(STATUS))

static struct vm *vm;
static struct virtio_net *net;
static int peer = -1; /* our end of the "tap" */

struct ring {
	uint64_t desc, avail, used;
};
static const struct ring RXR = { RX_DESC, RX_AVAIL, RX_USED };
static const struct ring TXR = { TX_DESC, TX_AVAIL, TX_USED };

static struct vring_desc *desc(const struct ring *r)
{
	return devtest_gp(vm, r->desc);
}
static struct vring_avail *avail(const struct ring *r)
{
	return devtest_gp(vm, r->avail);
}
static struct vring_used *used(const struct ring *r)
{
	return devtest_gp(vm, r->used);
}
/* used_event, at the end of the avail ring */
static uint16_t *used_event(const struct ring *r)
{
	return &avail(r)->ring[QSIZE];
}

static void driver_init(uint64_t features)
{
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
	for (uint64_t a = RX_DESC; a < BUF; a += 0x1000)
		memset(devtest_gp(vm, a), 0, 0x1000);
	assert_int_equal(devtest_virtio_features(vm, features), 0xb);
	devtest_virtio_queue(vm, VIRTIO_NET_RXQ, QSIZE, RXR.desc, RXR.avail, RXR.used);
	devtest_virtio_queue(vm, VIRTIO_NET_TXQ, QSIZE, TXR.desc, TXR.avail, TXR.used);
	devtest_virtio_driver_ok(vm);
}

/* Run the loop until nothing is left to do. */
static void pump(void)
{
	for (int i = 0; i < 50 && devtest_pump(vm, 20) > 0; i++) {
	}
}

static uint64_t interrupts(void)
{
	uint64_t v = 0;
	if (read(net->vdev.irq_fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static int setup_dev(uint64_t features)
{
	vm = devtest_vm_new();
	if (guest_mem_init(&vm->mem, 16 * MIB, 0) < 0)
		return -1;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	int one = 4 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	struct net_config cfg;
	net_config_init(&cfg);
	net_parse_mac("52:54:00:00:00:07", 17, cfg.mac);
	cfg.mac_set = true;
	snprintf(cfg.id, sizeof(cfg.id), "eth0");
	int status = -1;
	net = virtio_net_create_fd(vm, &cfg, 0, sv[0], false, &status);
	if (!net || status)
		return -1;
	peer = sv[1];
	vm->virtio[vm->nvirtio++] = &net->vdev;
	driver_init(features);
	interrupts();
	return 0;
}

static int setup_all(void **state)
{
	(void)state;
	return setup_dev(ALL);
}

static int setup_plain(void **state)
{
	(void)state;
	return setup_dev(PLAIN | F_EVENT_IDX);
}

static int setup_mrg_noevent(void **state)
{
	(void)state;
	return setup_dev(PLAIN | F(MRG_RXBUF));
}

static int teardown_dev(void **state)
{
	(void)state;
	virtio_net_destroy(net);
	net = NULL;
	close(peer);
	guest_mem_destroy(&vm->mem);
	devtest_vm_free(vm);
	return 0;
}

/* ---- transmit ---- */

struct seg {
	uint64_t addr;
	uint32_t len;
	uint16_t flags; /* VRING_DESC_F_WRITE / _INDIRECT */
};

/* Chain segs at descriptors head.. and make head available. */
static void post(const struct ring *r, uint16_t head, const struct seg *s, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		desc(r)[head + i] = (struct vring_desc){
			s[i].addr, s[i].len,
			(uint16_t)(s[i].flags | (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
			(uint16_t)(head + i + 1) };
	struct vring_avail *a = avail(r);
	a->ring[a->idx % QSIZE] = head;
	__atomic_store_n(&a->idx, (uint16_t)(a->idx + 1), __ATOMIC_RELEASE);
}

static void notify(unsigned q)
{
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	pump();
}

/* A header and an Ethernet frame of len bytes (pattern seed) at gpa. */
static void frame_at(uint64_t gpa, const struct virtio_net_hdr_v1 *h, uint32_t len, uint8_t seed)
{
	uint8_t *p = devtest_gp(vm, gpa);
	memcpy(p, h, sizeof(*h));
	for (uint32_t i = 0; i < len; i++)
		p[sizeof(*h) + i] = (uint8_t)(seed + i * 7);
}

/* Next packet the device wrote to the "tap", or -1 if none within 200 ms. */
static ssize_t recv_pkt(uint8_t *buf, size_t size)
{
	struct pollfd p = { .fd = peer, .events = POLLIN };
	if (poll(&p, 1, 200) != 1)
		return -1;
	return recv(peer, buf, size, 0);
}

static void check_frame(const uint8_t *pkt, uint32_t len, uint8_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		if (pkt[VIRTIO_NET_HDR_LEN + i] != (uint8_t)(seed + i * 7))
			fail_msg("byte %u of the frame differs", i);
}

static void tx_simple_and_split(void **state)
{
	(void)state;
	static uint8_t pkt[70000];
	struct virtio_net_hdr_v1 h = { 0 };
	h.num_buffers = 0x5555; /* the device zeroes it on the way out */
	frame_at(BUFN(0), &h, 60, 1);
	post(&TXR, 0, (struct seg[]){ { BUFN(0), 72, 0 } }, 1);
	/* header over three descriptors (5 + 4 + 3), then the frame in two */
	frame_at(BUFN(1), &(struct virtio_net_hdr_v1){ 0 }, 1500, 2);
	post(&TXR, 2, (struct seg[]){ { BUFN(1), 5, 0 }, { BUFN(1) + 5, 4, 0 },
				      { BUFN(1) + 9, 3, 0 }, { BUFN(1) + 12, 700, 0 },
				      { BUFN(1) + 712, 800, 0 } }, 5);
	notify(VIRTIO_NET_TXQ);
	assert_int_equal(recv_pkt(pkt, sizeof(pkt)), 72);
	assert_int_equal(((struct virtio_net_hdr_v1 *)pkt)->num_buffers, 0);
	check_frame(pkt, 60, 1);
	assert_int_equal(recv_pkt(pkt, sizeof(pkt)), 1512);
	check_frame(pkt, 1500, 2);
	assert_int_equal(used(&TXR)->idx, 2);
	assert_int_equal(used(&TXR)->ring[0].id, 0);
	assert_int_equal(used(&TXR)->ring[0].len, 0);
	assert_int_equal(used(&TXR)->ring[1].id, 2);
	assert_int_equal(net->ctr.tx_packets, 2);
	assert_int_equal(net->ctr.tx_bytes, 1560);
	assert_int_equal(net->ctr.tx_dropped_malformed, 0);
}

/* Every kind of malformed transmit chain is dropped and counted, and
 * returned; frames around them still go out. */
static void tx_malformed(void **state)
{
	(void)state;
	static uint8_t pkt[70000];
	struct virtio_net_hdr_v1 h0 = { 0 };
	uint16_t head = 0;
	/* 0: a good frame */
	frame_at(BUFN(0), &h0, 100, 3);
	post(&TXR, head, (struct seg[]){ { BUFN(0), 112, 0 } }, 1);
	head += 1;
	/* 1: truncated header (10 bytes) */
	post(&TXR, head, (struct seg[]){ { BUFN(0), 10, 0 } }, 1);
	head += 1;
	/* 2: header but a runt frame (12 + 13) */
	post(&TXR, head, (struct seg[]){ { BUFN(0), 25, 0 } }, 1);
	head += 1;
	/* 3: oversized: 65551 bytes over two descriptors */
	post(&TXR, head, (struct seg[]){ { BUFN(1), 60000, 0 }, { BUFN(2), 5551, 0 } }, 2);
	head += 2;
	/* 5: a device-writable buffer in a transmit chain */
	post(&TXR, head, (struct seg[]){ { BUFN(0), 112, 0 }, { BUFN(3), 100, VRING_DESC_F_WRITE } },
	     2);
	head += 2;
	/* 7: a buffer outside RAM */
	post(&TXR, head, (struct seg[]){ { BUFN(0), 12, 0 }, { 0xf0000000ULL, 100, 0 } }, 2);
	head += 2;
	/* 9: a descriptor loop */
	desc(&TXR)[9] = (struct vring_desc){ BUFN(0), 112, VRING_DESC_F_NEXT, 10 };
	desc(&TXR)[10] = (struct vring_desc){ BUFN(0), 112, VRING_DESC_F_NEXT, 9 };
	avail(&TXR)->ring[avail(&TXR)->idx % QSIZE] = 9;
	avail(&TXR)->idx++;
	head = 11;
	/* 11: next out of range */
	desc(&TXR)[11] = (struct vring_desc){ BUFN(0), 112, VRING_DESC_F_NEXT, 200 };
	avail(&TXR)->ring[avail(&TXR)->idx % QSIZE] = 11;
	avail(&TXR)->idx++;
	/* 12: a good frame after all that */
	frame_at(BUFN(4), &h0, 64, 4);
	post(&TXR, 12, (struct seg[]){ { BUFN(4), 76, 0 } }, 1);
	notify(VIRTIO_NET_TXQ);
	assert_int_equal(recv_pkt(pkt, sizeof(pkt)), 112);
	check_frame(pkt, 100, 3);
	assert_int_equal(recv_pkt(pkt, sizeof(pkt)), 76);
	check_frame(pkt, 64, 4);
	assert_int_equal(recv_pkt(pkt, sizeof(pkt)), -1);
	assert_int_equal(used(&TXR)->idx, 9);
	for (unsigned i = 0; i < 9; i++)
		assert_int_equal(used(&TXR)->ring[i].len, 0);
	const struct virtio_net_counters *c = &net->ctr;
	assert_int_equal(c->tx_packets, 2);
	assert_int_equal(c->tx_short_header, 2);
	assert_int_equal(c->tx_oversized, 1);
	assert_int_equal(c->tx_bad_chain, 4);
	assert_int_equal(c->tx_dropped_malformed, 7);
	assert_false(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* The largest frame allowed goes out; one byte more does not. */
static void tx_size_limit(void **state)
{
	(void)state;
	static uint8_t pkt[70000];
	struct virtio_net_hdr_v1 h0 = { 0 };
	frame_at(BUFN(1), &h0, VIRTIO_NET_MAX_TX - 12, 9);
	post(&TXR, 0, (struct seg[]){ { BUFN(1), VIRTIO_NET_MAX_TX, 0 } }, 1);
	post(&TXR, 1, (struct seg[]){ { BUFN(1), VIRTIO_NET_MAX_TX + 1, 0 } }, 1);
	notify(VIRTIO_NET_TXQ);
	assert_int_equal(recv_pkt(pkt, sizeof(pkt)), VIRTIO_NET_MAX_TX);
	check_frame(pkt, VIRTIO_NET_MAX_TX - 12, 9);
	assert_int_equal(recv_pkt(pkt, sizeof(pkt)), -1);
	assert_int_equal(net->ctr.tx_oversized, 1);
}

/* Header checks against what was negotiated. */
static void tx_offload_headers(void **state)
{
	(void)state;
	static uint8_t pkt[70000];
	struct {
		struct virtio_net_hdr_v1 h;
		bool ok;
	} cases[] = {
		{ { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6 }, true },
		{ { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 90, .csum_offset = 9 }, false },
		{ { .flags = VIRTIO_NET_HDR_F_DATA_VALID }, false },
		{ { .flags = 0x80 }, false },
		{ { .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 1448, .hdr_len = 54,
		    .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 16 },
		  true },
		{ { .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 0,
		    .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 16 },
		  false },
		{ { .gso_type = VIRTIO_NET_HDR_GSO_TCPV6, .gso_size = 1428 }, true },
		{ { .gso_type = VIRTIO_NET_HDR_GSO_UDP, .gso_size = 1000 }, false }, /* no HOST_UFO */
		{ { .gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, .gso_size = 100 },
		  false }, /* no HOST_ECN */
		{ { .gso_type = VIRTIO_NET_HDR_GSO_ECN }, false },
		{ { .gso_type = 7, .gso_size = 100 }, false },
	};
	unsigned n = sizeof(cases) / sizeof(cases[0]), good = 0;
	for (unsigned i = 0; i < n; i++) {
		frame_at(BUFN(i), &cases[i].h, 88, (uint8_t)i);
		post(&TXR, (uint16_t)i, (struct seg[]){ { BUFN(i), 100, 0 } }, 1);
	}
	notify(VIRTIO_NET_TXQ);
	for (unsigned i = 0; i < n; i++) {
		if (!cases[i].ok)
			continue;
		good++;
		assert_int_equal(recv_pkt(pkt, sizeof(pkt)), 100);
		assert_memory_equal(pkt, &cases[i].h, 12);
		check_frame(pkt, 88, (uint8_t)i);
	}
	assert_int_equal(recv_pkt(pkt, sizeof(pkt)), -1);
	assert_int_equal(net->ctr.tx_bad_offload, n - good);
	assert_int_equal(net->ctr.tx_dropped_malformed, n - good);
}

/* Without CSUM / HOST_TSO negotiated, offload headers are malformed. */
static void tx_offloads_not_negotiated(void **state)
{
	(void)state;
	struct virtio_net_hdr_v1 csum = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34,
					  .csum_offset = 6 };
	struct virtio_net_hdr_v1 tso = { .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = 1448 };
	frame_at(BUFN(0), &csum, 88, 0);
	frame_at(BUFN(1), &tso, 88, 0);
	post(&TXR, 0, (struct seg[]){ { BUFN(0), 100, 0 } }, 1);
	post(&TXR, 1, (struct seg[]){ { BUFN(1), 100, 0 } }, 1);
	notify(VIRTIO_NET_TXQ);
	static uint8_t pkt[256];
	assert_int_equal(recv_pkt(pkt, sizeof(pkt)), -1);
	assert_int_equal(net->ctr.tx_bad_offload, 2);
	assert_int_equal(used(&TXR)->idx, 2);
}

/* A batch of frames under one notify: one interrupt (EVENT_IDX: the
 * driver's used_event asks for one after the first). */
static void tx_batch_one_interrupt(void **state)
{
	(void)state;
	static uint8_t pkt[2048];
	*used_event(&TXR) = 0;
	for (uint16_t i = 0; i < 10; i++) {
		frame_at(BUFN(i), &(struct virtio_net_hdr_v1){ 0 }, 64, (uint8_t)i);
		post(&TXR, i, (struct seg[]){ { BUFN(i), 76, 0 } }, 1);
	}
	notify(VIRTIO_NET_TXQ);
	for (unsigned i = 0; i < 10; i++) {
		assert_int_equal(recv_pkt(pkt, sizeof(pkt)), 76);
		check_frame(pkt, 64, (uint8_t)i);
	}
	assert_int_equal(used(&TXR)->idx, 10);
	assert_int_equal(interrupts(), 1);
	/* The device wants a kick for the next entry (notifications back on). */
	assert_int_equal(*(uint16_t *)&used(&TXR)->ring[QSIZE], 10);
}

/* Round after round through a small ring: indices wrap, nothing is lost. */
static void tx_many_rounds(void **state)
{
	(void)state;
	static uint8_t pkt[256];
	frame_at(BUFN(0), &(struct virtio_net_hdr_v1){ 0 }, 64, 0);
	unsigned total = 0;
	for (unsigned round = 0; round < 40; round++) {
		for (uint16_t i = 0; i < QSIZE; i++)
			post(&TXR, i, (struct seg[]){ { BUFN(0), 76, 0 } }, 1);
		devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_NET_TXQ);
		devtest_pump(vm, 20);
		while (recv_pkt(pkt, sizeof(pkt)) == 76)
			total++;
		while (used(&TXR)->idx != avail(&TXR)->idx) {
			devtest_pump(vm, 20);
			while (recv_pkt(pkt, sizeof(pkt)) == 76)
				total++;
		}
	}
	assert_int_equal(total, 40 * QSIZE);
	assert_int_equal(net->ctr.tx_packets, 40 * QSIZE);
}

/* An avail index a queue ahead breaks the ring: NEEDS_RESET. */
static void tx_broken_ring(void **state)
{
	(void)state;
	avail(&TXR)->idx = QSIZE + 1;
	notify(VIRTIO_NET_TXQ);
	assert_true(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	driver_init(ALL);
	frame_at(BUFN(0), &(struct virtio_net_hdr_v1){ 0 }, 64, 5);
	post(&TXR, 0, (struct seg[]){ { BUFN(0), 76, 0 } }, 1);
	notify(VIRTIO_NET_TXQ);
	static uint8_t pkt[256];
	assert_int_equal(recv_pkt(pkt, sizeof(pkt)), 76);
	check_frame(pkt, 64, 5);
}

/* ---- receive ---- */

/* The "tap" hands the device a frame: header h, then len pattern bytes. */
static void inject(const struct virtio_net_hdr_v1 *h, uint32_t len, uint8_t seed)
{
	static uint8_t f[70000];
	memcpy(f, h, 12);
	for (uint32_t i = 0; i < len; i++)
		f[12 + i] = (uint8_t)(seed + i * 7);
	assert_int_equal(send(peer, f, 12 + len, 0), (ssize_t)(12 + len));
}

static void rx_buffers(uint16_t first, uint16_t count, uint32_t size)
{
	for (uint16_t i = first; i < first + count; i++)
		post(&RXR, i, (struct seg[]){ { BUFN(i), size, VRING_DESC_F_WRITE } }, 1);
}

/* Bytes of the frame in the used entries from `from` on. */
static void check_rx(uint16_t from, unsigned nbufs, uint32_t len, uint8_t seed)
{
	struct vring_used *u = used(&RXR);
	uint32_t off = 0;
	for (unsigned k = 0; k < nbufs; k++) {
		const struct vring_used_elem *e = &u->ring[(from + k) % QSIZE];
		const uint8_t *b = devtest_gp(vm, BUFN(e->id));
		for (uint32_t i = 0; i < e->len; i++, off++) {
			if (off < 12)
				continue;
			if (b[i] != (uint8_t)(seed + (off - 12) * 7))
				fail_msg("frame byte %u (buffer %u byte %u) differs", off - 12, k, i);
		}
	}
	assert_int_equal(off, 12 + len);
}

static const struct virtio_net_hdr_v1 *rx_hdr(uint16_t used_index)
{
	return devtest_gp(vm, BUFN(used(&RXR)->ring[used_index % QSIZE].id));
}

/* MRG_RXBUF: a frame spans as many buffers as it needs; num_buffers says
 * how many, and each used length is what went into that buffer. */
static void rx_mergeable(void **state)
{
	(void)state;
	rx_buffers(0, 8, 1024);
	notify(VIRTIO_NET_RXQ);
	inject(&(struct virtio_net_hdr_v1){ 0 }, 3000, 1); /* 3012 bytes: 3 buffers */
	inject(&(struct virtio_net_hdr_v1){ 0 }, 60, 2);   /* one */
	inject(&(struct virtio_net_hdr_v1){ 0 }, 1012, 3); /* exactly one */
	pump();
	struct vring_used *u = used(&RXR);
	assert_int_equal(u->idx, 5);
	assert_int_equal(rx_hdr(0)->num_buffers, 3);
	assert_int_equal(u->ring[0].len, 1024);
	assert_int_equal(u->ring[1].len, 1024);
	assert_int_equal(u->ring[2].len, 964);
	check_rx(0, 3, 3000, 1);
	assert_int_equal(rx_hdr(3)->num_buffers, 1);
	assert_int_equal(u->ring[3].len, 72);
	check_rx(3, 1, 60, 2);
	assert_int_equal(rx_hdr(4)->num_buffers, 1);
	assert_int_equal(u->ring[4].len, 1024);
	check_rx(4, 1, 1012, 3);
	assert_int_equal(net->ctr.rx_packets, 3);
	assert_int_equal(net->ctr.rx_bytes, 4072);
	assert_int_equal(interrupts(), 1);
}

/* A frame larger than the buffers at hand waits for more: reception
 * stops (the tap is not polled), and the RX kick resumes it. */
static void rx_back_pressure(void **state)
{
	(void)state;
	rx_buffers(0, 2, 1024);
	notify(VIRTIO_NET_RXQ);
	inject(&(struct virtio_net_hdr_v1){ 0 }, 3000, 4);
	inject(&(struct virtio_net_hdr_v1){ 0 }, 100, 5);
	pump();
	assert_int_equal(used(&RXR)->idx, 0);
	assert_int_equal(net->rx_pending, 3012);
	assert_false(net->tap_polled);
	assert_int_equal(net->ctr.rx_stalls, 1);
	/* Notifications are on again: avail_event is where the device stopped. */
	assert_int_equal(*(uint16_t *)&used(&RXR)->ring[QSIZE], 2);
	pump(); /* nothing happens: no busy loop */
	assert_int_equal(used(&RXR)->idx, 0);
	rx_buffers(2, 3, 1024);
	notify(VIRTIO_NET_RXQ);
	assert_int_equal(used(&RXR)->idx, 4);
	assert_int_equal(rx_hdr(0)->num_buffers, 3);
	check_rx(0, 3, 3000, 4);
	check_rx(3, 1, 100, 5);
	assert_true(net->tap_polled);
	assert_int_equal(net->ctr.rx_packets, 2);
}

/* Without MRG_RXBUF a frame must fit one chain: a larger one is dropped
 * and the chain kept for the next frame; chains may have several
 * descriptors. */
static void rx_whole_frames(void **state)
{
	(void)state;
	post(&RXR, 0, (struct seg[]){ { BUFN(0), 12, VRING_DESC_F_WRITE },
				      { BUFN(0) + 12, 1514, VRING_DESC_F_WRITE } }, 2);
	notify(VIRTIO_NET_RXQ);
	inject(&(struct virtio_net_hdr_v1){ 0 }, 1515, 1); /* one byte too many */
	inject(&(struct virtio_net_hdr_v1){ 0 }, 1514, 2);
	pump();
	assert_int_equal(used(&RXR)->idx, 1);
	assert_int_equal(used(&RXR)->ring[0].len, 1526);
	assert_int_equal(rx_hdr(0)->num_buffers, 1);
	const uint8_t *b = devtest_gp(vm, BUFN(0));
	for (unsigned i = 0; i < 1514; i++)
		assert_int_equal(b[12 + i], (uint8_t)(2 + i * 7));
	assert_int_equal(net->ctr.rx_dropped_too_big, 1);
	assert_int_equal(net->ctr.rx_packets, 1);
}

/* Receive chains the device cannot use come back empty and are counted;
 * the frame goes to the next good one. */
static void rx_bad_buffers(void **state)
{
	(void)state;
	post(&RXR, 0, (struct seg[]){ { BUFN(0), 1024, 0 } }, 1);                   /* readable */
	post(&RXR, 1, (struct seg[]){ { BUFN(1), 8, VRING_DESC_F_WRITE } }, 1);     /* < header */
	post(&RXR, 2, (struct seg[]){ { 0xf0000000ULL, 64, VRING_DESC_F_WRITE } }, 1); /* no RAM */
	post(&RXR, 3, (struct seg[]){ { BUFN(3), 2048, VRING_DESC_F_WRITE } }, 1);
	notify(VIRTIO_NET_RXQ);
	inject(&(struct virtio_net_hdr_v1){ 0 }, 500, 6);
	pump();
	struct vring_used *u = used(&RXR);
	assert_int_equal(u->idx, 4);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(u->ring[i].id, i);
		assert_int_equal(u->ring[i].len, 0);
	}
	assert_int_equal(u->ring[3].id, 3);
	check_rx(3, 1, 500, 6);
	assert_int_equal(net->ctr.rx_bad_buffers, 3);
	assert_false(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* Frames the driver cannot take (offloads it did not accept, runts) are
 * dropped; flags are cleared for a driver without GUEST_CSUM. */
static void rx_offload_filter(void **state)
{
	(void)state;
	rx_buffers(0, 4, 2048);
	notify(VIRTIO_NET_RXQ);
	inject(&(struct virtio_net_hdr_v1){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM }, 100, 1);
	inject(&(struct virtio_net_hdr_v1){ .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
					    .gso_size = 1448 }, 100, 2);
	inject(&(struct virtio_net_hdr_v1){ .gso_type = 9 }, 100, 3);
	inject(&(struct virtio_net_hdr_v1){ 0 }, 13, 4); /* runt */
	inject(&(struct virtio_net_hdr_v1){ .flags = VIRTIO_NET_HDR_F_DATA_VALID }, 100, 5);
	pump();
	assert_int_equal(used(&RXR)->idx, 1);
	assert_int_equal(rx_hdr(0)->flags, 0);
	check_rx(0, 1, 100, 5);
	assert_int_equal(net->ctr.rx_dropped_offload, 3);
	assert_int_equal(net->ctr.rx_dropped_short, 1);
}

/* With GUEST_CSUM and GUEST_TSO4 the same headers pass through. */
static void rx_offloads_pass(void **state)
{
	(void)state;
	assert_int_equal(net->st.offloads, 0); /* not active before a notify */
	rx_buffers(0, 4, 2048);
	notify(VIRTIO_NET_RXQ);
	assert_int_equal(net->st.offloads, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
	struct virtio_net_hdr_v1 h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				       .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .hdr_len = 54,
				       .gso_size = 1448, .csum_start = 34, .csum_offset = 16 };
	inject(&h, 3000, 7);
	pump();
	assert_int_equal(used(&RXR)->idx, 2);
	const struct virtio_net_hdr_v1 *got = rx_hdr(0);
	assert_int_equal(got->num_buffers, 2);
	assert_int_equal(got->gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(got->gso_size, 1448);
	assert_int_equal(got->csum_offset, 16);
	check_rx(0, 2, 3000, 7);
}

/* Without EVENT_IDX: interrupts unless VRING_AVAIL_F_NO_INTERRUPT, and
 * VRING_USED_F_NO_NOTIFY while the device has buffers. */
static void rx_no_event_idx(void **state)
{
	(void)state;
	rx_buffers(0, 4, 2048);
	notify(VIRTIO_NET_RXQ);
	assert_int_equal(used(&RXR)->flags, VRING_USED_F_NO_NOTIFY);
	inject(&(struct virtio_net_hdr_v1){ 0 }, 100, 1);
	pump();
	assert_int_equal(used(&RXR)->idx, 1);
	assert_int_equal(interrupts(), 1);
	avail(&RXR)->flags = VRING_AVAIL_F_NO_INTERRUPT;
	inject(&(struct virtio_net_hdr_v1){ 0 }, 100, 2);
	pump();
	assert_int_equal(used(&RXR)->idx, 2);
	assert_int_equal(interrupts(), 0);
	/* out of buffers: notifications back on */
	for (int i = 0; i < 3; i++)
		inject(&(struct virtio_net_hdr_v1){ 0 }, 100, 3);
	pump();
	assert_int_equal(used(&RXR)->idx, 4);
	assert_int_equal(used(&RXR)->flags, 0);
	assert_int_equal(net->rx_pending, 112);
}

/* Nothing is delivered before DRIVER_OK's first kick, and a reset drops
 * what was held; the device then works again. */
static void rx_reset_discards(void **state)
{
	(void)state;
	rx_buffers(0, 1, 1024);
	notify(VIRTIO_NET_RXQ);
	inject(&(struct virtio_net_hdr_v1){ 0 }, 3000, 1); /* waits: MRG, one buffer */
	pump();
	assert_int_equal(net->rx_nres, 1);
	assert_int_equal(net->rx_pending, 3012);
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(net->rx_pending, 0);
	assert_int_equal(net->rx_nres, 0);
	assert_false(net->tap_polled);
	assert_int_equal(net->st.active, 0);
	driver_init(ALL);
	rx_buffers(0, 2, 2048);
	notify(VIRTIO_NET_RXQ);
	inject(&(struct virtio_net_hdr_v1){ 0 }, 100, 9);
	pump();
	assert_int_equal(used(&RXR)->idx, 1);
	check_rx(0, 1, 100, 9);
}

/* An RX avail index running ahead: NEEDS_RESET, the tap left alone. */
static void rx_broken_ring(void **state)
{
	(void)state;
	rx_buffers(0, 1, 2048);
	notify(VIRTIO_NET_RXQ);
	avail(&RXR)->idx = 40;
	inject(&(struct virtio_net_hdr_v1){ 0 }, 3000, 1);
	pump();
	assert_true(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_false(net->tap_polled);
}

/* Config space: MAC and link status; the device id and queue sizes. */
static void config_space(void **state)
{
	(void)state;
	uint32_t w0 = devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG);
	uint32_t w1 = devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG + 4);
	uint8_t mac[8];
	memcpy(mac, &w0, 4);
	memcpy(mac + 4, &w1, 4);
	static const uint8_t want[6] = { 0x52, 0x54, 0, 0, 0, 7 };
	assert_memory_equal(mac, want, 6);
	assert_int_equal(w1 >> 16, VIRTIO_NET_S_LINK_UP);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_DEVICE_ID), 1);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_NET_QUEUE_SIZE);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_SEL, 2);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	assert_ptr_equal(virtio_net_find(vm, "eth0"), net);
	assert_null(virtio_net_find(vm, "eth1"));
	struct virtio_net_counters c;
	virtio_net_get_counters(net, &c);
	assert_int_equal(c.rx_packets, 0);
}

/* The peer going away: link down, a configuration interrupt, no spin. */
static void tap_goes_away(void **state)
{
	(void)state;
	rx_buffers(0, 2, 2048);
	notify(VIRTIO_NET_RXQ);
	uint32_t gen = devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG_GENERATION);
	close(peer);
	peer = socket(AF_UNIX, SOCK_DGRAM, 0); /* for teardown */
	pump();
	assert_true(net->tap_dead);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG + 4) >> 16, 0);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
	assert_true(devtest_mmio_rd(vm, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(devtest_pump(vm, 50), 0);
}

/* ---- the real tap, in a network namespace of our own ---- */

static bool have_netns;

static int enter_netns(void **state)
{
	(void)state;
	/* A private namespace: the taps below exist only in this process's
	 * world, and no packet can leave it. */
	have_netns = geteuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0 &&
		     unshare(CLONE_NEWNET) == 0;
	return 0;
}

static void real_tap(void **state)
{
	(void)state;
	if (!have_netns)
		skip();
	int fd = -1;
	assert_int_equal(tap_open("vmmunit0", "--net tap=vmmunit0", &fd), 0);
	assert_true(fd >= 0);
	assert_true(if_nametoindex("vmmunit0") > 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	assert_int_equal(ioctl(fd, TUNGETIFF, &ifr), 0);
	assert_int_equal(ifr.ifr_flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR),
			 IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	int hdr = 0;
	assert_int_equal(ioctl(fd, TUNGETVNETHDRSZ, &hdr), 0);
	assert_int_equal(hdr, 12);
	assert_int_equal(tap_set_offload(fd, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6), 0);
	assert_int_equal(tap_set_offload(fd, TUN_F_TSO4), -EINVAL); /* TSO needs CSUM */
	assert_int_equal(tap_set_offload(fd, 0), 0);
	/* A second opener of a single-queue tap is refused: busy. */
	int fd2 = -1;
	assert_int_equal(tap_open("vmmunit0", "--net tap=vmmunit0", &fd2), VMM_EXIT_RESOURCE);
	/* Adopting: the fd must be an attached tap with the right flags. */
	char name[IFNAMSIZ];
	int dup_fd = dup(fd);
	assert_int_equal(tap_adopt(dup_fd, "--net fd=N", name), 0);
	assert_string_equal(name, "vmmunit0");
	close(dup_fd);
	int null = open("/dev/null", O_RDWR);
	assert_int_equal(tap_adopt(null, "--net fd=N", name), VMM_EXIT_RESOURCE);
	close(null);
	assert_int_equal(tap_adopt(987, "--net fd=987", name), VMM_EXIT_RESOURCE);
	int plain = open("/dev/net/tun", O_RDWR);
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI; /* no vnet header */
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "vmmunit1");
	assert_int_equal(ioctl(plain, TUNSETIFF, &ifr), 0);
	assert_int_equal(tap_adopt(plain, "--net fd=N", name), VMM_EXIT_RESOURCE);
	close(plain);
	close(fd);
	/* not persistent: gone with its last fd */
	assert_int_equal(if_nametoindex("vmmunit0"), 0);
}

/* The device over a real tap: the kernel takes a TSO frame when HOST_TSO4
 * was negotiated, and refuses a frame whose GSO header does not match it
 * (counted as a tap error, not a crash). */
static void real_tap_device(void **state)
{
	(void)state;
	if (!have_netns)
		skip();
	vm = devtest_vm_new();
	assert_int_equal(guest_mem_init(&vm->mem, 16 * MIB, 0), 0);
	struct net_config cfg;
	net_config_init(&cfg);
	snprintf(cfg.tap, sizeof(cfg.tap), "vmmunit2");
	int status = -1;
	net = virtio_net_create(vm, &cfg, 0, &status);
	assert_non_null(net);
	assert_int_equal(status, 0);
	assert_string_equal(net->st.settings.ifname, "vmmunit2");
	/* a random, unicast, locally administered MAC */
	assert_int_equal(net->st.config.mac[0] & 3, 2);
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "vmmunit2");
	assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
	driver_init(ALL);
	/* A TCP/IPv4 GSO frame: 14 + 20 + 20 + 3000 bytes. */
	static uint8_t f[3054];
	memset(f, 0, sizeof(f));
	memcpy(f, "\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00", 14);
	uint8_t *ip = f + 14;
	ip[0] = 0x45;
	ip[2] = (uint8_t)((sizeof(f) - 14) >> 8);
	ip[3] = (uint8_t)(sizeof(f) - 14);
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, "\x0a\0\0\x01\x0a\0\0\x02", 8);
	ip[20 + 12] = 5 << 4; /* TCP data offset */
	struct virtio_net_hdr_v1 h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
				       .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .hdr_len = 54,
				       .gso_size = 1448, .csum_start = 34, .csum_offset = 16 };
	memcpy(devtest_gp(vm, BUFN(0)), &h, 12);
	memcpy((uint8_t *)devtest_gp(vm, BUFN(0)) + 12, f, sizeof(f));
	post(&TXR, 0, (struct seg[]){ { BUFN(0), 12 + sizeof(f), 0 } }, 1);
	notify(VIRTIO_NET_TXQ);
	assert_int_equal(net->ctr.tx_packets, 1);
	assert_int_equal(net->ctr.tx_dropped_io, 0);
	/* csum_start inside the frame but no room for an IP header: the
	 * kernel refuses the GSO frame. */
	struct virtio_net_hdr_v1 bad = h;
	bad.csum_start = 20;
	bad.hdr_len = 30;
	memcpy(devtest_gp(vm, BUFN(1)), &bad, 12);
	memcpy((uint8_t *)devtest_gp(vm, BUFN(1)) + 12, f, 40);
	post(&TXR, 1, (struct seg[]){ { BUFN(1), 52, 0 } }, 1);
	notify(VIRTIO_NET_TXQ);
	assert_int_equal(net->ctr.tx_packets + net->ctr.tx_dropped_io, 2);
	assert_int_equal(used(&TXR)->idx, 2);
	virtio_net_destroy(net);
	net = NULL;
	guest_mem_destroy(&vm->mem);
	devtest_vm_free(vm);
}

/* ---- vhost-net, without the device ---- */

static void vhost_mem_table(void **state)
{
	(void)state;
	struct vhost_memory_region r[VHOST_MAX_REGIONS];
	static uint8_t fake_ram[64];
	/* below the hole only */
	struct guest_mem m = { .memfd = -1, .host = fake_ram, .size = 16 * MIB,
			       .low_size = 16 * MIB };
	assert_int_equal(vhost_mem_regions(&m, r, VHOST_MAX_REGIONS), 1);
	assert_int_equal(r[0].guest_phys_addr, 0);
	assert_int_equal(r[0].memory_size, 16 * MIB);
	assert_int_equal(r[0].userspace_addr, (uintptr_t)fake_ram);
	assert_int_equal(r[0].flags_padding, 0);
	/* 5 GiB: 3 GiB below the hole, 2 GiB from 4 GiB, one mapping */
	m.size = 5 * GIB;
	m.low_size = 3 * GIB;
	m.high_size = 2 * GIB;
	assert_int_equal(vhost_mem_regions(&m, r, VHOST_MAX_REGIONS), 2);
	assert_int_equal(r[0].memory_size, 3 * GIB);
	assert_int_equal(r[1].guest_phys_addr, 4 * GIB);
	assert_int_equal(r[1].memory_size, 2 * GIB);
	assert_int_equal(r[1].userspace_addr, (uintptr_t)fake_ram + 3 * GIB);
	assert_int_equal(vhost_mem_regions(&m, r, 1), 1);
}

static void vhost_vring(void **state)
{
	(void)state;
	struct guest_mem m;
	assert_int_equal(guest_mem_init(&m, 1 * MIB, 0), 0);
	struct vq_state q = { .desc_addr = 0x1000, .avail_addr = 0x2000, .used_addr = 0x3000,
			      .size = 256 };
	struct vhost_vring_addr a;
	assert_int_equal(vhost_vring_addr(&m, 1, &q, &a), 0);
	assert_int_equal(a.index, 1);
	assert_int_equal(a.flags, 0);
	assert_int_equal(a.desc_user_addr, (uintptr_t)m.host + 0x1000);
	assert_int_equal(a.avail_user_addr, (uintptr_t)m.host + 0x2000);
	assert_int_equal(a.used_user_addr, (uintptr_t)m.host + 0x3000);
	q.used_addr = 1 * MIB - 100; /* the used ring runs past RAM */
	assert_int_equal(vhost_vring_addr(&m, 1, &q, &a), -1);
	q.used_addr = 0x3000;
	q.size = 0;
	assert_int_equal(vhost_vring_addr(&m, 0, &q, &a), -1);
	guest_mem_destroy(&m);
}

static void vhost_features(void **state)
{
	(void)state;
	uint64_t offered = ALL;
	/* vhost with everything: nothing withdrawn */
	assert_int_equal(vhost_net_mask_features(offered, VHOST_NET_RING_FEATURES), offered);
	/* vhost without EVENT_IDX and MRG_RXBUF: those go, device bits stay */
	uint64_t v = F_VERSION_1 | F_INDIRECT;
	uint64_t got = vhost_net_mask_features(offered, v);
	assert_int_equal(got, offered & ~(F_EVENT_IDX | F(MRG_RXBUF)));
	assert_true(got & F(CSUM));
	assert_true(got & F(GUEST_TSO4));
	/* SET_FEATURES: ring features only, as accepted and supported */
	assert_int_equal(vhost_net_acked(ALL, VHOST_NET_RING_FEATURES | (1ULL << 27)),
			 VHOST_NET_RING_FEATURES);
	assert_int_equal(vhost_net_acked(F_VERSION_1 | F(CSUM), VHOST_NET_RING_FEATURES),
			 F_VERSION_1);
}

static void vhost_open_errors(void **state)
{
	(void)state;
	struct guest_mem m;
	assert_int_equal(guest_mem_init(&m, 1 * MIB, 0), 0);
	char why[160];
	setenv("VMM_VHOST_NET_DEVICE", "/nonexistent/vhost-net", 1);
	assert_null(vhost_net_open(&m, why, sizeof(why)));
	assert_string_equal(why, "cannot open /nonexistent/vhost-net: No such file or directory");
	setenv("VMM_VHOST_NET_DEVICE", "/dev/null", 1);
	assert_null(vhost_net_open(&m, why, sizeof(why)));
	assert_non_null(strstr(why, "/dev/null: VHOST_SET_OWNER: "));
	/* The device: vhost=on fails, vhost=auto carries on without it. */
	vm = devtest_vm_new();
	vm->mem = m;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	struct net_config cfg;
	net_config_init(&cfg);
	snprintf(cfg.tap, sizeof(cfg.tap), "x");
	cfg.vhost = NET_VHOST_AUTO;
	int status = -1;
	/* is_tap false: a socket never gets vhost */
	net = virtio_net_create_fd(vm, &cfg, 0, sv[0], false, &status);
	assert_non_null(net);
	assert_null(net->vhost);
	virtio_net_destroy(net);
	net = NULL;
	close(sv[1]);
	unsetenv("VMM_VHOST_NET_DEVICE");
	guest_mem_destroy(&vm->mem);
	devtest_vm_free(vm);
}

/* vq_pop() keeps the avail index it last read (fewer trips to the
 * driver's cache line); a last_avail changed behind its back (a restore,
 * vhost handing the ring back) must not be served from that copy. */
static void vq_avail_shadow(void **state)
{
	(void)state;
	static struct vqt t;
	assert_int_equal(vqt_init(&t, 1 * MIB, 16, false, false), 0);
	vqt_set(&t, 0, VQT_BUF, 64, 0, 0);
	vqt_offer(&t, 0);
	vqt_offer(&t, 0);
	assert_int_equal(vqt_pop(&t), VQ_CHAIN); /* 2 seen, 1 taken */
	t.st.last_avail = 65530;
	vqt_avail(&t)->ring[65530 % 16] = 0;
	vqt_avail(&t)->idx = 65531;
	assert_int_equal(vqt_pop(&t), VQ_CHAIN);
	assert_int_equal(vqt_pop(&t), VQ_EMPTY);
	vqt_offer(&t, 0); /* the driver adds one more: seen at once */
	assert_int_equal(vqt_pop(&t), VQ_CHAIN);
	assert_int_equal(vqt_pop(&t), VQ_EMPTY);
	vqt_free(&t);
}

#define DEV(fn, s) cmocka_unit_test_setup_teardown(fn, s, teardown_dev)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_good),
		cmocka_unit_test(parse_bad),
		cmocka_unit_test(cli_net),
		cmocka_unit_test(offloads),
		cmocka_unit_test(vq_avail_shadow),
		DEV(config_space, setup_all),
		DEV(tx_simple_and_split, setup_all),
		DEV(tx_malformed, setup_all),
		DEV(tx_size_limit, setup_all),
		DEV(tx_offload_headers, setup_all),
		DEV(tx_offloads_not_negotiated, setup_plain),
		DEV(tx_batch_one_interrupt, setup_all),
		DEV(tx_many_rounds, setup_all),
		DEV(tx_broken_ring, setup_all),
		DEV(rx_mergeable, setup_all),
		DEV(rx_back_pressure, setup_all),
		DEV(rx_whole_frames, setup_plain),
		DEV(rx_bad_buffers, setup_all),
		DEV(rx_offload_filter, setup_plain),
		DEV(rx_offloads_pass, setup_all),
		DEV(rx_no_event_idx, setup_mrg_noevent),
		DEV(rx_reset_discards, setup_all),
		DEV(rx_broken_ring, setup_all),
		DEV(tap_goes_away, setup_all),
		cmocka_unit_test(real_tap),
		cmocka_unit_test(real_tap_device),
		cmocka_unit_test(vhost_mem_table),
		cmocka_unit_test(vhost_vring),
		cmocka_unit_test(vhost_features),
		cmocka_unit_test(vhost_open_errors),
	};
	return cmocka_run_group_tests(tests, enter_netns, NULL);
}
