/* Initial ramdisk placement and loading. */
#ifndef VMM_BOOT_INITRD_H
#define VMM_BOOT_INITRD_H

#include <stdint.h>

#include "../mem.h"

/* Highest page-aligned address for `size` bytes with the end at or below
 * `limit_end` (exclusive), at or above BOOT_KERNEL_MIN, and not overlapping
 * the kernel's [kstart, kend). Returns 0 with *addr set, or -1. Pure. */
int initrd_place(uint64_t size, uint64_t limit_end, uint64_t kstart, uint64_t kend, uint64_t *addr);

/* Place and read the initrd at `path` below min(addr_max + 1, end of low
 * RAM). Returns 0 with *gpa and *size set, or -1 with a message printed. */
int initrd_load(struct guest_mem *m, const char *path, uint64_t addr_max, uint64_t kstart,
		uint64_t kend, uint64_t *gpa, uint64_t *size);

#endif
