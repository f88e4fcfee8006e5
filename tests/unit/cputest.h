/*
 * Helpers for the CPU model unit tests (test_cpu_model.c, test_mod_nested.c):
 * crafted CPUID tables, and real KVM vCPUs whose table is set through
 * cpuid_setup() and read back with KVM_GET_CPUID2: the table KVM holds.
 */
#ifndef VMM_TESTS_CPUTEST_H
#define VMM_TESTS_CPUTEST_H

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "boot/cpu_model.h"
#include "boot/cpuid.h"
#include "module.h"

#define CT_T(b) ((struct kvm_cpuid2 *)(b))

static inline struct kvm_cpuid_entry2 *ct_add(struct cpuid_buf *b, uint32_t fn, uint32_t idx,
					      uint32_t a, uint32_t bx, uint32_t c, uint32_t d)
{
	struct kvm_cpuid_entry2 *e = &b->entries[b->nent++];
	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	e->flags = (fn == 4 || fn == 7 || fn == 0xb || fn == 0xd || fn == 0x1f)
		       ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX
		       : 0;
	e->eax = a;
	e->ebx = bx;
	e->ecx = c;
	e->edx = d;
	return e;
}

static inline const struct kvm_cpuid_entry2 *ct_get(const struct cpuid_buf *b, uint32_t fn,
						    uint32_t idx)
{
	return cpuid_find(CT_T(b), fn, idx);
}

static inline bool ct_has(const struct cpuid_buf *b, const char *feature)
{
	const struct cpu_feature *f = cpu_feature_find(feature);
	return f && cpu_table_has(CT_T(b), f);
}

/* A VM with an in-kernel irqchip (for x2APIC and the TSC deadline timer),
 * or vm < 0 where /dev/kvm is unusable. */
struct ct_kvm {
	int kvm, vm;
};

static inline struct ct_kvm ct_kvm_open(void)
{
	struct ct_kvm k = {.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), .vm = -1};
	if (k.kvm >= 0)
		k.vm = ioctl(k.kvm, KVM_CREATE_VM, 0);
	if (k.vm >= 0 && ioctl(k.vm, KVM_CREATE_IRQCHIP, 0) < 0) {
		close(k.vm);
		k.vm = -1;
	}
	return k;
}

static inline void ct_kvm_close(struct ct_kvm *k)
{
	if (k->vm >= 0)
		close(k->vm);
	if (k->kvm >= 0)
		close(k->kvm);
}

/* KVM's supported table (malloc'd). */
static inline struct cpuid_buf *ct_supported(const struct ct_kvm *k)
{
	struct cpuid_buf *b = calloc(1, sizeof(*b));
	if (b && cpuid_get_supported(k->kvm, b) < 0) {
		free(b);
		return NULL;
	}
	return b;
}

/* A new vCPU `index` of `ncpus`, its CPUID set from `cfg` by cpuid_setup();
 * returns its fd (or -1, setup refused: cfg asks what this host lacks). */
static inline int ct_vcpu(const struct ct_kvm *k, const struct cpu_config *cfg, unsigned index,
			  unsigned ncpus)
{
	int fd = ioctl(k->vm, KVM_CREATE_VCPU, index);
	if (fd < 0)
		return -2;
	if (cpuid_setup(k->kvm, fd, cfg, index, ncpus) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The table KVM holds for the vCPU (malloc'd). */
static inline struct cpuid_buf *ct_held(int vcpu_fd)
{
	struct cpuid_buf *b = calloc(1, sizeof(*b));
	b->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vcpu_fd, KVM_GET_CPUID2, b) < 0) {
		free(b);
		return NULL;
	}
	return b;
}

/* The table KVM holds after KVM_SET_CPUID2 of KVM's own table with every
 * named feature set (on) or cleared (malloc'd; NULL on failure). */
static inline struct cpuid_buf *
ct_held_with_all(const struct ct_kvm *k, const struct cpuid_buf *sup, unsigned index, bool on)
{
	struct cpuid_buf *set = malloc(sizeof(*set)), *held = NULL;
	*set = *sup;
	for (size_t m = 0; m <= module_count(); m++) {
		const struct cpu_feature *f =
		    m < module_count() ? module_at(m)->cpu_features : cpu_core_features;
		for (; f && f->name; f++) {
			struct kvm_cpuid_entry2 *e =
			    (struct kvm_cpuid_entry2 *)cpuid_find(CT_T(set), f->leaf, f->subleaf);
			if (e)
				cpu_entry_set(e, f, on);
		}
	}
	int fd = ioctl(k->vm, KVM_CREATE_VCPU, index);
	if (fd >= 0 && ioctl(fd, KVM_SET_CPUID2, set) == 0)
		held = ct_held(fd);
	if (fd >= 0)
		close(fd);
	free(set);
	return held;
}

/*
 * Which named features does this KVM let the VMM decide? On a KVM backed
 * by hardware virtualization, all but what it recomputes from vCPU state
 * (the APIC bit). PVM, which cannot trap the guest's CPUID, holds the
 * CPU's own value for every feature the CPU runs natively, whatever the
 * VMM set: those bits say nothing about the model.
 */
struct ct_decides {
	struct cpuid_buf *low, *high; /* held after setting all clear / all set */
};

static inline bool ct_decides_probe(const struct ct_kvm *k, const struct cpuid_buf *sup,
				    struct ct_decides *d)
{
	d->low = ct_held_with_all(k, sup, 62, false);
	d->high = ct_held_with_all(k, sup, 63, true);
	return d->low && d->high;
}

static inline bool ct_decided(const struct ct_decides *d, const struct cpu_feature *f)
{
	return !cpu_table_has(CT_T(d->low), f) && cpu_table_has(CT_T(d->high), f);
}

/* The features cpuid_normalise() sets whatever KVM says. */
static inline bool ct_forced(const struct cpu_feature *f)
{
	return strcmp(f->name, "x2apic") == 0 || strcmp(f->name, "hypervisor") == 0;
}

/*
 * The cmocka fixture for the tests that read the table KVM holds: one VM,
 * KVM's supported table and the ct_decides probe, set up once per test.
 * A host without a usable /dev/kvm (or one the probe fails on) skips
 * those tests rather than failing them.
 */
struct ct_real {
	struct ct_kvm k;
	struct cpuid_buf *sup;
	struct ct_decides decides; /* the features this KVM lets the VMM set */
	bool probed;
};

static inline int ct_real_setup(void **state)
{
	static struct ct_real r;
	r.k = ct_kvm_open();
	r.sup = r.k.vm >= 0 ? ct_supported(&r.k) : NULL;
	r.probed = r.sup && ct_decides_probe(&r.k, r.sup, &r.decides);
	*state = &r;
	return 0;
}

static inline int ct_real_teardown(void **state)
{
	struct ct_real *r = *state;
	free(r->sup);
	free(r->decides.low);
	free(r->decides.high);
	ct_kvm_close(&r->k);
	return 0;
}

static inline struct ct_real *ct_real_or_skip(void **state)
{
	struct ct_real *r = *state;
	if (r->k.vm < 0 || !r->sup || !r->probed)
		skip();
	return r;
}

#endif
