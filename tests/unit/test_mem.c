/* guest_ptr() is the one gate between guest addresses and host memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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
		cmocka_unit_test(bad_sizes_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
