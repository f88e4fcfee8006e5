/*
 * balloon_evil: a misbehaving balloon driver, from inside a real VM.
 * PFNs outside RAM (past its end, in the MMIO hole, on the device's own
 * window), page lists of odd length, device-writable or too long, buffers
 * outside RAM, malformed statistics buffers, misaligned and bogus free
 * page reports, writes to read-only config, notifies for queues that do
 * not exist: each chain must come back with used length 0 and nothing
 * but the valid pages given back; a runaway avail index must end in
 * DEVICE_NEEDS_RESET, and a reset must bring the device back. The VMM
 * must survive all of it (the host then checks it still serves its API).
 */
#include "balloon.h"

/* Four marked pages the cases aim at. */
static uint64_t victim;

static uint64_t mark(unsigned i)
{
	return 0xE7110000ULL + i;
}

static volatile uint64_t *page(unsigned i)
{
	return phys((victim + i) * BALLOON_PAGE);
}

static void set_desc(struct gvq *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	q->desc[i] = (struct vdesc){addr, len, flags, next};
}

static bool healthy(struct balloondev *b, const char *what, char *why, size_t n)
{
	if (vread(&b->dev, VMMIO_STATUS) & VSTATUS_NEEDS_RESET) {
		snformat(why, n, "%s: the device gave up (NEEDS_RESET)", what);
		return false;
	}
	return true;
}

/* Run the chain at descriptor 0 of q: it must come back empty. */
static bool refused(struct balloondev *b, struct gvq *q, const char *what, char *why, size_t n)
{
	int64_t len = balloon_run(b, q, 0);
	if (len != 0) {
		snformat(why, n, "%s: used length %lld, expected 0", what, (long long)len);
		return false;
	}
	return healthy(b, what, why, n);
}

/* Victim page i holds its mark (want_mark) or was given back (zero). */
static bool victim_is(unsigned i, bool want_mark, const char *what, char *why, size_t n)
{
	uint64_t v = page(i)[0];
	if (v == (want_mark ? mark(i) : 0))
		return true;
	snformat(why, n, "%s: victim page %u holds 0x%llx", what, i, (unsigned long long)v);
	return false;
}

static uint64_t ram_end_pfn(void)
{
	uint64_t end = 0;
	for (unsigned i = 0; i < boot.nmem; i++)
		if (boot.mem[i].type == E820_RAM && boot.mem[i].end > end)
			end = boot.mem[i].end;
	return end / BALLOON_PAGE;
}

static bool bad_pfns(struct balloondev *b, uint32_t *buf, char *why, size_t n)
{
	uint32_t bad[] = {0xffffffffU,
			  (uint32_t)ram_end_pfn(),
			  0xc0000,
			  0xd0000,
			  (uint32_t)(b->dev.base / BALLOON_PAGE),
			  0xfee00,
			  0xfffff};
	unsigned nb = sizeof(bad) / sizeof(bad[0]);
	memcpy(buf, bad, sizeof(bad));
	set_desc(&b->inflate, 0, (uint64_t)(uintptr_t)buf, nb * 4, 0, 0);
	if (!refused(b, &b->inflate, "PFNs outside RAM", why, n))
		return false;
	set_desc(&b->deflate, 0, (uint64_t)(uintptr_t)buf, nb * 4, 0, 0);
	if (!refused(b, &b->deflate, "deflating PFNs outside RAM", why, n))
		return false;
	/* One good PFN among bad ones: that page, and only that, goes. */
	buf[0] = 0xffffffffU;
	buf[1] = (uint32_t)victim;
	buf[2] = 0xd0000;
	set_desc(&b->inflate, 0, (uint64_t)(uintptr_t)buf, 12, 0, 0);
	return refused(b, &b->inflate, "mixed PFNs", why, n) &&
	       victim_is(0, false, "mixed PFNs", why, n) && victim_is(1, true, "mixed", why, n);
}

