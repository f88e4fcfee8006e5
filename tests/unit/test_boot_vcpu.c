/*
 * Per-vCPU set-up: LAPIC LINT programming and the boot MSR list (pure), then
 * boot_setup_vcpu() against real KVM when /dev/kvm is usable (skipped if not).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "boot/boot.h"
#include "boot/cpuid.h"
#include "boot/lapic.h"
#include "boot/layout.h"
#include "boot/msr.h"
#include "boot/x86_cpu.h"

static void test_lapic_lints(void **state)
{
	(void)state;
	struct kvm_lapic_state s;
	memset(&s, 0, sizeof(s));
	lapic_set_reg(&s, APIC_REG_LVT_LINT0, 0x10000 | 0x400 | 0x30); /* masked, NMI, vector */
	lapic_set_reg(&s, APIC_REG_LVT_LINT1, 0x10000 | 0x700);
	lapic_set_reg(&s, 0x340, 0xdeadbeef); /* a neighbour stays as it was */
	lapic_set_lints(&s);
	assert_int_equal(lapic_get_reg(&s, APIC_REG_LVT_LINT0), 0x10000 | APIC_DM_EXTINT | 0x30);
	assert_int_equal(lapic_get_reg(&s, APIC_REG_LVT_LINT1), 0x10000 | APIC_DM_NMI);
	assert_int_equal(lapic_get_reg(&s, 0x340), 0xdeadbeef);
	assert_int_equal(lapic_get_reg(&s, 0x370), 0);
}

static const struct kvm_msr_entry *find_msr(const struct kvm_msr_entry *e, unsigned n,
					    uint32_t index)
{
	for (unsigned i = 0; i < n; i++)
		if (e[i].index == index)
			return &e[i];
	return NULL;
}

static void test_msr_list_all_supported(void **state)
{
	(void)state;
	const uint32_t sup[] = {0x10,	    0x174,	0x175,	    0x176,
				0x1a0,	    0x2ff,	0xc0000081, 0xc0000082,
				0xc0000083, 0xc0000084, 0xc0000102, 0x4b564d01};
	struct kvm_msr_entry e[MSR_BOOT_MAX];
	unsigned n = msr_boot_entries(sup, sizeof(sup) / sizeof(sup[0]), 0x1800, e, MSR_BOOT_MAX);
	assert_int_equal(n, 11);
	assert_int_equal(find_msr(e, n, MSR_IA32_MISC_ENABLE)->data, 0x1801);
	assert_int_equal(find_msr(e, n, MSR_MTRR_DEF_TYPE)->data, 0x806);
	assert_int_equal(find_msr(e, n, MSR_IA32_TSC)->data, 0);
	assert_int_equal(find_msr(e, n, MSR_LSTAR)->data, 0);
	assert_int_equal(find_msr(e, n, MSR_KERNEL_GS_BASE)->data, 0);
	assert_null(find_msr(e, n, 0x4b564d01));
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(e[i].reserved, 0);
}

static void test_msr_list_skips_unlisted(void **state)
{
	(void)state;
	const uint32_t sup[] = {0x174, 0xc0000082, 0x1a0};
	struct kvm_msr_entry e[MSR_BOOT_MAX];
	unsigned n = msr_boot_entries(sup, 3, 0, e, MSR_BOOT_MAX);
	assert_int_equal(n, 3);
	assert_null(find_msr(e, n, MSR_MTRR_DEF_TYPE));
	assert_null(find_msr(e, n, MSR_IA32_TSC));
	assert_int_equal(find_msr(e, n, MSR_IA32_MISC_ENABLE)->data, 1);
	assert_int_equal(msr_boot_entries(sup, 0, 0, e, MSR_BOOT_MAX), 0);
	assert_int_equal(msr_boot_entries(sup, 3, 0, e, 2), 2); /* capacity respected */
}

/* ---- against KVM ---- */

struct kvm_ctx {
	int kvm, vm;
	struct vm *v;
};

