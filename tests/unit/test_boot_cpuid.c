/* CPUID normalisation (boot/cpuid.c) over crafted supported tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "boot/cpuid.h"

static struct cpuid_buf sup, out;

#define SUP ((struct kvm_cpuid2 *)&sup)
#define OUT ((struct kvm_cpuid2 *)&out)

static void add(uint32_t fn, uint32_t idx, bool sig, uint32_t a, uint32_t b, uint32_t c, uint32_t d)
{
	struct kvm_cpuid_entry2 *e = &sup.entries[sup.nent++];
	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	e->flags = sig ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
	e->eax = a;
	e->ebx = b;
	e->ecx = c;
	e->edx = d;
}

/* An Intel-like host: max basic leaf 0x1F. */
static void build_intel(bool with_1f)
{
	memset(&sup, 0, sizeof(sup));
	add(0, 0, false, with_1f ? 0x1f : 0xd, 0x756e6547, 0x6c65746e, 0x49656e69);
	add(1, 0, false, 0x906ea, 0x12340800 | (7 << 16), 0x7ffafbff, 0xbfebfbff & ~(1u << 28));
	/* leaf 4: L1d, L1i, L2, L3, end */
	add(4, 0, true, 0x1c004121 | (7u << 26), 0x01c0003f, 0x3f, 0);
	add(4, 1, true, 0x1c004122, 0x01c0003f, 0x3f, 0);
	add(4, 2, true, 0x1c004143, 0x00c0003f, 0x3ff, 0);
	add(4, 3, true, 0x1c03c163, 0x03c0003f, 0x3fff, 6);
	add(4, 4, true, 0, 0, 0, 0);
	add(0xa, 0, false, 0x07300404, 0, 0, 0x603);
	add(0xb, 0, true, 1, 2, 0x100, 9);
	add(0xb, 1, true, 4, 8, 0x201, 9);
	if (with_1f)
		add(0x1f, 0, true, 1, 2, 0x100, 9);
	add(0x40000000, 0, false, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d);
	add(0x40000001, 0, false, 0x01ffffff, 0, 0, 0);
	add(0x80000000, 0, false, 0x80000008, 0, 0, 0);
	add(0x80000008, 0, false, 0x3027, 0, 0, 0);
}

static const struct kvm_cpuid_entry2 *get(uint32_t fn, uint32_t idx)
{
	const struct kvm_cpuid_entry2 *e = cpuid_find(OUT, fn, idx);
	assert_non_null(e);
	return e;
}

static unsigned count(uint32_t fn)
{
	unsigned n = 0;
	for (uint32_t i = 0; i < out.nent; i++)
		n += out.entries[i].function == fn;
	return n;
}

static void no_duplicates(void)
{
	for (uint32_t i = 0; i < out.nent; i++)
		for (uint32_t j = i + 1; j < out.nent; j++)
			assert_false(out.entries[i].function == out.entries[j].function &&
				     out.entries[i].index == out.entries[j].index);
}

