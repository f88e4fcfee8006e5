/* guest_ptr() is the one gate between guest addresses and host memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "mem.h"

static void small_guest(void **state)
{
	(void)state;
	struct guest_mem m;
	assert_int_equal(guest_mem_init(&m, 64 * MIB, 0), 0);
	assert_int_equal(m.low_size, 64 * MIB);
	assert_int_equal(m.high_size, 0);
	assert_ptr_equal(guest_ptr(&m, 0, 1), m.host);
	assert_non_null(guest_ptr(&m, 64 * MIB - 8, 8));
	assert_non_null(guest_ptr(&m, 64 * MIB, 0)); /* empty range at the end */
	assert_null(guest_ptr(&m, 64 * MIB - 8, 9)); /* one byte past RAM */
	assert_null(guest_ptr(&m, 64 * MIB, 1));
	assert_null(guest_ptr(&m, UINT64_MAX, 2)); /* wraps */
	assert_null(guest_ptr(&m, 8, UINT64_MAX));
	assert_null(guest_ptr(&m, MMIO_HOLE_END, 1));
	guest_mem_destroy(&m);
}

static void guest_across_the_hole(void **state)
{
	(void)state;
	struct guest_mem m;
	uint64_t size = MMIO_HOLE_START + 256 * MIB;
	assert_int_equal(guest_mem_init(&m, size, 0), 0);
	assert_int_equal(m.low_size, MMIO_HOLE_START);
	assert_int_equal(m.high_size, 256 * MIB);
	/* The hole itself is not RAM, and no range may straddle it. */
	assert_null(guest_ptr(&m, MMIO_HOLE_START, 1));
	assert_null(guest_ptr(&m, MMIO_HOLE_START - 4, 8));
	assert_null(guest_ptr(&m, MMIO_HOLE_END - 4, 8));
	assert_null(guest_ptr(&m, LAPIC_BASE, 4));
	/* High RAM maps right after low RAM in the memfd. */
	assert_ptr_equal(guest_ptr(&m, MMIO_HOLE_END, 8), m.host + MMIO_HOLE_START);
	assert_int_equal(guest_mem_offset(&m, MMIO_HOLE_END + 4096), MMIO_HOLE_START + 4096);
	assert_int_equal(guest_mem_offset(&m, MMIO_HOLE_START), -1);
	assert_non_null(guest_ptr(&m, MMIO_HOLE_END + 256 * MIB - 1, 1));
	assert_null(guest_ptr(&m, MMIO_HOLE_END + 256 * MIB - 1, 2));

	uint64_t v = 0x1122334455667788ULL, r = 0;
	assert_true(guest_write(&m, MMIO_HOLE_END + 16, &v, sizeof(v)));
	assert_true(guest_read(&m, MMIO_HOLE_END + 16, &r, sizeof(r)));
	assert_int_equal(r, v);
	assert_false(guest_write(&m, MMIO_HOLE_START - 4, &v, sizeof(v)));
	guest_mem_destroy(&m);
}

/* Pages of the backing the host holds for [p, p+len), from mincore(). */
static size_t resident_pages(const void *p, size_t len)
{
	unsigned char vec[1024];
	assert_true(len / 4096 <= sizeof(vec));
	assert_int_equal(mincore((void *)p, len, vec), 0);
	size_t n = 0;
	for (size_t i = 0; i < len / 4096; i++)
		n += vec[i] & 1;
	return n;
}

/* Discarding hands pages back to the host and the guest then reads
 * zeroes, for both backings; bad ranges are refused. */
static void discard_gives_pages_back(void **state)
{
	(void)state;
	enum mem_backing kinds[] = { MEM_SHARED_MEMFD, MEM_ANON_PRIVATE };
	for (int k = 0; k < 2; k++) {
		struct mem_request req;
		struct guest_mem m;
		mem_request_init(&req);
		req.backing = kinds[k];
		assert_int_equal(guest_mem_create(&m, 8 * MIB, &req), 0);
		assert_int_equal((uintptr_t)m.host % (2 * MIB), 0); /* huge-page ready */
		assert_int_equal(m.memfd >= 0, kinds[k] == MEM_SHARED_MEMFD);
		uint8_t *p = guest_ptr(&m, MIB, 256 * 1024);
		memset(p, 0xAB, 256 * 1024);
		assert_int_equal(resident_pages(p, 256 * 1024), 64);
		/* [4 KiB - 1, 128 KiB - 1): only the 30 whole pages inside go. */
		assert_int_equal(guest_mem_discard(&m, MIB + 4095, 128 * 1024 - 4096), 0);
		assert_int_equal(resident_pages(p, 256 * 1024), 64 - 30);
		assert_int_equal(p[4095], 0xAB);
		assert_int_equal(p[4096], 0);
		assert_int_equal(p[128 * 1024 - 1], 0xAB);
		assert_int_equal(guest_mem_discard(&m, 8 * MIB - 4096, 8192), -EINVAL);
		assert_int_equal(guest_mem_discard(&m, UINT64_MAX - 4095, 4096), -EINVAL);
		assert_int_equal(guest_mem_discard(&m, 0, 0), -EINVAL);
		guest_mem_destroy(&m);
	}
}

static void page_size_multiple(void **state)
{
	(void)state;
	struct mem_request req;
	struct guest_mem m;
	mem_request_init(&req);
	req.page_size = 2 * MIB;
	req.backing = MEM_ANON_PRIVATE; /* a 2 MiB granule without a hugetlb pool */
	assert_int_not_equal(guest_mem_create(&m, 3 * MIB, &req), 0);
	assert_int_equal(guest_mem_create(&m, 4 * MIB, &req), 0);
	assert_int_equal(m.page_size, 2 * MIB);
	guest_mem_destroy(&m);
}

static void bad_sizes_refused(void **state)
{
	(void)state;
	struct guest_mem m;
	assert_int_not_equal(guest_mem_init(&m, 0, 0), 0);
	assert_int_not_equal(guest_mem_init(&m, 4097, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(small_guest),
		cmocka_unit_test(guest_across_the_hole),
		cmocka_unit_test(bad_sizes_refused), cmocka_unit_test(discard_gives_pages_back),
		cmocka_unit_test(page_size_multiple),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