static int kvm_setup(void **state)
{
	static struct kvm_ctx c;
	static struct vm v;
	static struct vm_config cfg = {.cpus = 2};
	c.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	c.vm = c.kvm >= 0 ? ioctl(c.kvm, KVM_CREATE_VM, 0) : -1;
	if (c.vm >= 0 && (ioctl(c.vm, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0 ||
			  ioctl(c.vm, KVM_CREATE_IRQCHIP, 0) < 0)) {
		close(c.vm);
		c.vm = -1;
	}
	memset(&v, 0, sizeof(v));
	v.kvm_fd = c.kvm;
	v.vm_fd = c.vm;
	v.cfg = &cfg;
	v.ncpus = 2;
	c.v = &v;
	*state = &c;
	return 0;
}

static int kvm_teardown(void **state)
{
	struct kvm_ctx *c = *state;
	if (c->vm >= 0)
		close(c->vm);
	if (c->kvm >= 0)
		close(c->kvm);
	return 0;
}

static int make_vcpu(struct kvm_ctx *c, unsigned index)
{
	if (c->vm < 0)
		skip();
	int fd = ioctl(c->vm, KVM_CREATE_VCPU, index);
	assert_true(fd >= 0);
	c->v->vcpus[index].vm = c->v;
	c->v->vcpus[index].index = index;
	c->v->vcpus[index].fd = fd;
	return fd;
}

static void check_cpuid(int fd, unsigned apic)
{
	struct cpuid_buf *b = calloc(1, sizeof(*b));
	b->nent = CPUID_MAX_ENTRIES;
	assert_int_equal(ioctl(fd, KVM_GET_CPUID2, b), 0);
	const struct kvm_cpuid2 *c = (const struct kvm_cpuid2 *)b;
	const struct kvm_cpuid_entry2 *l1 = cpuid_find(c, 1, 0);
	assert_non_null(l1);
	assert_int_equal(l1->ebx >> 24, apic);
	assert_true(l1->ecx & CPUID_1_ECX_HYPERVISOR);
	const struct kvm_cpuid_entry2 *sig = cpuid_find(c, 0x40000000, 0);
	assert_non_null(sig);
	assert_int_equal(sig->ebx, CPUID_SIG_KVM_EBX);
	const struct kvm_cpuid_entry2 *t = cpuid_find(c, 0xb, 1);
	if (t)
		assert_int_equal(t->edx, apic);
	free(b);
}

static void check_msrs(int fd)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[2];
	} m;
	memset(&m, 0, sizeof(m));
	m.h.nmsrs = 2;
	m.e[0].index = MSR_IA32_MISC_ENABLE;
	m.e[1].index = MSR_LSTAR;
	assert_int_equal(ioctl(fd, KVM_GET_MSRS, &m), 2);
	assert_true(m.e[0].data & MISC_ENABLE_FAST_STRING);
	assert_int_equal(m.e[1].data, 0);
}

static void check_lapic(int fd)
{
	struct kvm_lapic_state s;
	assert_int_equal(ioctl(fd, KVM_GET_LAPIC, &s), 0);
	assert_int_equal(lapic_get_reg(&s, APIC_REG_LVT_LINT0) & APIC_LVT_DELIVERY_MASK,
			 APIC_DM_EXTINT);
	assert_int_equal(lapic_get_reg(&s, APIC_REG_LVT_LINT1) & APIC_LVT_DELIVERY_MASK,
			 APIC_DM_NMI);
}

