/*
 * hw/debug_exit.c: a write of V to 0xf4 requests exit status
 * ((V << 1) | 1) & 0xff, the first request wins, reads are all-ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devtest.h"

static int status_for_write(uint32_t value, uint32_t len, uint16_t port)
{
	struct vm *vm = devtest_vm_new();
	struct debug_exit *d = debug_exit_create(vm);
	assert_non_null(d);
	uint8_t data[4] = {(uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16),
			   (uint8_t)(value >> 24)};
	bus_access(&vm->pio, port, data, len, true);
	int status = atomic_load(&vm->exit_status);
	if (status != -1)
		assert_true(devtest_exit_signalled(vm));
	debug_exit_destroy(d);
	devtest_vm_free(vm);
	return status;
}

static void value_to_status(void **state)
{
	(void)state;
	assert_int_equal(status_for_write(0x00, 1, DEBUG_EXIT_PORT), 1);
	assert_int_equal(status_for_write(0x01, 1, DEBUG_EXIT_PORT), 3);
	assert_int_equal(status_for_write(0x10, 1, DEBUG_EXIT_PORT), 0x21);
	assert_int_equal(status_for_write(0x7f, 1, DEBUG_EXIT_PORT), 0xff);
	assert_int_equal(status_for_write(0x80, 1, DEBUG_EXIT_PORT), 1); /* 0x101 & 0xff */
	assert_int_equal(status_for_write(0xff, 1, DEBUG_EXIT_PORT), 0xff);
	for (unsigned v = 0; v < 256; v++)
		assert_int_equal(status_for_write(v, 1, DEBUG_EXIT_PORT), ((v << 1) | 1) & 0xff);
}

static void wide_writes_use_low_byte(void **state)
{
	(void)state;
	assert_int_equal(status_for_write(0x1234, 2, DEBUG_EXIT_PORT), 0x69);
	assert_int_equal(status_for_write(0xdeadbe05, 4, DEBUG_EXIT_PORT), 0x0b);
	/* A write that does not start at 0xf4 does nothing. */
	assert_int_equal(status_for_write(0x05, 1, DEBUG_EXIT_PORT + 1), -1);
	assert_int_equal(status_for_write(0x05, 2, DEBUG_EXIT_PORT + 2), -1);
}

static void first_request_wins_and_reads(void **state)
{
	(void)state;
	struct vm *vm = devtest_vm_new();
	struct debug_exit *d = debug_exit_create(vm);
	assert_non_null(d);
	uint8_t data[4] = {0, 0, 0, 0};
	assert_true(bus_access(&vm->pio, DEBUG_EXIT_PORT, data, 4, false));
	assert_int_equal(data[0] & data[1] & data[2] & data[3], 0xff);
	assert_int_equal(atomic_load(&vm->exit_status), -1);
	devtest_out8(vm, DEBUG_EXIT_PORT, 0x21);
	devtest_out8(vm, DEBUG_EXIT_PORT, 0x05);
	assert_int_equal(atomic_load(&vm->exit_status), 0x43);
	debug_exit_destroy(d);
	devtest_vm_free(vm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(value_to_status),
	    cmocka_unit_test(wide_writes_use_low_byte),
	    cmocka_unit_test(first_request_wins_and_reads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
