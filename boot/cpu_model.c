/*
 * Applying a CPU model to one vCPU's CPUID table: the model's filter, then
 * each +/- feature, then the XSAVE state components made to agree with
 * the features shown.
 *
 * The baseline is meant to be the same on every host that supports it:
 * only its leaves stay (others read as zero), and in the registers that
 * hold feature flags only its named features stay. Vendor, family, model,
 * stepping, brand string, cache descriptors and address sizes are the
 * host's, as KVM reports them: they describe the machine, and guests
 * tune themselves to them rather than depend on them.
 */
#include "cpu_model.h"

#include <stdlib.h>
#include <string.h>

#include "../log.h"
#include "../module.h"
#include "cpuid.h"

#define VENDOR_INTEL_EBX 0x756e6547 /* "Genu" */
#define VENDOR_AMD_EBX 0x68747541   /* "Auth" */
#define VENDOR_HYGON_EBX 0x6f677948 /* "Hygo" */

#define LEAF_XSAVE 0xd
#define XSAVE_LEGACY_SIZE 576 /* the legacy area (512) and the XSAVE header (64) */

/* ---- register access ---- */

static uint32_t *reg_of(struct kvm_cpuid_entry2 *e, unsigned reg)
{
	switch (reg) {
	case CPU_REG_EAX:
		return &e->eax;
	case CPU_REG_EBX:
		return &e->ebx;
	case CPU_REG_ECX:
		return &e->ecx;
	default:
		return &e->edx;
	}
}

bool cpu_entry_has(const struct kvm_cpuid_entry2 *e, const struct cpu_feature *f)
{
	return (*reg_of((struct kvm_cpuid_entry2 *)e, f->reg) >> f->bit) & 1;
}

void cpu_entry_set(struct kvm_cpuid_entry2 *e, const struct cpu_feature *f, bool on)
{
	uint32_t *r = reg_of(e, f->reg);
	*r = on ? *r | (1u << f->bit) : *r & ~(1u << f->bit);
}

static struct kvm_cpuid_entry2 *find_mut(struct kvm_cpuid2 *t, uint32_t leaf, uint32_t subleaf)
{
	return (struct kvm_cpuid_entry2 *)cpuid_find(t, leaf, subleaf);
}

bool cpu_table_has(const struct kvm_cpuid2 *t, const struct cpu_feature *f)
{
	const struct kvm_cpuid_entry2 *e = cpuid_find(t, f->leaf, f->subleaf);
	return e && cpu_entry_has(e, f);
}

enum cpu_vendor cpu_vendor_of(const struct kvm_cpuid2 *t)
{
	const struct kvm_cpuid_entry2 *e = cpuid_find(t, 0, 0);
	if (e && e->ebx == VENDOR_INTEL_EBX)
		return CPU_VENDOR_INTEL;
	if (e && (e->ebx == VENDOR_AMD_EBX || e->ebx == VENDOR_HYGON_EBX))
		return CPU_VENDOR_AMD;
	return CPU_VENDOR_OTHER;
}

static const char *vendor_name(unsigned v)
{
	return v == CPU_VENDOR_INTEL ? "Intel" : v == CPU_VENDOR_AMD ? "AMD" : "another vendor";
}

/* Drop every entry for which drop() says so, keeping the order. */
static void drop_entries(struct kvm_cpuid2 *t,
			 bool (*drop)(const struct kvm_cpuid_entry2 *e, uint64_t arg), uint64_t arg)
{
	uint32_t kept = 0;
	for (uint32_t i = 0; i < t->nent; i++)
		if (!drop(&t->entries[i], arg))
			t->entries[kept++] = t->entries[i];
	t->nent = kept;
}

/* ---- the baseline ---- */

/* One leaf or register per line: these read as lists. */
/* clang-format off */

/* The leaves the baseline keeps. */
static const uint32_t baseline_leaves[] = {
	0x0, 0x1, 0x2, 0x4, 0x6, 0x7, 0xb, 0xd, 0x15, 0x16, 0x1f,
	0x40000000, 0x40000001,
	0x80000000, 0x80000001, 0x80000002, 0x80000003, 0x80000004, 0x80000005,
	0x80000006, 0x80000007, 0x80000008,
};

