/* Boot GDT, identity page tables and entry registers (boot/x86_cpu.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "boot/layout.h"
#include "boot/x86_cpu.h"
#include "mem.h"

static void test_gdt_encoding(void **state)
{
	(void)state;
	uint64_t gdt[GDT_ENTRIES];
	x86_build_gdt(gdt);
	assert_int_equal(gdt[0], 0);
	assert_int_equal(gdt[GDT_SEL_CODE32 / 8], 0x00cf9b000000ffffULL);
	assert_int_equal(gdt[GDT_SEL_CODE64 / 8], 0x00af9b000000ffffULL);
	assert_int_equal(gdt[GDT_SEL_DATA / 8], 0x00cf93000000ffffULL);
	assert_int_equal(gdt[GDT_SEL_TSS / 8], 0x00008b0000000067ULL);
	assert_int_equal(gdt[GDT_SEL_TSS / 8 + 1], 0);
	/* boot.rst's selectors */
	assert_int_equal(GDT_SEL_CODE64, 0x10);
	assert_int_equal(GDT_SEL_DATA, 0x18);
	assert_int_equal(gdt_entry(0xc093, 0x12345678, 0xabcde), 0x12ca93345678bcdeULL);
}

static void test_segment_decode(void **state)
{
	(void)state;
	struct kvm_segment s = gdt_to_segment(0x00af9b000000ffffULL, 0x10);
	assert_int_equal(s.base, 0);
	assert_int_equal(s.limit, 0xffffffff);
	assert_int_equal(s.selector, 0x10);
	assert_int_equal(s.type, 0xb);
	assert_int_equal(s.present, 1);
	assert_int_equal(s.dpl, 0);
	assert_int_equal(s.s, 1);
	assert_int_equal(s.l, 1);
	assert_int_equal(s.db, 0);
	assert_int_equal(s.g, 1);
	assert_int_equal(s.unusable, 0);
	s = gdt_to_segment(0x00008b0000000067ULL, 0x20);
	assert_int_equal(s.limit, 0x67);
	assert_int_equal(s.type, 0xb);
	assert_int_equal(s.s, 0);
	assert_int_equal(s.g, 0);
	s = gdt_to_segment(0x12cf93345678ffffULL, 0x18);
	assert_int_equal(s.base, 0x12345678);
	assert_int_equal(s.db, 1);
	s = gdt_to_segment(0, 0);
	assert_int_equal(s.unusable, 1);
}

static void test_linux64_sregs(void **state)
{
	(void)state;
	struct kvm_sregs s;
	memset(&s, 0xff, sizeof(s));
	s.ldt.selector = 0x1234; /* left as KVM had it */
	x86_boot_sregs(&s, BOOT_LINUX64);
	assert_int_equal(s.cs.selector, 0x10);
	assert_int_equal(s.cs.l, 1);
	assert_int_equal(s.cs.db, 0);
	assert_int_equal(s.ds.selector, 0x18);
	assert_int_equal(s.es.selector, 0x18);
	assert_int_equal(s.ss.selector, 0x18);
	assert_int_equal(s.fs.selector, 0x18);
	assert_int_equal(s.gs.selector, 0x18);
	assert_int_equal(s.ss.type, 3);
	assert_int_equal(s.tr.selector, 0x20);
	assert_int_equal(s.tr.type, 11);
	assert_int_equal(s.gdt.base, BOOT_GDT_ADDR);
	assert_int_equal(s.gdt.limit, GDT_ENTRIES * 8 - 1);
	assert_int_equal(s.cr0, X86_CR0_PE | X86_CR0_ET | X86_CR0_PG);
	assert_int_equal(s.cr3, BOOT_PML4_ADDR);
	assert_int_equal(s.cr4, X86_CR4_PAE);
	assert_int_equal(s.efer, X86_EFER_LME | X86_EFER_LMA);
	assert_int_equal(s.ldt.selector, 0x1234);
}

static void test_pvh_sregs(void **state)
{
	(void)state;
	struct kvm_sregs s;
	memset(&s, 0xff, sizeof(s));
	x86_boot_sregs(&s, BOOT_PVH);
	assert_int_equal(s.cs.selector, GDT_SEL_CODE32);
	assert_int_equal(s.cs.base, 0);
	assert_int_equal(s.cs.limit, 0xffffffff);
	assert_int_equal(s.cs.db, 1);
	assert_int_equal(s.cs.l, 0);
	assert_int_equal(s.cs.type, 0xb);
	assert_int_equal(s.ds.limit, 0xffffffff);
	assert_int_equal(s.ds.db, 1);
	assert_int_equal(s.tr.base, 0);
	assert_int_equal(s.tr.limit, 0x67);
	assert_int_equal(s.cr0, X86_CR0_PE | X86_CR0_ET);
	assert_int_equal(s.cr4, 0);
	assert_int_equal(s.efer, 0);
}

