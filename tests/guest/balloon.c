/*
 * balloon: follow the host's target. Touch guest.balloon_touch_mib MiB
 * (so the host has them resident), report guest.balloon_report_mib MiB
 * free (they must read back as zeroes: the host dropped them), then for
 * guest.balloon_rounds target changes inflate or deflate to the target
 * from the touched pages. Pages given back must read as zeroes when
 * taken again; pages never given must keep their contents. The host
 * watches its RSS between the printed lines.
 */
#include "balloon.h"

#define WAIT_NS (60ULL * 1000000000)

static uint64_t mark(uint64_t pfn)
{
	return 0xBA11000000000000ULL | pfn;
}

static void touch(uint64_t pfn, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		volatile uint64_t *w = phys((pfn + i) * BALLOON_PAGE);
		w[0] = mark(pfn + i);
		w[511] = ~mark(pfn + i);
	}
}

/* Pages [pfn, pfn + count) hold their marks. */
static bool intact(uint64_t pfn, uint32_t count, char *why, size_t n)
{
	for (uint32_t i = 0; i < count; i++) {
		volatile uint64_t *w = phys((pfn + i) * BALLOON_PAGE);
		if (w[0] != mark(pfn + i) || w[511] != ~mark(pfn + i)) {
			snformat(why, n, "page 0x%llx lost its contents (0x%llx)",
				 (unsigned long long)(pfn + i), (unsigned long long)w[0]);
			return false;
		}
	}
	return true;
}

/* Pages [pfn, pfn + count) read as zeroes: the host gave them back. */
static bool zeroed(uint64_t pfn, uint32_t count, char *why, size_t n)
{
	for (uint32_t i = 0; i < count; i++) {
		volatile uint64_t *w = phys((pfn + i) * BALLOON_PAGE);
		for (unsigned k = 0; k < 512; k++)
			if (w[k]) {
				snformat(why, n, "page 0x%llx word %u is 0x%llx, not 0",
					 (unsigned long long)(pfn + i), k,
					 (unsigned long long)w[k]);
				return false;
			}
	}
	return true;
}

static bool report_free(struct balloondev *b, char *why, size_t n)
{
	uint64_t len = balloon_opt.report_mib << 20;
	if (!b->has_report || !len)
		return true;
	uint8_t *p = galloc(len, 2ULL << 20);
	if (!p) {
		snformat(why, n, "out of memory for the report");
		return false;
	}
	uint64_t pfn = (uint64_t)(uintptr_t)p / BALLOON_PAGE;
	touch(pfn, (uint32_t)(len / BALLOON_PAGE));
	if (!balloon_report(b, (uint64_t)(uintptr_t)p, len, why, n) ||
	    !zeroed(pfn, (uint32_t)(len / BALLOON_PAGE), why, n))
		return false;
	print("BALLOON reported mib=%llu zeroed\n", (unsigned long long)balloon_opt.report_mib);
	return true;
}

/* Wait for num_pages to differ from `actual`, serving statistics. */
static bool wait_target(struct balloondev *b, uint32_t actual, uint32_t *target)
{
	uint64_t end = time_ns() + WAIT_NS;
	while ((*target = balloon_target(b)) == actual) {
		if (time_ns() > end)
			return false;
		balloon_poll_stats(b);
		udelay(1000);
	}
	return true;
}

struct region {
	uint64_t pfn;	 /* first touched page */
	uint32_t pages;	 /* touched */
	uint32_t actual; /* pages [pfn, pfn + actual) are in the balloon */
};

/* Move the balloon to `target` pages of r. */
static bool follow(struct balloondev *b, struct region *r, uint32_t target, char *why, size_t n)
{
	if (target > r->pages) {
		snformat(why, n, "target %u pages is more than the %u touched", target, r->pages);
		return false;
	}
	bool inflate = target > r->actual;
	uint32_t lo = inflate ? r->actual : target, count = inflate ? target - lo : r->actual - lo;
	if (!balloon_pages(b, inflate, r->pfn + lo, count, why, n))
		return false;
	r->actual = target;
	balloon_set_actual(b, target);
	b->free_bytes = b->ram_bytes - (uint64_t)(r->pages - target) * BALLOON_PAGE;
	/* Taken back: the host's copy is gone, so zeroes; then ours again. */
	if (!inflate && !zeroed(r->pfn + lo, count, why, n))
		return false;
	if (!inflate)
		touch(r->pfn + lo, count);
	return intact(r->pfn + r->actual, r->pages - r->actual, why, n);
}

bool test_balloon(char *why, size_t n)
{
	struct balloondev b;
	if (!balloon_open(&b, why, n))
		return false;
	struct region r = {.pages = (uint32_t)(balloon_opt.touch_mib << 8)};
	uint8_t *p = galloc((uint64_t)r.pages * BALLOON_PAGE, 2ULL << 20);
	if (!p) {
		snformat(why, n, "out of memory for %llu MiB",
			 (unsigned long long)balloon_opt.touch_mib);
		return false;
	}
	r.pfn = (uint64_t)(uintptr_t)p / BALLOON_PAGE;
	touch(r.pfn, r.pages);
	b.free_bytes = b.ram_bytes - (uint64_t)r.pages * BALLOON_PAGE;
	print("BALLOON touched mib=%llu pages=%u\n", (unsigned long long)balloon_opt.touch_mib,
	      r.pages);
	if (!report_free(&b, why, n))
		return false;
	for (unsigned round = 1; round <= balloon_opt.rounds; round++) {
		uint32_t target;
		print("BALLOON waiting round=%u actual=%u\n", round, r.actual);
		if (!wait_target(&b, r.actual, &target)) {
			snformat(why, n, "round %u: the target never moved from %u", round,
				 r.actual);
			return false;
		}
		if (!follow(&b, &r, target, why, n))
			return false;
		print("BALLOON round=%u target=%u actual=%u stats_sent=%llu\n", round, target,
		      r.actual, (unsigned long long)b.stats_sent);
	}
	return true;
}
