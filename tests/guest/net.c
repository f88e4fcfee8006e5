/*
 * Network tests: `net` answers ARP, ICMP echo and UDP echo (port 7) on one
 * or two NICs until stopped (or until "quit" arrives on UDP port 9);
 * `net_bench` floods UDP frames to a peer (tx) or counts the ones it
 * receives (rx).
 */
#include "net.h"

struct net_options net_opt = { .mrg = 1, .offload = 1 };

extern uint8_t net_peer_mac[6];
extern bool net_peer_known;

static bool parse_ip(const char *s, uint32_t *ip)
{
	uint32_t v = 0;
	for (unsigned part = 0; part < 4; part++) {
		unsigned x = 0, digits = 0;
		for (; *s >= '0' && *s <= '9'; s++, digits++)
			x = x * 10 + (unsigned)(*s - '0');
		if (!digits || digits > 3 || x > 255)
			return false;
		v = v << 8 | x;
		if (part < 3 && *s++ != '.')
			return false;
	}
	if (*s)
		return false;
	*ip = v;
	return true;
}

bool parse_net_option(const char *key, const char *val)
{
	static const struct {
		const char *key;
		uint64_t *dst;
		uint64_t min, max;
	} nums[] = {
		{ "net_size", &net_opt.size, 60, NET_MAX_FRAME },
		{ "net_secs", &net_opt.secs, 1, 3600 },
		{ "net_mrg", &net_opt.mrg, 0, 1 },
		{ "net_offload", &net_opt.offload, 0, 1 },
		{ "net_rxbuf", &net_opt.rxbuf, 64, 65536 },
	};
	uint64_t num;
	if (!val)
		return false;
	if (!strcmp(key, "ip"))
		return parse_ip(val, &net_opt.ip[0]);
	if (!strcmp(key, "ip1"))
		return parse_ip(val, &net_opt.ip[1]);
	if (!strcmp(key, "net_peer"))
		return parse_ip(val, &net_opt.peer);
	if (!strcmp(key, "net_bench")) {
		net_opt.bench = val;
		return !strcmp(val, "tx") || !strcmp(val, "rx");
	}
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		if (!strcmp(key, nums[i].key) && parse_u64(val, &num) && num >= nums[i].min &&
		    num <= nums[i].max) {
			*nums[i].dst = num;
			return true;
		}
	return false;
}

static void announce(const struct netdev *nd)
{
	char mac[24], ip[20];
	format_mac(mac, sizeof(mac), nd->mac);
	format_ip(ip, sizeof(ip), nd->ip);
	print("NET ready mac=%s ip=%s\n", mac, ip);
}

static struct netdev nics[NET_MAX_NICS];

bool test_net(char *why, size_t n)
{
	if (!net_opt.ip[0]) {
		snformat(why, n, "guest.ip= is required");
		return false;
	}
	unsigned count = net_opt.ip[1] ? 2 : 1;
	for (unsigned i = 0; i < count; i++)
		if (!netdev_open(&nics[i], i, net_opt.ip[i], why, n))
			return false;
	for (unsigned i = 0; i < count; i++)
		announce(&nics[i]);
	while (!net_quit) {
		bool idle = true;
		for (unsigned i = 0; i < count; i++) {
			int r = netdev_poll(&nics[i], net_serve);
			if (r < 0) {
				snformat(why, n, "nic %u: a frame's buffers never came", i);
				return false;
			}
			if (r)
				idle = false;
			netdev_reclaim(&nics[i]);
		}
		if (idle)
			cpu_relax();
	}
	for (unsigned i = 0; i < count; i++)
		print("NET stats nic=%u rx=%llu tx=%llu bad=%llu merged=%llu kicks_rx=%llu "
		      "kicks_tx=%llu\n",
		      i, (unsigned long long)nics[i].rx_frames, (unsigned long long)nics[i].tx_frames,
		      (unsigned long long)nics[i].rx_bad, (unsigned long long)nics[i].rx_merged,
		      (unsigned long long)nics[i].rx.kicks, (unsigned long long)nics[i].tx.kicks);
	return true;
}

/* ---- net_bench ---- */

static uint64_t rx_count, rx_bytes;

/* rx: count UDP to port 9 quickly; anything else goes to the stack. */
static void bench_rx(struct netdev *nd, uint8_t *f, uint32_t len, const struct rx_info *info)
{
	if (len >= 14 + 28 && f[12] == 0x08 && f[13] == 0x00 && f[14 + 9] == 17 &&
	    f[14 + 22] == 0 && f[14 + 23] == 9) {
		rx_count++;
		rx_bytes += len;
		return;
	}
	net_serve(nd, f, len, info);
}

static bool resolve_peer(struct netdev *nd, char *why, size_t n)
{
	uint8_t req[42];
	memset(req, 0xff, 6);
	memcpy(req + 6, nd->mac, 6);
	req[12] = 0x08;
	req[13] = 0x06;
	uint8_t *a = req + 14;
	static const uint8_t fixed[8] = { 0, 1, 8, 0, 6, 4, 0, 1 };
	memcpy(a, fixed, 8);
	memcpy(a + 8, nd->mac, 6);
	uint32_t ip = be32(nd->ip), peer = be32(net_opt.peer);
	memcpy(a + 14, &ip, 4);
	memset(a + 18, 0, 6);
	memcpy(a + 24, &peer, 4);
	uint64_t end = time_ns() + 10000000000ULL;
	while (!net_peer_known) {
		if (time_ns() > end) {
			snformat(why, n, "no ARP reply from the peer in 10 s");
			return false;
		}
		netdev_send(nd, req, sizeof(req), NULL);
		uint64_t next = time_ns() + 100000000ULL;
		while (!net_peer_known && time_ns() < next) {
			netdev_poll(nd, net_serve);
			netdev_reclaim(nd);
		}
	}
	return true;
}

