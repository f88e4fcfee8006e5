/* The guest memory map (boot/e820.c) for various RAM sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "boot/e820.h"
#include "mem.h"

/* e820_build only reads the sizes: no need to allocate RAM. */
static struct guest_mem mem_of(uint64_t size)
{
	struct guest_mem m;
	memset(&m, 0, sizeof(m));
	m.memfd = -1;
	m.size = size;
	m.low_size = size < MMIO_HOLE_START ? size : MMIO_HOLE_START;
	m.high_size = size - m.low_size;
	return m;
}

static void expect(const struct e820_range *r, uint64_t start, uint64_t end, uint32_t type)
{
	assert_int_equal(r->addr, start);
	assert_int_equal(r->addr + r->size, end);
	assert_int_equal(r->type, type);
}

/* Sorted, non-overlapping, and RAM adds up to all of guest RAM except the
 * 0x9fc00..1 MiB window. */
static void check_invariants(const struct guest_mem *m, const struct e820_range *r, unsigned n)
{
	uint64_t ram = 0;
	for (unsigned i = 0; i < n; i++) {
		assert_true(r[i].size > 0);
		if (i)
			assert_true(r[i].addr >= r[i - 1].addr + r[i - 1].size);
		assert_false(r[i].addr < MMIO_HOLE_END && r[i].addr + r[i].size > MMIO_HOLE_START);
		if (r[i].type == E820_TYPE_RAM)
			ram += r[i].size;
	}
	assert_int_equal(ram, m->size - (0x100000 - 0x9fc00));
}

static void common_low(const struct e820_range *r)
{
	expect(&r[0], 0, 0x9fc00, E820_TYPE_RAM);
	expect(&r[1], 0x9fc00, 0xa0000, E820_TYPE_RESERVED);
	expect(&r[2], 0xe0000, 0x100000, E820_TYPE_RESERVED); /* ACPI tables, MP table */
}

static void test_64m(void **state)
{
	(void)state;
	struct guest_mem m = mem_of(64 * MIB);
	struct e820_range r[E820_MAX_RANGES];
	unsigned n = e820_build(&m, r, E820_MAX_RANGES);
	assert_int_equal(n, 4);
	common_low(r);
	expect(&r[3], 0x100000, 64 * MIB, E820_TYPE_RAM);
	check_invariants(&m, r, n);
}

static void test_3g(void **state)
{
	(void)state;
	struct guest_mem m = mem_of(3 * GIB);
	struct e820_range r[E820_MAX_RANGES];
	unsigned n = e820_build(&m, r, E820_MAX_RANGES);
	assert_int_equal(n, 4);
	common_low(r);
	expect(&r[3], 0x100000, 0xC0000000ULL, E820_TYPE_RAM);
	check_invariants(&m, r, n);
}

static void test_3g_plus_1m(void **state)
{
	(void)state;
	struct guest_mem m = mem_of(3 * GIB + MIB);
	struct e820_range r[E820_MAX_RANGES];
	unsigned n = e820_build(&m, r, E820_MAX_RANGES);
	assert_int_equal(n, 5);
	common_low(r);
	expect(&r[3], 0x100000, 0xC0000000ULL, E820_TYPE_RAM);
	expect(&r[4], 0x100000000ULL, 0x100100000ULL, E820_TYPE_RAM);
	check_invariants(&m, r, n);
}

static void test_8g(void **state)
{
	(void)state;
	struct guest_mem m = mem_of(8 * GIB);
	struct e820_range r[E820_MAX_RANGES];
	unsigned n = e820_build(&m, r, E820_MAX_RANGES);
	assert_int_equal(n, 5);
	common_low(r);
	expect(&r[3], 0x100000, 0xC0000000ULL, E820_TYPE_RAM);
	expect(&r[4], 4 * GIB, 9 * GIB, E820_TYPE_RAM); /* 5 GiB above the hole */
	check_invariants(&m, r, n);
}

static void test_real_allocation_matches(void **state)
{
	(void)state;
	struct guest_mem m;
	struct e820_range r[E820_MAX_RANGES];
	assert_int_equal(guest_mem_init(&m, 3 * GIB + MIB, 0), 0);
	unsigned n = e820_build(&m, r, E820_MAX_RANGES);
	assert_int_equal(n, 5);
	for (unsigned i = 0; i < n; i++)
		if (r[i].type == E820_TYPE_RAM)
			assert_non_null(guest_ptr(&m, r[i].addr, r[i].size));
	guest_mem_destroy(&m);
}

static void test_max_respected(void **state)
{
	(void)state;
	struct guest_mem m = mem_of(8 * GIB);
	struct e820_range r[3];
	assert_int_equal(e820_build(&m, r, 3), 3);
	assert_int_equal(e820_build(&m, r, 0), 0);
}

static void test_tiny(void **state)
{
	(void)state;
	struct guest_mem m = mem_of(512 * 1024);
	struct e820_range r[E820_MAX_RANGES];
	unsigned n = e820_build(&m, r, E820_MAX_RANGES);
	assert_int_equal(n, 1);
	expect(&r[0], 0, 512 * 1024, E820_TYPE_RAM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_64m),
	    cmocka_unit_test(test_3g),
	    cmocka_unit_test(test_3g_plus_1m),
	    cmocka_unit_test(test_8g),
	    cmocka_unit_test(test_real_allocation_matches),
	    cmocka_unit_test(test_max_respected),
	    cmocka_unit_test(test_tiny),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
