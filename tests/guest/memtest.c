/* memtest: address-dependent pattern over all usable RAM, at CPL3. */
#include "guest.h"

static inline uint64_t pattern(uint64_t a)
{
	return (a * 0x9E3779B97F4A7C15ULL) ^ 0xA5A5A5A55A5A5A5AULL;
}

/* Calls fn(start, end) for each usable chunk: RAM, mapped, 8-byte aligned,
 * outside the guest image [_image_start, _end). */
static uint64_t for_each_chunk(bool (*fn)(uint64_t, uint64_t, char *, size_t), char *why, size_t n,
			       bool *ok)
{
	uint64_t total = 0;
	uint64_t img_s = (uint64_t)(uintptr_t)_image_start, img_e = (uint64_t)(uintptr_t)_end;
	for (unsigned i = 0; i < boot.nmem && *ok; i++) {
		const struct mem_range *r = &boot.mem[i];
		if (r->type != E820_RAM)
			continue;
		uint64_t s = (r->start + 7) & ~7ULL, e = r->end & ~7ULL;
		if (e > mapped_limit)
			e = mapped_limit;
		uint64_t parts[2][2] = {{s, e < img_s ? e : img_s}, {s > img_e ? s : img_e, e}};
		for (int k = 0; k < 2 && *ok; k++) {
			if (parts[k][0] >= parts[k][1])
				continue;
			total += parts[k][1] - parts[k][0];
			if (!fn(parts[k][0], parts[k][1], why, n))
				*ok = false;
		}
	}
	return total;
}

static bool fill(uint64_t s, uint64_t e, char *why, size_t n)
{
	(void)why, (void)n;
	volatile uint64_t *p = phys(s);
	for (uint64_t a = s; a < e; a += 8)
		*p++ = pattern(a);
	return true;
}

static bool check(uint64_t s, uint64_t e, char *why, size_t n)
{
	volatile uint64_t *p = phys(s);
	for (uint64_t a = s; a < e; a += 8, p++) {
		uint64_t v = *p;
		if (v != pattern(a)) {
			snformat(why, n, "at 0x%llx: read 0x%llx, wrote 0x%llx",
				 (unsigned long long)a, (unsigned long long)v,
				 (unsigned long long)pattern(a));
			return false;
		}
	}
	return true;
}

bool test_memtest(char *why, size_t n)
{
	bool ok = true;
	uint64_t skipped = 0;
	for (unsigned i = 0; i < boot.nmem; i++)
		if (boot.mem[i].type == E820_RAM && boot.mem[i].end > mapped_limit)
			skipped +=
			    boot.mem[i].end -
			    (boot.mem[i].start > mapped_limit ? boot.mem[i].start : mapped_limit);
	if (!boot.nmem) {
		snformat(why, n, "no memory map");
		return false;
	}
	/* Fill everything first, then verify: catches aliasing between ranges. */
	uint64_t total = for_each_chunk(fill, why, n, &ok);
	for_each_chunk(check, why, n, &ok);
	print("MEMTEST tested_mib=%llu bytes=%llu", (unsigned long long)(total >> 20),
	      (unsigned long long)total);
	if (skipped)
		print(" skipped_above_mib=%llu", (unsigned long long)(skipped >> 20));
	print("\n");
	if (ok && !total) {
		snformat(why, n, "no usable RAM outside the image");
		return false;
	}
	return ok;
}