/* A UDP frame of `size` bytes to the peer's port 9, in every slot. */
static void fill_slots(struct netdev *nd, uint32_t size)
{
	uint8_t f[NET_MAX_FRAME];
	memset(f, 0, sizeof(f));
	memcpy(f, net_peer_mac, 6);
	memcpy(f + 6, nd->mac, 6);
	f[12] = 0x08;
	uint8_t *ip = f + 14;
	ip[0] = 0x45;
	uint16_t tot = be16((uint16_t)(size - 14)), ulen = be16((uint16_t)(size - 34));
	memcpy(ip + 2, &tot, 2);
	ip[8] = 64;
	ip[9] = 17;
	uint32_t src = be32(nd->ip), dst = be32(net_opt.peer);
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	uint16_t c = be16(ip_checksum(ip, 20, 0));
	memcpy(ip + 10, &c, 2);
	uint8_t *u = ip + 20;
	u[1] = 9;
	u[3] = 9;
	memcpy(u + 4, &ulen, 2); /* checksum 0: none (IPv4) */
	for (unsigned s = 0; s < nd->tx.size; s++) {
		uint8_t *b = nd->tx_bufs + (uint64_t)s * NET_TX_SLOT;
		memset(b, 0, VNET_HDR_LEN);
		memcpy(b + VNET_HDR_LEN, f, size);
		nd->tx.desc[s].addr = (uint64_t)(uintptr_t)b;
		nd->tx.desc[s].len = VNET_HDR_LEN + size;
		nd->tx.desc[s].flags = 0;
		nd->tx.desc[s].next = 0;
	}
}

static uint64_t run_tx(struct netdev *nd, uint32_t size, uint64_t end)
{
	fill_slots(nd, size);
	uint64_t sent = 0, polls = 0;
	while (time_ns() < end) {
		unsigned before = nd->ntx_free;
		netdev_reclaim(nd);
		sent += nd->ntx_free - before;
		/* Every slot's descriptor already describes its frame: only
		 * the avail ring is written (no cache lines bounced for
		 * descriptors that do not change). */
		bool any = nd->ntx_free != 0;
		while (nd->ntx_free)
			vq_add(&nd->tx, nd->tx_free[--nd->ntx_free]);
		if (any)
			netdev_tx_kick(nd);
		if (!(++polls & 1023))
			netdev_poll(nd, net_serve); /* ARP from the peer, say */
	}
	return sent;
}

static bool run_rx(struct netdev *nd, uint64_t secs, uint64_t *ns, char *why, size_t n)
{
	uint64_t deadline = time_ns() + 30000000000ULL;
	while (!rx_count) {
		if (time_ns() > deadline) {
			snformat(why, n, "no traffic in 30 s");
			return false;
		}
		netdev_poll(nd, bench_rx);
		netdev_reclaim(nd);
	}
	uint64_t start = time_ns(), end = start + secs * 1000000000ULL;
	uint64_t c0 = rx_count, b0 = rx_bytes;
	while (time_ns() < end) {
		netdev_poll(nd, bench_rx);
		netdev_reclaim(nd);
	}
	*ns = time_ns() - start;
	rx_count -= c0;
	rx_bytes -= b0;
	return true;
}

bool test_net_bench(char *why, size_t n)
{
	static struct netdev nd;
	bool tx = net_opt.bench && !strcmp(net_opt.bench, "tx");
	uint32_t size = net_opt.size ? (uint32_t)net_opt.size : 64;
	uint64_t secs = net_opt.secs ? net_opt.secs : 5;
	if (!net_opt.ip[0] || (tx && !net_opt.peer)) {
		snformat(why, n, "need guest.ip= (and guest.net_peer= for tx)");
		return false;
	}
	if (!netdev_open(&nd, 0, net_opt.ip[0], why, n))
		return false;
	announce(&nd);
	uint64_t frames, bytes, ns;
	if (tx) {
		if (!resolve_peer(&nd, why, n))
			return false;
		uint64_t start = time_ns();
		frames = run_tx(&nd, size, start + secs * 1000000000ULL);
		ns = time_ns() - start;
		bytes = frames * size;
	} else {
		if (!run_rx(&nd, secs, &ns, why, n))
			return false;
		frames = rx_count;
		bytes = rx_bytes;
	}
	print("BENCH pps=%llu mbps=%llu dir=%s size=%u frames=%llu ns=%llu kicks=%llu clock=%s\n",
	      (unsigned long long)(frames * 1000000000ULL / ns),
	      (unsigned long long)(bytes * 8000ULL / ns), tx ? "tx" : "rx", size,
	      (unsigned long long)frames, (unsigned long long)ns,
	      (unsigned long long)(tx ? nd.tx.kicks : nd.rx.kicks), time_source());
	return true;
}