/* Registers whose every bit is a feature flag: there a model keeps only
 * its named features' bits, plus `fixed`: bits that are not features but
 * state, set by KVM (OSXSAVE, OSPKE: copies of CR4) or by cpuid_normalise
 * (HTT: more than one logical CPU). */
static const struct feature_reg {
	uint32_t leaf, subleaf;
	uint8_t reg;
	uint32_t fixed;
} feature_regs[] = {
	{0x1, 0, CPU_REG_ECX, 1u << 27},
	{0x1, 0, CPU_REG_EDX, CPUID_1_EDX_HTT},
	{0x6, 0, CPU_REG_EAX, 0},
	{0x7, 0, CPU_REG_EBX, 0},
	{0x7, 0, CPU_REG_ECX, 1u << 4},
	{0x7, 0, CPU_REG_EDX, 0},
	{0x7, 1, CPU_REG_EAX, 0},
	{0x7, 1, CPU_REG_EDX, 0},
	{0x7, 2, CPU_REG_EDX, 0},
	{0xd, 1, CPU_REG_EAX, 0},
	{0x80000001, 0, CPU_REG_ECX, 0},
	{0x80000001, 0, CPU_REG_EDX, 0},
	{0x80000007, 0, CPU_REG_EDX, 0},
	{0x80000008, 0, CPU_REG_EBX, 0},
};

/* clang-format on */

static bool not_in_baseline(const struct kvm_cpuid_entry2 *e, uint64_t arg)
{
	(void)arg;
	for (size_t i = 0; i < sizeof(baseline_leaves) / sizeof(baseline_leaves[0]); i++)
		if (e->function == baseline_leaves[i])
			return false;
	return true;
}

static uint32_t baseline_mask(const struct feature_reg *r)
{
	uint32_t mask = r->fixed;
	for (const struct cpu_feature *f = cpu_core_features; f->name; f++)
		if (f->baseline && f->leaf == r->leaf && f->subleaf == r->subleaf &&
		    f->reg == r->reg)
			mask |= 1u << f->bit;
	return mask;
}

static void baseline_filter(struct kvm_cpuid2 *t)
{
	drop_entries(t, not_in_baseline, 0);
	for (size_t i = 0; i < sizeof(feature_regs) / sizeof(feature_regs[0]); i++) {
		const struct feature_reg *r = &feature_regs[i];
		struct kvm_cpuid_entry2 *e = find_mut(t, r->leaf, r->subleaf);
		if (e)
			*reg_of(e, r->reg) &= baseline_mask(r);
	}
}

const struct cpu_model cpu_baseline_model = {
    .name = CPU_MODEL_DEFAULT,
    .help = "the default: x86-64-v3 and common features, the same on every host that has "
	    "them",
    .filter = baseline_filter,
    .xsave_ungoverned = 0,
};

/* ---- +FEATURE and -FEATURE ---- */

static bool is_leaf(const struct kvm_cpuid2 *t, uint32_t leaf)
{
	for (uint32_t i = 0; i < t->nent; i++)
		if (t->entries[i].function == leaf)
			return true;
	return false;
}

static bool entry_of_leaf(const struct kvm_cpuid_entry2 *e, uint64_t leaf)
{
	return e->function == leaf;
}

static int append(struct kvm_cpuid2 *t, unsigned cap, const struct kvm_cpuid_entry2 *e)
{
	if (t->nent >= cap)
		return -1;
	t->entries[t->nent++] = *e;
	return 0;
}

/* Every subleaf of `leaf` from KVM's table, where the model dropped it. */
static int copy_leaf(struct kvm_cpuid2 *t, unsigned cap, const struct kvm_cpuid2 *sup,
		     uint32_t leaf)
{
	if (is_leaf(t, leaf))
		return 0;
	for (uint32_t i = 0; i < sup->nent; i++)
		if (sup->entries[i].function == leaf && append(t, cap, &sup->entries[i]) < 0)
			return -1;
	return 0;
}

/* The feature's entry, created (its registers clear) if the model
 * dropped the leaf: KVM has it, or the feature would have been refused. */
