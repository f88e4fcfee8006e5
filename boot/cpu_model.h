/*
 * CPU models: the CPUID a guest sees (--cpu MODEL[,+FEATURE][,-FEATURE]...).
 *
 * boot/cpuid.c builds each vCPU's table from KVM_GET_SUPPORTED_CPUID
 * (topology, hypervisor leaves); the model then filters it, and each +/-
 * shows or hides one named feature bit on top. The core has the default
 * model, "baseline", and the named features (cpu_features.c); a module
 * adds models and features of its own (struct vmm_module: the nested
 * module has "host", vmx and svm). Names a module provides are known here
 * even in a build without it (module_known_cpu_names), so they are refused
 * as "not built in" rather than as unknown.
 */
#ifndef VMM_BOOT_CPU_MODEL_H
#define VMM_BOOT_CPU_MODEL_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../vmm.h"

enum cpu_reg { CPU_REG_EAX, CPU_REG_EBX, CPU_REG_ECX, CPU_REG_EDX };

/* KVM reports the host's vendor in leaf 0. Hygon counts as AMD. */
enum cpu_vendor { CPU_VENDOR_OTHER, CPU_VENDOR_INTEL, CPU_VENDOR_AMD };

/* One named CPUID feature bit. */
struct cpu_feature {
	const char *name; /* /proc/cpuinfo's spelling where it has one */
	uint32_t leaf, subleaf;
	uint8_t reg; /* enum cpu_reg */
	uint8_t bit;
	/* Only this vendor's CPUs have it (vmx, svm, AMD's own bits):
	 * asking for it on the other vendor's host is refused as such.
	 * CPU_VENDOR_OTHER: any vendor. */
	uint8_t vendor;
	bool baseline; /* part of the default model */
	/* A leaf that describes the feature (SVM's 0x8000000A), taken from
	 * KVM's table when the feature is shown and dropped when it is
	 * hidden; 0: none. */
	uint32_t detail_leaf;
};

/* A model: how a vCPU's table is filtered before the +/- features. */
struct cpu_model {
	const char *name;
	const char *help; /* one line for --cpu help */
	/* Filter the table in place. NULL: keep all KVM supports. */
	void (*filter)(struct kvm_cpuid2 *t);
	/* XSAVE state components the model keeps when no named feature
	 * governs them (AVX's, AVX-512's and PKRU's follow their feature):
	 * the baseline keeps none, "host" all. x87 and SSE always stay. */
	uint64_t xsave_ungoverned;
};

#define CPU_MODEL_DEFAULT "baseline"
extern const struct cpu_model cpu_baseline_model;

/* ---- names: the core's tables and the built-in modules' ---- */

/* The core's named features, ending with a {NULL} entry. */
extern const struct cpu_feature cpu_core_features[];

/* Find a model or feature by name among the core's and the built-in
 * modules' ('-' and '_' match each other); NULL if none has it. */
const struct cpu_model *cpu_model_find(const char *name);
const struct cpu_feature *cpu_feature_find(const char *name);
/* The module that provides a model or feature this build lacks; NULL if
 * no module of this source tree has that name. */
const char *cpu_name_module(const char *name);

/* Parse --cpu's value into cfg (left as it was on error). The first item
 * is a model, or already a feature (the default model then). */
enum { CPU_SPEC_OK, CPU_SPEC_INVALID, CPU_SPEC_NOT_BUILT_IN };
/* CPU_SPEC_OK; CPU_SPEC_INVALID with the reason in why; or
 * CPU_SPEC_NOT_BUILT_IN with why "ITEM: not built in (module M; ...)". */
int cpu_config_parse(const char *spec, struct cpu_config *cfg, char *why, size_t n);
/* The spec cpu_config_parse() reads back into cfg: "baseline,+vmx,-avx". */
void cpu_config_format(const struct cpu_config *cfg, char *buf, size_t n);
/* --cpu help: the models and features, and which a module provides. */
void cpu_model_help(FILE *out);

/* ---- applying a model ---- */

/* The vendor of a CPUID table, from leaf 0. */
enum cpu_vendor cpu_vendor_of(const struct kvm_cpuid2 *t);
/* Bit access on one entry's register. */
bool cpu_entry_has(const struct kvm_cpuid_entry2 *e, const struct cpu_feature *f);
void cpu_entry_set(struct kvm_cpuid_entry2 *e, const struct cpu_feature *f, bool on);
/* Is the feature set in the table? (false where its leaf is absent) */
bool cpu_table_has(const struct kvm_cpuid2 *t, const struct cpu_feature *f);

/* Apply cfg's model and features to `t` (room for `cap` entries), one
 * vCPU's table from cpuid_normalise(). `sup` is KVM's supported table: a
 * +FEATURE it lacks is refused. Returns 0, or an enum vmm_exit status with
 * the reason in why: VMM_EXIT_KVM_CAP where this host cannot (a feature
 * KVM does not support, another vendor's feature), VMM_EXIT_USAGE for a
 * name this build does not know, VMM_EXIT_RESOURCE if `cap` is too small. */
int cpu_model_apply(const struct cpu_config *cfg, const struct kvm_cpuid2 *sup,
		    struct kvm_cpuid2 *t, unsigned cap, char *why, size_t n);

/* Does the configuration show this feature by name (+NAME)? */
bool cpu_config_shows(const struct cpu_config *cfg, const char *name);
/* Named features `want` has that `sup` lacks, as "a, b, c" in names;
 * false if none. For a migration destination checking a saved table. */
bool cpu_missing_features(const struct kvm_cpuid2 *want, const struct kvm_cpuid2 *sup, char *names,
			  size_t n);

/* Before any vCPU exists: resolve cfg against this host's KVM (the
 * checks cpu_model_apply makes, once). 0 or a status, message printed. */
int cpu_model_check(int kvm_fd, const struct cpu_config *cfg);

#endif
