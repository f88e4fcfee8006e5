/*
 * hw/i8042.c: reset requests exit 0, the commands Linux's probe uses,
 * absent-device replies, interrupt lines (through i8042_save()), and
 * garbage accesses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devtest.h"

#define DATA I8042_DATA_PORT
#define CMD I8042_CMD_PORT

#define STR_OBF 0x01
#define STR_IBF 0x02
#define STR_SYS 0x04
#define STR_CMD 0x08
#define STR_AUXDATA 0x20
#define STR_TIMEOUT 0x40

struct fx {
	struct vm *vm;
	struct i8042 *k;
};

static void fx_open(struct fx *f)
{
	f->vm = devtest_vm_new();
	f->k = i8042_create(f->vm);
	assert_non_null(f->k);
}

static void fx_close(struct fx *f)
{
	i8042_destroy(f->k);
	devtest_vm_free(f->vm);
}

static struct i8042_state state_of(struct fx *f)
{
	struct i8042_state st;
	i8042_save(f->k, &st);
	return st;
}

/* Send a command and read its one-byte reply the way a driver does. */
static uint8_t command(struct fx *f, uint8_t cmd)
{
	assert_int_equal(devtest_in8(f->vm, CMD) & STR_IBF, 0);
	devtest_out8(f->vm, CMD, cmd);
	assert_true(devtest_in8(f->vm, CMD) & STR_OBF);
	uint8_t v = devtest_in8(f->vm, DATA);
	assert_int_equal(devtest_in8(f->vm, CMD) & STR_OBF, 0);
	return v;
}

static void status_after_reset(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f);
	uint8_t st = devtest_in8(f.vm, CMD);
	assert_int_equal(st & (STR_OBF | STR_IBF), 0); /* nothing to read, ready */
	assert_true(st & STR_SYS);
	assert_int_equal(atomic_load(&f.vm->exit_status), -1);
	fx_close(&f);
}

static void reset_command_exits_ok(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f);
	devtest_out8(f.vm, CMD, 0xfe);
	assert_int_equal(atomic_load(&f.vm->exit_status), VMM_EXIT_OK);
	assert_true(devtest_exit_signalled(f.vm));
	fx_close(&f);

	/* Pulsing other output lines (bit 0 set) is not a reset. */
	fx_open(&f);
	for (unsigned c = 0xf1; c <= 0xff; c += 2)
		devtest_out8(f.vm, CMD, (uint8_t)c);
	assert_int_equal(atomic_load(&f.vm->exit_status), -1);
	fx_close(&f);

	/* Writing the output port with the reset line low resets too. */
	fx_open(&f);
	assert_int_equal(command(&f, 0xd0) & 0x01, 0x01);
	devtest_out8(f.vm, CMD, 0xd1);
	devtest_out8(f.vm, DATA, 0x03);
	assert_int_equal(atomic_load(&f.vm->exit_status), -1);
	devtest_out8(f.vm, CMD, 0xd1);
	devtest_out8(f.vm, DATA, 0x02);
	assert_int_equal(atomic_load(&f.vm->exit_status), VMM_EXIT_OK);
	fx_close(&f);
}

static void self_test_and_ctr(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f);
	assert_int_equal(command(&f, 0xaa), 0x55);
	assert_int_equal(command(&f, 0xab), 0x00); /* keyboard interface test */
	assert_int_equal(command(&f, 0xa9), 0x00); /* aux interface test */
	uint8_t ctr = command(&f, 0x20);
	assert_true(ctr & 0x04); /* system flag */
	/* Write and read back the configuration byte. */
	devtest_out8(f.vm, CMD, 0x60);
	assert_true(devtest_in8(f.vm, CMD) & STR_CMD);
	devtest_out8(f.vm, DATA, 0x47);
	assert_int_equal(devtest_in8(f.vm, CMD) & STR_CMD, 0);
	assert_int_equal(command(&f, 0x20), 0x47);
	/* Disable/enable keyboard and aux ports flip CTR bits 4 and 5. */
	devtest_out8(f.vm, CMD, 0xad);
	devtest_out8(f.vm, CMD, 0xa7);
	assert_int_equal(command(&f, 0x20), 0x47 | 0x30);
	devtest_out8(f.vm, CMD, 0xae);
	devtest_out8(f.vm, CMD, 0xa8);
	assert_int_equal(command(&f, 0x20), 0x47);
	/* None of this produced an interrupt: replies are polled. */
	struct i8042_state st = state_of(&f);
	assert_int_equal(st.irq1_level, 0);
	assert_int_equal(st.irq12_level, 0);
	assert_int_equal(atomic_load(&f.vm->exit_status), -1);
	fx_close(&f);
}

