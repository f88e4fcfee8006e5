/* MP tables (boot/mptable.c): checksums, entries, placement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "boot/checksum.h"

#include "boot/layout.h"
#include "boot/mptable.h"
#include "mem.h"

static struct mptable t;

static uint8_t sum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t s = 0;
	for (size_t i = 0; i < len; i++)
		s += b[i];
	return s;
}

/* Walk the entries; count per type and check each entry's contents. */
struct counts {
	unsigned cpu, bus, ioapic, ioint, lint;
	unsigned bsp;
	unsigned irq_seen; /* bitmap of ISA IRQs */
};

static void walk(const struct mptable *mt, unsigned ncpus, struct counts *c)
{
	size_t off = sizeof(struct mpc_table);
	memset(c, 0, sizeof(*c));
	while (off < mt->mpc_len) {
		const uint8_t *e = mt->mpc + off;
		switch (e[0]) {
		case MP_ENTRY_PROCESSOR: {
			struct mpc_cpu cpu;
			memcpy(&cpu, e, sizeof(cpu));
			assert_int_equal(cpu.apicid, c->cpu);
			assert_true(cpu.cpuflag & MP_CPU_ENABLED);
			if (cpu.cpuflag & MP_CPU_BSP) {
				assert_int_equal(cpu.apicid, 0);
				c->bsp++;
			}
			c->cpu++;
			off += sizeof(cpu);
			break;
		}
		case MP_ENTRY_BUS:
			assert_memory_equal(e + 2, "ISA   ", 6);
			c->bus++;
			off += sizeof(struct mpc_bus);
			break;
		case MP_ENTRY_IOAPIC: {
			struct mpc_ioapic io;
			memcpy(&io, e, sizeof(io));
			assert_int_equal(io.apicid, ncpus);
			assert_int_equal(io.apicver, 0x11);
			assert_int_equal(io.apicaddr, 0xFEC00000u);
			assert_int_equal(io.flags & 1, 1);
			c->ioapic++;
			off += sizeof(io);
			break;
		}
		case MP_ENTRY_IOINT: {
			struct mpc_intsrc s;
			memcpy(&s, e, sizeof(s));
			assert_int_equal(s.irqtype, MP_INT_TYPE_INT);
			assert_int_equal(s.dstapic, ncpus);
			assert_true(s.srcbusirq < 16);
			assert_int_equal(s.dstirq,
					 s.srcbusirq == 0 ? MPTABLE_IRQ0_PIN : s.srcbusirq);
			assert_false(c->irq_seen & (1u << s.srcbusirq));
			c->irq_seen |= 1u << s.srcbusirq;
			c->ioint++;
			off += sizeof(s);
			break;
		}
		case MP_ENTRY_LOCALINT: {
			struct mpc_intsrc s;
			memcpy(&s, e, sizeof(s));
			assert_int_equal(s.dstapic, 0xff);
			if (s.dstirq == 0)
				assert_int_equal(s.irqtype, MP_INT_TYPE_EXTINT);
			else
				assert_int_equal(s.irqtype, MP_INT_TYPE_NMI);
			c->lint++;
			off += sizeof(s);
			break;
		}
		default:
			fail_msg("unknown entry type %u at %zu", e[0], off);
		}
	}
	assert_int_equal(off, mt->mpc_len);
}

static void check_table(unsigned ncpus)
{
	struct counts c;
	assert_int_equal(mptable_build(&t, ncpus, 0xf0000), 0);
	/* floating pointer */
	assert_memory_equal(t.mpf.signature, "_MP_", 4);
	assert_int_equal(t.mpf.length, 1);
	assert_int_equal(t.mpf.specification, 4);
	assert_int_equal(t.mpf.physptr, 0xf0000);
	assert_int_equal(sum(&t.mpf, sizeof(t.mpf)), 0);
	assert_int_equal(t.mpf.feature[0], 0);
	/* config table */
	struct mpc_table h;
	memcpy(&h, t.mpc, sizeof(h));
	assert_memory_equal(h.signature, "PCMP", 4);
	assert_int_equal(h.length, t.mpc_len);
	assert_int_equal(h.spec, 4);
	assert_int_equal(h.lapic, 0xFEE00000u);
	assert_int_equal(sum(t.mpc, t.mpc_len), 0);
	unsigned irqs = MPTABLE_IRQ0_PIN == 2 ? 15 : 16;
	assert_int_equal(h.oemcount, ncpus + 2 + irqs + 2);
	assert_int_equal(t.entries, h.oemcount);
	assert_int_equal(t.mpc_len, 44 + 20 * ncpus + 8 * (2 + irqs + 2));
	walk(&t, ncpus, &c);
	assert_int_equal(c.cpu, ncpus);
	assert_int_equal(c.bsp, 1);
	assert_int_equal(c.bus, 1);
	assert_int_equal(c.ioapic, 1);
	assert_int_equal(c.ioint, irqs);
	assert_int_equal(c.lint, 2);
}

static void test_1cpu(void **state)
{
	(void)state;
	check_table(1);
}

static void test_64cpus(void **state)
{
	(void)state;
	check_table(64);
}

static void test_all_counts(void **state)
{
	(void)state;
	for (unsigned n = 1; n <= MPTABLE_MAX_CPUS; n++)
		check_table(n);
}

static void test_bad_ncpus(void **state)
{
	(void)state;
	assert_int_equal(mptable_build(&t, 0, 0xf0000), -1);
	assert_int_equal(mptable_build(&t, MPTABLE_MAX_CPUS + 1, 0xf0000), -1);
}

static void test_checksum_helper(void **state)
{
	(void)state;
	uint8_t b[5] = {1, 2, 3, 0, 250};
	b[3] = boot_checksum8(b, sizeof(b));
	assert_int_equal(sum(b, sizeof(b)), 0);
}

static void test_written_to_guest(void **state)
{
	(void)state;
	struct guest_mem m;
	assert_int_equal(guest_mem_init(&m, 16 * MIB, 0), 0);
	assert_int_equal(mptable_write(&m, 8), 0);
	/* The guest finds the pointer by scanning the last KiB of base memory
	 * on 16-byte boundaries. */
	const uint8_t *mpf = guest_ptr(&m, BOOT_MPF_ADDR, 16);
	assert_int_equal(BOOT_MPF_ADDR % 16, 0);
	assert_true(BOOT_MPF_ADDR >= 639 * 1024 && BOOT_MPF_ADDR < 640 * 1024);
	assert_memory_equal(mpf, "_MP_", 4);
	assert_int_equal(sum(mpf, 16), 0);
	uint32_t ptr;
	memcpy(&ptr, mpf + 4, 4);
	assert_int_equal(ptr, BOOT_MPC_ADDR);
	const uint8_t *mpc = guest_ptr(&m, ptr, 44);
	assert_memory_equal(mpc, "PCMP", 4);
	uint16_t len;
	memcpy(&len, mpc + 4, 2);
	assert_int_equal(sum(guest_ptr(&m, ptr, len), len), 0);
	assert_true(ptr + len <= 0x100000);
	guest_mem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_1cpu),
	    cmocka_unit_test(test_64cpus),
	    cmocka_unit_test(test_all_counts),
	    cmocka_unit_test(test_bad_ncpus),
	    cmocka_unit_test(test_checksum_helper),
	    cmocka_unit_test(test_written_to_guest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
