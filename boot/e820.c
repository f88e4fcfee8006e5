#include "e820.h"

#include "layout.h"

static unsigned add(struct e820_range *out, unsigned n, unsigned max, uint64_t start, uint64_t end,
		    uint32_t type)
{
	if (n >= max || end <= start)
		return n;
	out[n].addr = start;
	out[n].size = end - start;
	out[n].type = type;
	return n + 1;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

unsigned e820_build(const struct guest_mem *m, struct e820_range *out, unsigned max)
{
	uint64_t low = m->low_size;
	unsigned n = 0;

	n = add(out, n, max, 0, min_u64(low, BOOT_EBDA_START), E820_TYPE_RAM);
	n = add(out, n, max, BOOT_EBDA_START, min_u64(low, BOOT_VGA_START), E820_TYPE_RESERVED);
	n = add(out, n, max, BOOT_BIOS_START, min_u64(low, BOOT_HIGH_START), E820_TYPE_RESERVED);
	n = add(out, n, max, BOOT_HIGH_START, low, E820_TYPE_RAM);
	if (m->high_size)
		n = add(out, n, max, MMIO_HOLE_END, MMIO_HOLE_END + m->high_size, E820_TYPE_RAM);
	return n;
}