static void linux_probe_sequence(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f);
	/* i8042_flush: read while OBF, bounded. */
	int flushed = 0;
	while ((devtest_in8(f.vm, CMD) & STR_OBF) && flushed < 32) {
		devtest_in8(f.vm, DATA);
		flushed++;
	}
	assert_true(flushed < 32);
	/* Read CTR until two reads agree. */
	uint8_t a = command(&f, 0x20), b = command(&f, 0x20);
	assert_int_equal(a, b);
	/* Disable the ports and their interrupts, write it back. */
	devtest_out8(f.vm, CMD, 0x60);
	devtest_out8(f.vm, DATA, (a | 0x30) & ~0x03);
	assert_int_equal(command(&f, 0xaa), 0x55);
	/* Aux loopback: echoed with the aux bit set. */
	devtest_out8(f.vm, CMD, 0xd3);
	devtest_out8(f.vm, DATA, 0x5a);
	uint8_t st = devtest_in8(f.vm, CMD);
	assert_true(st & STR_OBF);
	assert_true(st & STR_AUXDATA);
	assert_int_equal(devtest_in8(f.vm, DATA), 0x5a);
	assert_int_equal(devtest_in8(f.vm, CMD) & (STR_OBF | STR_AUXDATA), 0);
	fx_close(&f);
}

static void absent_devices_and_irqs(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f);
	/* Keyboard interrupt on, aux interrupt on. */
	devtest_out8(f.vm, CMD, 0x60);
	devtest_out8(f.vm, DATA, 0x47);
	/* A byte for the keyboard: it is not there, 0xFE with timeout. */
	devtest_out8(f.vm, DATA, 0xff);
	uint8_t st = devtest_in8(f.vm, CMD);
	assert_int_equal(st & (STR_OBF | STR_TIMEOUT | STR_AUXDATA), STR_OBF | STR_TIMEOUT);
	assert_int_equal(state_of(&f).irq1_level, 1);
	assert_int_equal(devtest_in8(f.vm, DATA), 0xfe);
	assert_int_equal(state_of(&f).irq1_level, 0);
	assert_int_equal(devtest_in8(f.vm, CMD) & (STR_OBF | STR_TIMEOUT), 0);
	/* A byte for the mouse: same, on the aux side, IRQ 12. */
	devtest_out8(f.vm, CMD, 0xd4);
	devtest_out8(f.vm, DATA, 0xf2);
	st = devtest_in8(f.vm, CMD);
	assert_int_equal(st & (STR_OBF | STR_TIMEOUT | STR_AUXDATA),
			 STR_OBF | STR_TIMEOUT | STR_AUXDATA);
	assert_int_equal(state_of(&f).irq12_level, 1);
	assert_int_equal(state_of(&f).irq1_level, 0);
	assert_int_equal(devtest_in8(f.vm, DATA), 0xfe);
	assert_int_equal(state_of(&f).irq12_level, 0);
	/* Keyboard output-buffer write (0xd2) interrupts on IRQ 1. */
	devtest_out8(f.vm, CMD, 0xd2);
	devtest_out8(f.vm, DATA, 0x1c);
	assert_int_equal(state_of(&f).irq1_level, 1);
	/* Masking the interrupt in CTR drops the line. */
	devtest_out8(f.vm, CMD, 0x60);
	devtest_out8(f.vm, DATA, 0x44);
	assert_int_equal(state_of(&f).irq1_level, 0);
	assert_int_equal(devtest_in8(f.vm, DATA), 0x1c);
	/* With OBF clear, the data port repeats the last byte. */
	assert_int_equal(devtest_in8(f.vm, DATA), 0x1c);
	fx_close(&f);
}

/* Read n scancodes the way Linux's interrupt handler does: status, then
 * data, each with IRQ 1 raised and dropped by the read. */