static bool bad_lists(struct balloondev *b, uint32_t *buf, uint32_t *huge, char *why, size_t n)
{
	uint64_t a = (uint64_t)(uintptr_t)buf;
	buf[0] = (uint32_t)(victim + 1);
	buf[1] = (uint32_t)(victim + 1);
	set_desc(&b->inflate, 0, a, 6, 0, 0); /* not a multiple of 4 */
	if (!refused(b, &b->inflate, "6-byte page list", why, n))
		return false;
	set_desc(&b->inflate, 0, a, 4, VDESC_WRITE, 0); /* device-writable */
	if (!refused(b, &b->inflate, "writable page list", why, n))
		return false;
	for (uint32_t i = 0; i <= 65536; i++)
		huge[i] = (uint32_t)(victim + 1);
	set_desc(&b->inflate, 0, (uint64_t)(uintptr_t)huge, 65537 * 4, 0, 0);
	if (!refused(b, &b->inflate, "65537 PFNs", why, n))
		return false;
	set_desc(&b->inflate, 0, 0x7fffffff0000ULL, 64, 0, 0); /* far past RAM */
	if (!refused(b, &b->inflate, "page list outside RAM", why, n))
		return false;
	set_desc(&b->inflate, 0, b->dev.base, 64, 0, 0); /* the device's own window */
	if (!refused(b, &b->inflate, "page list in the MMIO window", why, n))
		return false;
	return victim_is(1, true, "refused page lists", why, n);
}

/* A PFN split 2 + 2 bytes over two descriptors: any layout is valid. */
static bool split_pfn(struct balloondev *b, uint32_t *buf, char *why, size_t n)
{
	uint64_t a = (uint64_t)(uintptr_t)buf;
	buf[0] = (uint32_t)(victim + 2);
	set_desc(&b->inflate, 0, a, 2, VDESC_NEXT, 1);
	set_desc(&b->inflate, 1, a + 2, 2, 0, 0);
	return refused(b, &b->inflate, "split PFN", why, n) &&
	       victim_is(2, false, "a PFN split over two descriptors", why, n);
}

/* Post descriptor `head` on the statistics queue: the device must give
 * back the buffer it held (`held`) and keep the new one. */
static bool swap_stats(struct balloondev *b, uint16_t head, uint16_t held, const char *what,
		       char *why, size_t n)
{
	vq_add(&b->stats, head);
	vq_kick(&b->stats);
	uint64_t end = time_ns() + BALLOON_TIMEOUT_NS;
	uint32_t len;
	int id;
	while ((id = vq_used(&b->stats, &len)) < 0)
		if (time_ns() > end) {
			snformat(why, n, "%s: the held statistics buffer never came back", what);
			return false;
		}
	if (id != held || len != 0) {
		snformat(why, n, "%s: got buffer %d (length %u), expected %u", what, id, len, held);
		return false;
	}
	return healthy(b, what, why, n);
}

static bool bad_stats(struct balloondev *b, uint8_t *buf, char *why, size_t n)
{
	if (!b->has_stats)
		return true;
	b->has_stats = false; /* answered by hand from here on */
	uint64_t a = (uint64_t)(uintptr_t)buf;
	static const uint8_t unknown[20] = {200,  0,	1, 2, 3, 4, 5, 6, 7, 8,
					    0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8};
	memcpy(buf, unknown, sizeof(unknown));
	set_desc(&b->stats, 1, a, 7, 0, 0);
	set_desc(&b->stats, 2, a, 20, VDESC_WRITE, 0);
	set_desc(&b->stats, 3, a, 20, 0, 0);
	return swap_stats(b, 1, 0, "7-byte statistics", why, n) &&
	       swap_stats(b, 2, 1, "writable statistics", why, n) &&
	       swap_stats(b, 3, 2, "unknown statistics tags", why, n) &&
	       swap_stats(b, 0, 3, "valid statistics again", why, n);
}

static bool bad_reports(struct balloondev *b, char *why, size_t n)
{
	if (!b->has_report)
		return true;
	uint64_t v3 = (victim + 3) * BALLOON_PAGE;
	set_desc(&b->report, 0, v3 + 100, 100, VDESC_WRITE, 0); /* inside one page */
	if (!refused(b, &b->report, "misaligned report", why, n) ||
	    !victim_is(3, true, "a report smaller than a page", why, n))
		return false;
	set_desc(&b->report, 0, 0x7fffffff0000ULL, 1 << 20, VDESC_WRITE, 0);
	if (!refused(b, &b->report, "report outside RAM", why, n))
		return false;
	set_desc(&b->report, 0, 0xdeadbeef000ULL, 0, VDESC_WRITE, 0); /* empty */
	return refused(b, &b->report, "empty report", why, n);
}

