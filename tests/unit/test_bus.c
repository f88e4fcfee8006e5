#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bus.h"

struct probe {
	uint64_t last_offset;
	uint32_t last_len;
	bool last_write;
	int calls;
};

static void probe_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct probe *p = dev;
	p->last_offset = offset;
	p->last_len = len;
	p->last_write = is_write;
	p->calls++;
	if (!is_write)
		memset(data, 0x5a, len);
}

static void dispatch_by_range(void **state)
{
	(void)state;
	struct bus b;
	struct probe a = { 0 }, c = { 0 };
	bus_init(&b, "pio");
	assert_int_equal(bus_register(&b, 0x3f8, 8, probe_io, &a, "com1"), 0);
	assert_int_equal(bus_register(&b, 0x60, 1, probe_io, &c, "kbd"), 0);
	uint8_t data[4] = { 0 };
	assert_true(bus_access(&b, 0x3fd, data, 1, false));
	assert_int_equal(a.last_offset, 5);
	assert_int_equal(data[0], 0x5a);
	assert_true(bus_access(&b, 0x60, data, 1, true));
	assert_int_equal(c.calls, 1);
	assert_true(c.last_write);
}

static void unclaimed_reads_all_ones(void **state)
{
	(void)state;
	struct bus b;
	struct probe a = { 0 };
	bus_init(&b, "pio");
	assert_int_equal(bus_register(&b, 0x3f8, 8, probe_io, &a, "com1"), 0);
	uint8_t data[4] = { 0 };
	assert_false(bus_access(&b, 0x2f8, data, 4, false));
	assert_int_equal(data[0] & data[1] & data[2] & data[3], 0xff);
	/* An access that starts inside but runs past the device is refused. */
	assert_false(bus_access(&b, 0x3ff, data, 2, false));
	assert_int_equal(a.calls, 0);
}

static void overlap_refused(void **state)
{
	(void)state;
	struct bus b;
	struct probe a = { 0 };
	bus_init(&b, "mmio");
	assert_int_equal(bus_register(&b, 0x1000, 0x1000, probe_io, &a, "x"), 0);
	assert_int_not_equal(bus_register(&b, 0x1800, 0x1000, probe_io, &a, "y"), 0);
	assert_int_not_equal(bus_register(&b, 0x0800, 0x1000, probe_io, &a, "z"), 0);
	assert_int_not_equal(bus_register(&b, 0, 0, probe_io, &a, "empty"), 0);
	assert_int_not_equal(bus_register(&b, UINT64_MAX, 2, probe_io, &a, "wrap"), 0);
	assert_int_equal(bus_register(&b, 0x2000, 0x1000, probe_io, &a, "next"), 0);
}

static void many_ranges_sorted(void **state)
{
	(void)state;
	struct bus b;
	struct probe p[BUS_MAX_RANGES];
	memset(p, 0, sizeof(p));
	bus_init(&b, "mmio");
	/* Register in reverse order; lookups must still find each one. */
	for (int i = BUS_MAX_RANGES - 1; i >= 0; i--)
		assert_int_equal(bus_register(&b, 0x10000 + i * 0x100, 0x100, probe_io, &p[i], "d"), 0);
	assert_int_not_equal(bus_register(&b, 0x90000, 0x100, probe_io, &p[0], "full"), 0);
	uint8_t data[4];
	for (int i = 0; i < BUS_MAX_RANGES; i++) {
		assert_true(bus_access(&b, 0x10000 + i * 0x100 + 0x10, data, 4, false));
		assert_int_equal(p[i].calls, 1);
		assert_int_equal(p[i].last_offset, 0x10);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dispatch_by_range),
		cmocka_unit_test(unclaimed_reads_all_ones),
		cmocka_unit_test(overlap_refused),
		cmocka_unit_test(many_ranges_sorted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