static void test_kvm_bsp_linux64(void **state)
{
	struct kvm_ctx *c = *state;
	int fd = make_vcpu(c, 0);
	struct boot_setup bs = {
	    .protocol = BOOT_LINUX64,
	    .format = "ELF vmlinux",
	    .entry = 0x1000000,
	    .info_gpa = BOOT_ZEROPAGE_ADDR,
	};
	assert_int_equal(boot_setup_vcpu(c->v, &c->v->vcpus[0], &bs), 0);
	check_cpuid(fd, 0);
	check_msrs(fd);
	check_lapic(fd);
	struct kvm_regs r;
	struct kvm_sregs s;
	assert_int_equal(ioctl(fd, KVM_GET_REGS, &r), 0);
	assert_int_equal(ioctl(fd, KVM_GET_SREGS, &s), 0);
	assert_int_equal(r.rip, 0x1000000);
	assert_int_equal(r.rsi, BOOT_ZEROPAGE_ADDR);
	assert_int_equal(s.cs.selector, 0x10);
	assert_int_equal(s.cs.l, 1);
	assert_true(s.efer & X86_EFER_LMA);
	assert_int_equal(s.cr3, BOOT_PML4_ADDR);
	struct kvm_fpu f;
	assert_int_equal(ioctl(fd, KVM_GET_FPU, &f), 0);
	assert_int_equal(f.fcw, 0x37f);
	/* KVM_GET_FPU does not report MXCSR; the XSAVE legacy area does. */
	if (ioctl(c->kvm, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0) {
		struct kvm_xsave x;
		uint32_t mxcsr;
		assert_int_equal(ioctl(fd, KVM_GET_XSAVE, &x), 0);
		memcpy(&mxcsr, (const uint8_t *)x.region + 24, sizeof(mxcsr));
		assert_int_equal(mxcsr, 0x1f80);
	}
}

static void test_kvm_ap_untouched(void **state)
{
	struct kvm_ctx *c = *state;
	int fd = make_vcpu(c, 1);
	struct kvm_regs before, after;
	struct boot_setup bs = {.protocol = BOOT_PVH, .entry = 0x100000, .info_gpa = 0x6000};
	assert_int_equal(ioctl(fd, KVM_GET_REGS, &before), 0);
	assert_int_equal(boot_setup_vcpu(c->v, &c->v->vcpus[1], &bs), 0);
	check_cpuid(fd, 1);
	check_msrs(fd);
	check_lapic(fd);
	assert_int_equal(ioctl(fd, KVM_GET_REGS, &after), 0);
	assert_memory_equal(&before, &after, sizeof(before));
	struct kvm_mp_state mp;
	assert_int_equal(ioctl(fd, KVM_GET_MP_STATE, &mp), 0);
	assert_int_equal(mp.mp_state, KVM_MP_STATE_UNINITIALIZED); /* waits for SIPI */
}

static void test_kvm_pvh_regs(void **state)
{
	struct kvm_ctx *c = *state;
	if (c->vm < 0)
		skip();
	/* a fresh VM so vCPU 0 can be created again */
	int vm = ioctl(c->kvm, KVM_CREATE_VM, 0);
	assert_true(vm >= 0);
	assert_int_equal(ioctl(vm, KVM_CREATE_IRQCHIP, 0), 0);
	int fd = ioctl(vm, KVM_CREATE_VCPU, 0);
	assert_true(fd >= 0);
	struct boot_setup bs = {.protocol = BOOT_PVH, .entry = 0x100040, .info_gpa = 0x6000};
	assert_int_equal(x86_setup_regs(fd, &bs), 0);
	struct kvm_regs r;
	struct kvm_sregs s;
	assert_int_equal(ioctl(fd, KVM_GET_REGS, &r), 0);
	assert_int_equal(ioctl(fd, KVM_GET_SREGS, &s), 0);
	assert_int_equal(r.rip, 0x100040);
	assert_int_equal(r.rbx, 0x6000);
	assert_int_equal(s.cr0 & (X86_CR0_PE | X86_CR0_PG), X86_CR0_PE);
	assert_int_equal(s.efer & X86_EFER_LMA, 0);
	assert_int_equal(s.cs.db, 1);
	close(fd);
	close(vm);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
	    cmocka_unit_test(test_lapic_lints),
	    cmocka_unit_test(test_msr_list_all_supported),
	    cmocka_unit_test(test_msr_list_skips_unlisted),
	};
	const struct CMUnitTest kvm[] = {
	    cmocka_unit_test(test_kvm_bsp_linux64),
	    cmocka_unit_test(test_kvm_ap_untouched),
	    cmocka_unit_test(test_kvm_pvh_regs),
	};
	int rc = cmocka_run_group_tests(pure, NULL, NULL);
	return rc | cmocka_run_group_tests(kvm, kvm_setup, kvm_teardown);
}