static void test_regs(void **state)
{
	(void)state;
	struct kvm_regs r;
	struct boot_setup bs = {.protocol = BOOT_LINUX64, .entry = 0x1000200, .info_gpa = 0x7000};
	x86_boot_regs(&r, &bs);
	assert_int_equal(r.rip, 0x1000200);
	assert_int_equal(r.rsi, 0x7000);
	assert_int_equal(r.rbx, 0);
	assert_int_equal(r.rflags, 2);
	assert_int_equal(r.rsp, BOOT_STACK_TOP);
	bs.protocol = BOOT_PVH;
	bs.info_gpa = 0x6000;
	x86_boot_regs(&r, &bs);
	assert_int_equal(r.rbx, 0x6000);
	assert_int_equal(r.rsi, 0);
	assert_int_equal(r.rflags, 2);
}

static void test_fpu(void **state)
{
	(void)state;
	struct kvm_fpu f;
	memset(&f, 0xff, sizeof(f));
	x86_boot_fpu(&f);
	assert_int_equal(f.fcw, 0x37f);
	assert_int_equal(f.mxcsr, 0x1f80);
	assert_int_equal(f.fsw, 0);
}

/* Walk the identity map the way the MMU does for a 2 MiB page. */
static uint64_t translate(const struct guest_mem *m, uint64_t va)
{
	uint64_t pml4e, pdpte, pde;
	assert_true(guest_read(m, BOOT_PML4_ADDR + ((va >> 39) & 511) * 8, &pml4e, 8));
	if (!(pml4e & PTE_PRESENT))
		return UINT64_MAX;
	uint64_t pdpt = pml4e & 0x000ffffffffff000ULL;
	assert_true(guest_read(m, pdpt + ((va >> 30) & 511) * 8, &pdpte, 8));
	if (!(pdpte & PTE_PRESENT))
		return UINT64_MAX;
	uint64_t pd = pdpte & 0x000ffffffffff000ULL;
	assert_true(guest_read(m, pd + ((va >> 21) & 511) * 8, &pde, 8));
	if (!(pde & PTE_PRESENT) || !(pde & PTE_PS) || !(pde & PTE_RW))
		return UINT64_MAX;
	return (pde & 0x000fffffffe00000ULL) | (va & 0x1fffff);
}

static void test_page_tables(void **state)
{
	(void)state;
	struct guest_mem m;
	assert_int_equal(guest_mem_init(&m, 16 * MIB, 0), 0);
	memset(m.host + BOOT_PML4_ADDR, 0xee, 6 * 4096); /* stale data gets cleared */
	assert_int_equal(x86_write_page_tables(&m), 0);
	const uint64_t probes[] = {0,	       0x7000,	   0x100000,   0x1000200,  0x3fffffff,
				   0x40000000, 0xbfffffff, 0xfec00000, 0xfee00000, 0xffffffff};
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		assert_int_equal(translate(&m, probes[i]), probes[i]);
	assert_int_equal(translate(&m, 0x100000000ULL), UINT64_MAX); /* 4 GiB: unmapped */
	assert_int_equal(translate(&m, 0x8000000000ULL), UINT64_MAX);
	/* tables stay below 1 MiB, clear of the zero page and the GDT */
	assert_true(BOOT_PD_ADDR + BOOT_PD_PAGES * 4096 <= BOOT_CMDLINE_ADDR);
	guest_mem_destroy(&m);
}

static void test_gdt_written(void **state)
{
	(void)state;
	struct guest_mem m;
	uint64_t gdt[GDT_ENTRIES], want[GDT_ENTRIES];
	assert_int_equal(guest_mem_init(&m, 2 * MIB, 0), 0);
	assert_int_equal(x86_write_gdt(&m), 0);
	x86_build_gdt(want);
	assert_true(guest_read(&m, BOOT_GDT_ADDR, gdt, sizeof(gdt)));
	assert_memory_equal(gdt, want, sizeof(gdt));
	guest_mem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gdt_encoding),  cmocka_unit_test(test_segment_decode),
	    cmocka_unit_test(test_linux64_sregs), cmocka_unit_test(test_pvh_sregs),
	    cmocka_unit_test(test_regs),	  cmocka_unit_test(test_fpu),
	    cmocka_unit_test(test_page_tables),	  cmocka_unit_test(test_gdt_written),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