static struct kvm_cpuid_entry2 *entry_for(struct kvm_cpuid2 *t, unsigned cap,
					  const struct kvm_cpuid2 *sup, const struct cpu_feature *f)
{
	struct kvm_cpuid_entry2 *e = find_mut(t, f->leaf, f->subleaf);
	const struct kvm_cpuid_entry2 *s = cpuid_find(sup, f->leaf, f->subleaf);
	if (e || !s)
		return e;
	struct kvm_cpuid_entry2 blank = *s;
	blank.eax = blank.ebx = blank.ecx = blank.edx = 0;
	return append(t, cap, &blank) < 0 ? NULL : &t->entries[t->nent - 1];
}

static int show(const struct cpu_feature *f, const struct kvm_cpuid2 *sup, struct kvm_cpuid2 *t,
		unsigned cap, char *why, size_t n)
{
	unsigned host = cpu_vendor_of(sup);
	if (f->vendor != CPU_VENDOR_OTHER && f->vendor != host) {
		snprintf(why, n, "+%s: %s is %s's and this host is %s", f->name, f->name,
			 vendor_name(f->vendor), vendor_name(host));
		return VMM_EXIT_KVM_CAP;
	}
	if (!cpu_table_has(sup, f)) {
		snprintf(why, n,
			 "+%s: this host's KVM does not support %s (KVM_GET_SUPPORTED_CPUID)",
			 f->name, f->name);
		return VMM_EXIT_KVM_CAP;
	}
	struct kvm_cpuid_entry2 *e = entry_for(t, cap, sup, f);
	if (!e || (f->detail_leaf && copy_leaf(t, cap, sup, f->detail_leaf) < 0)) {
		snprintf(why, n, "the CPUID table has more than %u entries", cap);
		return VMM_EXIT_RESOURCE;
	}
	cpu_entry_set(e, f, true);
	return 0;
}

static void hide(const struct cpu_feature *f, struct kvm_cpuid2 *t)
{
	struct kvm_cpuid_entry2 *e = find_mut(t, f->leaf, f->subleaf);
	if (e)
		cpu_entry_set(e, f, false);
	if (f->detail_leaf)
		drop_entries(t, entry_of_leaf, f->detail_leaf);
}

/* ---- XSAVE state components ---- */

/* The user state components a named feature governs (Intel SDM vol. 1,
 * 13.1): a component stays only while its feature is shown, as a guest
 * may enable in XCR0 only what leaf 0xD lists. */
/* clang-format off */
static const struct {
	uint8_t component;
	const char *feature;
} xsave_governed[] = {
	{2, "avx"}, {3, "mpx"}, {4, "mpx"}, {5, "avx512f"}, {6, "avx512f"}, {7, "avx512f"},
	{9, "pku"}, {17, "amx_tile"}, {18, "amx_tile"},
};
/* clang-format on */

static uint64_t xsave_allowed(const struct kvm_cpuid2 *t, const struct cpu_model *m)
{
	uint64_t governed = 0, allowed = 0x3; /* x87 and SSE */
	for (size_t i = 0; i < sizeof(xsave_governed) / sizeof(xsave_governed[0]); i++) {
		uint64_t bit = 1ull << xsave_governed[i].component;
		const struct cpu_feature *f = cpu_feature_find(xsave_governed[i].feature);
		governed |= bit;
		if (f && cpu_table_has(t, f))
			allowed |= bit;
	}
	return allowed | (m->xsave_ungoverned & ~governed);
}

/* Supervisor components (IA32_XSS, leaf 0xD.1 ECX/EDX) exist only with
 * XSAVES. */
static uint64_t xss_allowed(struct kvm_cpuid2 *t)
{
	struct kvm_cpuid_entry2 *e = find_mut(t, LEAF_XSAVE, 1);
	const struct cpu_feature *xsaves = cpu_feature_find("xsaves");
	if (!e)
		return 0;
	if (!cpu_entry_has(e, xsaves))
		e->ecx = e->edx = 0;
	return e->ecx | (uint64_t)e->edx << 32;
}

static bool unlisted_component(const struct kvm_cpuid_entry2 *e, uint64_t keep)
{
	return e->function == LEAF_XSAVE && e->index >= 2 && e->index < 64 &&
	       !((keep >> e->index) & 1);
}