static void expect_keys(struct fx *f, const uint8_t *codes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t st = devtest_in8(f->vm, CMD);
		assert_int_equal(st & (STR_OBF | STR_AUXDATA | STR_TIMEOUT), STR_OBF);
		assert_int_equal(state_of(f).irq1_level, 1);
		assert_int_equal(devtest_in8(f->vm, DATA), codes[i]);
	}
	assert_int_equal(devtest_in8(f->vm, CMD) & STR_OBF, 0);
	assert_int_equal(state_of(f).irq1_level, 0);
}

static void ctrl_alt_del(void **state)
{
	(void)state;
	static const uint8_t set1[] = { 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d };
	static const uint8_t set2[] = { 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
					0x71, 0xf0, 0x11, 0xf0, 0x14 };
	struct fx f;
	fx_open(&f);
	/* Translation on (the firmware default): scancode set 1. */
	assert_true(i8042_send_ctrl_alt_del(f.k));
	assert_false(i8042_send_ctrl_alt_del(f.k)); /* one sequence at a time */
	expect_keys(&f, set1, sizeof(set1));
	assert_true(i8042_send_ctrl_alt_del(f.k));
	expect_keys(&f, set1, sizeof(set1));
	/* Translation off: set 2. */
	devtest_out8(f.vm, CMD, 0x60);
	devtest_out8(f.vm, DATA, 0x05);
	assert_true(i8042_send_ctrl_alt_del(f.k));
	expect_keys(&f, set2, sizeof(set2));
	/* A disabled keyboard interface holds the keys back. */
	devtest_out8(f.vm, CMD, 0xad);
	assert_true(i8042_send_ctrl_alt_del(f.k));
	assert_int_equal(devtest_in8(f.vm, CMD) & STR_OBF, 0);
	devtest_out8(f.vm, CMD, 0xae);
	expect_keys(&f, set2, sizeof(set2));
	/* Nothing here resets the VM: the guest decides. */
	assert_int_equal(atomic_load(&f.vm->exit_status), -1);
	fx_close(&f);
}

static void save_restore(void **state)
{
	(void)state;
	struct fx a, b;
	fx_open(&a);
	devtest_out8(a.vm, CMD, 0x60);
	devtest_out8(a.vm, DATA, 0x47);
	devtest_out8(a.vm, CMD, 0xd2);
	devtest_out8(a.vm, DATA, 0x99);
	struct i8042_state st = state_of(&a);
	assert_int_equal(st.irq1_level, 1);
	fx_open(&b);
	i8042_restore(b.k, &st);
	struct i8042_state st2 = state_of(&b);
	assert_memory_equal(&st, &st2, sizeof(st));
	assert_int_equal(devtest_in8(b.vm, DATA), 0x99);
	assert_int_equal(command(&b, 0x20), 0x47);
	fx_close(&a);
	fx_close(&b);
}

static void garbage_accesses(void **state)
{
	(void)state;
	struct fx f;
	fx_open(&f);
	uint8_t data[8];
	/* Every value to both ports, including every pending-command state,
	 * except the reset pulses that end the VM (checked above). */
	for (unsigned c = 0; c < 256; c++) {
		for (unsigned v = 0; v < 256; v += 5) {
			if (c >= 0xf0 && !(c & 1))
				continue;
			data[0] = (uint8_t)c;
			bus_access(&f.vm->pio, CMD, data, 1, true);
			data[0] = (uint8_t)(v | 1); /* keep the output port's reset line high */
			bus_access(&f.vm->pio, DATA, data, 1, true);
			bus_access(&f.vm->pio, DATA, data, 1, false);
			bus_access(&f.vm->pio, CMD, data, 1, false);
		}
	}
	assert_int_equal(atomic_load(&f.vm->exit_status), -1);
	/* Wider accesses do not fit the 1-byte ports: refused by the bus. */
	for (unsigned len = 2; len <= 8; len++) {
		assert_false(bus_access(&f.vm->pio, DATA, data, len, true));
		assert_false(bus_access(&f.vm->pio, CMD, data, len, false));
	}
	assert_int_equal(command(&f, 0xaa), 0x55);
	fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(status_after_reset),      cmocka_unit_test(reset_command_exits_ok),
	    cmocka_unit_test(self_test_and_ctr),       cmocka_unit_test(linux_probe_sequence),
	    cmocka_unit_test(absent_devices_and_irqs), cmocka_unit_test(save_restore),
	    cmocka_unit_test(garbage_accesses),        cmocka_unit_test(ctrl_alt_del),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
