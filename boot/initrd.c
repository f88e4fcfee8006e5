#include "initrd.h"

#include <unistd.h>

#include "../log.h"
#include "kfile.h"
#include "layout.h"

static uint64_t page_down(uint64_t x)
{
	return x & ~(BOOT_PAGE_SIZE - 1);
}

static int overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t bend)
{
	return a < bend && b < a + alen;
}

int initrd_place(uint64_t size, uint64_t limit_end, uint64_t kstart, uint64_t kend, uint64_t *addr)
{
	if (size == 0 || size > limit_end)
		return -1;
	uint64_t top = page_down(limit_end - size);
	if (top >= BOOT_KERNEL_MIN && !overlaps(top, size, kstart, kend)) {
		*addr = top;
		return 0;
	}
	if (kstart < size)
		return -1;
	uint64_t below = page_down(kstart - size);
	if (below >= BOOT_KERNEL_MIN && below + size <= limit_end) {
		*addr = below;
		return 0;
	}
	return -1;
}

int initrd_load(struct guest_mem *m, const char *path, uint64_t addr_max, uint64_t kstart,
		uint64_t kend, uint64_t *gpa, uint64_t *size)
{
	uint64_t limit = addr_max + 1 < m->low_size ? addr_max + 1 : m->low_size;
	uint64_t len, addr;
	int fd = kfile_open("initrd", path, &len);
	if (fd < 0)
		return -1;
	if (initrd_place(len, limit, kstart, kend, &addr) < 0) {
		vmm_err("initrd %s: %llu bytes do not fit in guest RAM below 0x%llx next to the "
			"kernel at [0x%llx, 0x%llx)",
			path, (unsigned long long)len, (unsigned long long)limit,
			(unsigned long long)kstart, (unsigned long long)kend);
		close(fd);
		return -1;
	}
	void *dst = guest_ptr(m, addr, len);
	int rc = dst ? kfile_read_exact("initrd", path, fd, dst, len) : -1;
	close(fd);
	if (rc < 0)
		return -1;
	*gpa = addr;
	*size = len;
	return 0;
}