static bool bad_config(struct balloondev *b, char *why, size_t n)
{
	uint32_t target = balloon_target(b);
	vwrite(&b->dev, VMMIO_CONFIG + VBAL_CFG_NUM_PAGES, target + 12345);
	vwrite(&b->dev, VMMIO_CONFIG + 8, 0x55);
	vwrite(&b->dev, VMMIO_CONFIG + 0x100, 0x55);
	*(volatile uint16_t *)phys(b->dev.base + VMMIO_CONFIG + VBAL_CFG_ACTUAL) = 7;
	vwrite(&b->dev, VMMIO_QUEUE_NOTIFY, 7); /* no such queue */
	if (balloon_target(b) != target) {
		snformat(why, n, "the driver changed num_pages to %u", balloon_target(b));
		return false;
	}
	if ((vread(&b->dev, VMMIO_CONFIG + VBAL_CFG_ACTUAL) & 0xffff) != 7) {
		snformat(why, n, "a 2-byte write of actual was lost");
		return false;
	}
	balloon_set_actual(b, 0);
	return healthy(b, "config writes", why, n);
}

/* A runaway avail index breaks the ring; a reset must bring it back. */
static bool runaway(struct balloondev *b, char *why, size_t n)
{
	b->inflate.avail[1] = (uint16_t)(b->inflate.avail_idx + b->inflate.size + 5);
	vwrite(&b->dev, VMMIO_QUEUE_NOTIFY, 0);
	uint64_t end = time_ns() + BALLOON_TIMEOUT_NS;
	while (!(vread(&b->dev, VMMIO_STATUS) & VSTATUS_NEEDS_RESET))
		if (time_ns() > end) {
			snformat(why, n, "runaway avail index accepted");
			return false;
		}
	if (!balloon_open(b, why, n) || !balloon_pages(b, true, victim + 3, 1, why, n))
		return false;
	return victim_is(3, false, "inflate after the reset", why, n);
}

/* guest.balloon_hold=1: stay until the host moves the target, so it can
 * look at a VMM that went through all of the above. */
static bool hold(struct balloondev *b, char *why, size_t n)
{
	if (!balloon_opt.hold)
		return true;
	uint32_t target = balloon_target(b);
	print("BALLOON evil: holding at target=%u\n", target);
	uint64_t end = time_ns() + 60ULL * 1000000000;
	while (balloon_target(b) == target) {
		if (time_ns() > end) {
			snformat(why, n, "the target never moved");
			return false;
		}
		balloon_poll_stats(b);
		udelay(1000);
	}
	return healthy(b, "holding", why, n);
}

bool test_balloon_evil(char *why, size_t n)
{
	struct balloondev b;
	uint32_t *buf = galloc(4096, 4096), *huge = galloc(65537 * 4, 4096);
	uint8_t *victims = galloc(4 * BALLOON_PAGE, 4096);
	if (!buf || !huge || !victims) {
		snformat(why, n, "out of memory");
		return false;
	}
	victim = (uint64_t)(uintptr_t)victims / BALLOON_PAGE;
	for (unsigned i = 0; i < 4; i++)
		page(i)[0] = mark(i);
	if (!balloon_open(&b, why, n))
		return false;
	if (!bad_pfns(&b, buf, why, n) || !bad_lists(&b, buf, huge, why, n) ||
	    !split_pfn(&b, buf, why, n))
		return false;
	print("BALLOON evil: bad PFNs and page lists refused, valid pages given back\n");
	if (!bad_stats(&b, (uint8_t *)buf, why, n) || !bad_reports(&b, why, n) ||
	    !bad_config(&b, why, n))
		return false;
	print("BALLOON evil: bad statistics, reports and config writes refused\n");
	if (!runaway(&b, why, n))
		return false;
	print("BALLOON evil: runaway avail index -> NEEDS_RESET, reset recovers\n");
	return hold(&b, why, n);
}
