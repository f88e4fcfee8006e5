/*
 * `memhold`: fill guest.fill_mib MiB of RAM above the image with a pattern
 * of guest.fill_seed and the page's index, print "MEMHOLD filled_mib=N",
 * then stay alive (idle at CPL3) until the host stops the VM.
 *
 * Pages differ from each other inside one guest, and two guests with the
 * same seed hold the same pages: KSM can merge only across the guests.
 * The host also reads RSS and smaps (hugetlb, THP) while it holds.
 */
#include "guest.h"

#define PAGE 4096ULL

static void fill_page(volatile uint64_t *p, uint64_t index)
{
	uint64_t v = (opt.fill_seed * 0x9E3779B97F4A7C15ULL) ^ (index << 12) ^ 0x5A5A5A5AULL;
	for (unsigned i = 0; i < PAGE / 8; i++)
		p[i] = v + i;
}

/* Fill up to `want` bytes of RAM from the end of the image up. Returns the
 * bytes filled. */
static uint64_t fill_ram(uint64_t want)
{
	uint64_t img_e = ((uint64_t)(uintptr_t)_end + PAGE - 1) & ~(PAGE - 1), done = 0, index = 0;
	for (unsigned i = 0; i < boot.nmem && done < want; i++) {
		const struct mem_range *r = &boot.mem[i];
		if (r->type != E820_RAM)
			continue;
		uint64_t s = (r->start + PAGE - 1) & ~(PAGE - 1), e = r->end & ~(PAGE - 1);
		if (s < img_e)
			s = img_e;
		if (e > mapped_limit)
			e = mapped_limit;
		for (uint64_t a = s; a < e && done < want; a += PAGE, done += PAGE)
			fill_page(phys(a), index++);
	}
	return done;
}

bool test_memhold(char *why, size_t n)
{
	uint64_t want = opt.fill_mib << 20, done = fill_ram(want);
	if (done < want) {
		snformat(why, n, "only %llu of %llu MiB of RAM above the image",
			 (unsigned long long)(done >> 20), (unsigned long long)opt.fill_mib);
		return false;
	}
	print("MEMHOLD filled_mib=%llu\n", (unsigned long long)opt.fill_mib);
	for (;;)
		cpu_relax();
}
