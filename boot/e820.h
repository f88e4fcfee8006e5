/* The guest memory map, shared by the zero page and the PVH memmap. */
#ifndef VMM_BOOT_E820_H
#define VMM_BOOT_E820_H

#include <stdint.h>

#include "../mem.h"

#define E820_TYPE_RAM 1
#define E820_TYPE_RESERVED 2

#define E820_MAX_RANGES 8

struct e820_range {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/* Fill `out` (room for `max` entries) with the map of `m`, sorted and
 * non-overlapping:
 *   RAM [0, 0x9fc00), reserved [0x9fc00, 0xa0000), reserved [0xe0000, 1 MiB),
 *   RAM [1 MiB, low_size), RAM [4 GiB, 4 GiB + high_size).
 * Ranges are clipped to the RAM that exists. Returns the number of entries
 * (never more than max). */
unsigned e820_build(const struct guest_mem *m, struct e820_range *out, unsigned max);

#endif