static void check_topology_leaf(uint32_t leaf, unsigned apic, unsigned ncpus)
{
	unsigned shift = cpuid_core_shift(ncpus);
	const struct kvm_cpuid_entry2 *s0 = get(leaf, 0), *s1 = get(leaf, 1), *s2 = get(leaf, 2);
	assert_int_equal(count(leaf), 3);
	assert_true(s0->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	/* SMT level: one thread per core */
	assert_int_equal(s0->eax & 0x1f, 0);
	assert_int_equal(s0->ebx & 0xffff, 1);
	assert_int_equal(s0->ecx, 0x100);
	/* core level: ncpus */
	assert_int_equal(s1->eax & 0x1f, shift);
	assert_int_equal(s1->ebx & 0xffff, ncpus);
	assert_int_equal(s1->ecx, 0x201);
	/* end */
	assert_int_equal(s2->eax, 0);
	assert_int_equal(s2->ebx, 0);
	assert_int_equal(s2->ecx, 2);
	assert_int_equal(s0->edx, apic);
	assert_int_equal(s1->edx, apic);
	assert_int_equal(s2->edx, apic);
}

static void check_vcpu(unsigned apic, unsigned ncpus, bool with_1f)
{
	build_intel(with_1f);
	assert_int_equal(cpuid_normalise(SUP, OUT, CPUID_MAX_ENTRIES, apic, ncpus), 0);
	no_duplicates();
	const struct kvm_cpuid_entry2 *l1 = get(1, 0);
	assert_int_equal(l1->ebx >> 24, apic);
	assert_int_equal((l1->ebx >> 16) & 0xff, ncpus);
	assert_int_equal(l1->ebx & 0xffff, 0x0800); /* CLFLUSH size kept */
	assert_true(l1->ecx & CPUID_1_ECX_HYPERVISOR);
	assert_true(l1->ecx & CPUID_1_ECX_X2APIC);
	assert_int_equal(!!(l1->edx & CPUID_1_EDX_HTT), ncpus > 1);
	check_topology_leaf(0xb, apic, ncpus);
	if (with_1f)
		check_topology_leaf(0x1f, apic, ncpus);
	else
		assert_int_equal(count(0x1f), 0);
}

static void test_apic_ids_per_vcpu(void **state)
{
	(void)state;
	for (unsigned i = 0; i < 4; i++)
		check_vcpu(i, 4, true);
	for (unsigned i = 0; i < 64; i += 9)
		check_vcpu(i, 64, true);
	check_vcpu(0, 1, true);
	check_vcpu(2, 3, false);
}

static void test_core_shift(void **state)
{
	(void)state;
	assert_int_equal(cpuid_core_shift(1), 0);
	assert_int_equal(cpuid_core_shift(2), 1);
	assert_int_equal(cpuid_core_shift(3), 2);
	assert_int_equal(cpuid_core_shift(4), 2);
	assert_int_equal(cpuid_core_shift(5), 3);
	assert_int_equal(cpuid_core_shift(64), 6);
}

static void test_kvm_leaves(void **state)
{
	(void)state;
	build_intel(true);
	assert_int_equal(cpuid_normalise(SUP, OUT, CPUID_MAX_ENTRIES, 0, 2), 0);
	const struct kvm_cpuid_entry2 *sig = get(0x40000000, 0);
	char name[12];
	memcpy(name, &sig->ebx, 4);
	memcpy(name + 4, &sig->ecx, 4);
	memcpy(name + 8, &sig->edx, 4);
	assert_memory_equal(name, "KVMKVMKVM\0\0\0", 12);
	assert_int_equal(sig->eax, 0x40000001);
	assert_int_equal(count(0x40000000), 1);
	const struct kvm_cpuid_entry2 *f = get(0x40000001, 0);
	assert_int_equal(f->eax, 0x01ffffff & CPUID_KVM_FEATURES_ALLOWED);
	assert_true(f->eax & (1u << KVM_FEATURE_CLOCKSOURCE));
	assert_true(f->eax & (1u << KVM_FEATURE_CLOCKSOURCE2));
	assert_true(f->eax & (1u << KVM_FEATURE_CLOCKSOURCE_STABLE_BIT));
	assert_false(f->eax & (1u << KVM_FEATURE_MSI_EXT_DEST_ID));
	assert_false(f->eax & (1u << KVM_FEATURE_HC_MAP_GPA_RANGE));
	assert_int_equal(f->edx, 0);
	assert_int_equal(count(0x40000001), 1);
}

static void test_kvm_features_only_as_supported(void **state)
{
	(void)state;
	build_intel(true);
	sup.entries[sup.nent - 3].eax = 1u << KVM_FEATURE_CLOCKSOURCE2; /* 0x40000001 */
	assert_int_equal(sup.entries[sup.nent - 3].function, 0x40000001);
	assert_int_equal(cpuid_normalise(SUP, OUT, CPUID_MAX_ENTRIES, 0, 1), 0);
	assert_int_equal(get(0x40000001, 0)->eax, 1u << KVM_FEATURE_CLOCKSOURCE2);
}

static void test_no_pmu(void **state)
{
	(void)state;
	build_intel(true);
	assert_int_equal(cpuid_normalise(SUP, OUT, CPUID_MAX_ENTRIES, 0, 1), 0);
	const struct kvm_cpuid_entry2 *a = get(0xa, 0);
	assert_int_equal(a->eax | a->ebx | a->ecx | a->edx, 0);
}

static void test_leaf4(void **state)
{
	(void)state;
	build_intel(true);
	assert_int_equal(cpuid_normalise(SUP, OUT, CPUID_MAX_ENTRIES, 1, 6), 0);
	/* 6 cpus: 8 addressable core ids */
	for (unsigned i = 0; i < 4; i++) {
		const struct kvm_cpuid_entry2 *e = get(4, i);
		assert_int_equal(e->eax >> 26, 7);
		unsigned level = (e->eax >> 5) & 7;
		unsigned share = (e->eax >> 14) & 0xfff;
		assert_int_equal(share, level >= 3 ? 7 : 0);
		assert_int_equal(e->eax & 0x3fff, sup.entries[2 + i].eax & 0x3fff); /* rest kept */
	}
	assert_int_equal(get(4, 4)->eax, 0); /* terminator untouched */
	/* one cpu: no extra ids */
	build_intel(true);
	assert_int_equal(cpuid_normalise(SUP, OUT, CPUID_MAX_ENTRIES, 0, 1), 0);
	assert_int_equal(get(4, 0)->eax >> 14, 0);
}

static void test_untouched_leaves(void **state)
{
	(void)state;
	build_intel(true);
	assert_int_equal(cpuid_normalise(SUP, OUT, CPUID_MAX_ENTRIES, 3, 4), 0);
	assert_memory_equal(get(0, 0), &sup.entries[0], sizeof(struct kvm_cpuid_entry2));
	/* Intel: 0x80000008 ECX is reserved and left alone */
	assert_int_equal(get(0x80000008, 0)->ecx, 0);
}

static void test_old_host_no_topology(void **state)
{
	(void)state;
	build_intel(false);
	sup.entries[0].eax = 0xa; /* max basic leaf below 0xB */
	assert_int_equal(cpuid_normalise(SUP, OUT, CPUID_MAX_ENTRIES, 0, 2), 0);
	assert_int_equal(count(0xb), 0);
	assert_int_equal(count(0x1f), 0);
}

static void test_amd(void **state)
{
	(void)state;
	memset(&sup, 0, sizeof(sup));
	add(0, 0, false, 0x10, 0x68747541, 0x444d4163, 0x69746e65); /* AuthenticAMD */
	add(1, 0, false, 0xa00f11, 0x800, 0x7ef8320b, 0x178bfbff);
	add(0x80000008, 0, false, 0x3030, 0, 0x7007, 0);
	add(0x8000001e, 0, false, 5, 0x105, 0x300, 0);
	assert_int_equal(cpuid_normalise(SUP, OUT, CPUID_MAX_ENTRIES, 5, 6), 0);
	const struct kvm_cpuid_entry2 *s = get(0x80000008, 0);
	assert_int_equal(s->ecx & 0xff, 5);
	assert_int_equal((s->ecx >> 12) & 0xf, 3);
	const struct kvm_cpuid_entry2 *t = get(0x8000001e, 0);
	assert_int_equal(t->eax, 5);
	assert_int_equal(t->ebx, 5);
	assert_int_equal(t->ecx, 0);
	check_topology_leaf(0xb, 5, 6);
}

static void test_capacity(void **state)
{
	(void)state;
	build_intel(true);
	assert_int_equal(cpuid_normalise(SUP, OUT, 5, 0, 1), -1);
	assert_int_equal(cpuid_normalise(SUP, OUT, sup.nent, 0, 1), -1); /* 0xB grows */
}

static void test_find(void **state)
{
	(void)state;
	build_intel(true);
	assert_non_null(cpuid_find(SUP, 4, 3));
	assert_null(cpuid_find(SUP, 4, 9));
	assert_non_null(cpuid_find(SUP, 1, 42)); /* index not significant */
	assert_null(cpuid_find(SUP, 0x12345, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_apic_ids_per_vcpu),
	    cmocka_unit_test(test_core_shift),
	    cmocka_unit_test(test_kvm_leaves),
	    cmocka_unit_test(test_kvm_features_only_as_supported),
	    cmocka_unit_test(test_no_pmu),
	    cmocka_unit_test(test_leaf4),
	    cmocka_unit_test(test_untouched_leaves),
	    cmocka_unit_test(test_old_host_no_topology),
	    cmocka_unit_test(test_amd),
	    cmocka_unit_test(test_capacity),
	    cmocka_unit_test(test_find),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