/* Size of the XSAVE area for every user component left (leaf 0xD.0 ECX). */
static uint32_t xsave_size(const struct kvm_cpuid2 *t, uint64_t user)
{
	uint32_t size = XSAVE_LEGACY_SIZE;
	for (uint32_t i = 0; i < t->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &t->entries[i];
		if (e->function == LEAF_XSAVE && e->index >= 2 && e->index < 64 &&
		    ((user >> e->index) & 1) && e->ebx + e->eax > size)
			size = e->ebx + e->eax;
	}
	return size;
}

static void xsave_agree(struct kvm_cpuid2 *t, const struct cpu_model *m)
{
	struct kvm_cpuid_entry2 *e = find_mut(t, LEAF_XSAVE, 0);
	if (!e)
		return;
	uint64_t had = e->eax | (uint64_t)e->edx << 32;
	uint64_t user = had & xsave_allowed(t, m);
	drop_entries(t, unlisted_component, user | xss_allowed(t));
	if (user == had)
		return;
	e = find_mut(t, LEAF_XSAVE, 0); /* drop_entries moved it */
	e->eax = (uint32_t)user;
	e->edx = (uint32_t)(user >> 32);
	e->ecx = xsave_size(t, user);
}

/* ---- the whole model ---- */

int cpu_model_apply(const struct cpu_config *cfg, const struct kvm_cpuid2 *sup,
		    struct kvm_cpuid2 *t, unsigned cap, char *why, size_t n)
{
	const char *name = cfg && cfg->model[0] ? cfg->model : CPU_MODEL_DEFAULT;
	const struct cpu_model *m = cpu_model_find(name);
	if (!m) {
		snprintf(why, n, "CPU model '%s' is not built in", name);
		return VMM_EXIT_USAGE;
	}
	if (m->filter)
		m->filter(t);
	for (unsigned i = 0; cfg && i < cfg->nedits; i++) {
		const struct cpu_feature *f = cpu_feature_find(cfg->edits[i].name);
		int rc = 0;
		if (!f) {
			snprintf(why, n, "CPU feature '%s' is not built in", cfg->edits[i].name);
			return VMM_EXIT_USAGE;
		}
		if (cfg->edits[i].on)
			rc = show(f, sup, t, cap, why, n);
		else
			hide(f, t);
		if (rc)
			return rc;
	}
	xsave_agree(t, m);
	return 0;
}

/* ---- checks ---- */

static void add_name(char *names, size_t n, const char *name)
{
	size_t used = strlen(names);
	snprintf(names + used, n - used, "%s%s", used ? ", " : "", name);
}

static void missing_in(const struct cpu_feature *f, const struct kvm_cpuid2 *want,
		       const struct kvm_cpuid2 *sup, char *names, size_t n)
{
	for (; f && f->name; f++)
		if (cpu_table_has(want, f) && !cpu_table_has(sup, f))
			add_name(names, n, f->name);
}

bool cpu_missing_features(const struct kvm_cpuid2 *want, const struct kvm_cpuid2 *sup, char *names,
			  size_t n)
{
	names[0] = '\0';
	missing_in(cpu_core_features, want, sup, names, n);
	for (unsigned i = 0; i < module_count(); i++)
		missing_in(module_at(i)->cpu_features, want, sup, names, n);
	return names[0] != '\0';
}

int cpu_model_check(int kvm_fd, const struct cpu_config *cfg)
{
	struct cpuid_buf *sup = malloc(2 * sizeof(*sup));
	struct cpuid_buf *t = sup + 1;
	char why[256];
	int rc = VMM_EXIT_RESOURCE;
	if (!sup) {
		vmm_err("out of memory for the CPUID table");
		return rc;
	}
	if (cpuid_get_supported(kvm_fd, sup) < 0) {
		rc = VMM_EXIT_KVM_CAP;
	} else if (cpuid_normalise((struct kvm_cpuid2 *)sup, (struct kvm_cpuid2 *)t,
				   CPUID_MAX_ENTRIES, 0, 1) < 0) {
		vmm_err("the CPUID table has more than %d entries", CPUID_MAX_ENTRIES);
	} else {
		rc = cpu_model_apply(cfg, (struct kvm_cpuid2 *)sup, (struct kvm_cpuid2 *)t,
				     CPUID_MAX_ENTRIES, why, sizeof(why));
		if (rc)
			vmm_err("--cpu %s", why);
	}
	free(sup);
	return rc;
}
