/*
 * The named CPUID features, and name look-up across the core and the
 * built-in modules.
 *
 * Leaf, register and bit of each feature are from the Intel SDM (vol. 2A,
 * CPUID) and the AMD APM (vol. 3, appendix E). `baseline` marks the default
 * model: x86-64-v3 (the psABI level: AVX2, BMI1/2, FMA, F16C, LZCNT, MOVBE,
 * XSAVE and below), the system features every x86-64 host has, AES,
 * PCLMULQDQ, RDRAND, FSGSBASE, SMEP, XSAVEOPT, PDPE1GB and RDTSCP (all on
 * Intel Haswell and AMD Zen 1 and later), the features KVM emulates
 * whatever the host (x2apic, tsc_deadline, tsc_adjust, arat, hypervisor),
 * and the speculation controls: those are passed where the host has them,
 * since a guest without them cannot protect itself, even though they then
 * differ between hosts with different microcode.
 */
#include <string.h>

#include "../module.h"
#include "cpu_model.h"

#define EAX CPU_REG_EAX
#define EBX CPU_REG_EBX
#define ECX CPU_REG_ECX
#define EDX CPU_REG_EDX
#define ANY CPU_VENDOR_OTHER
#define AMD CPU_VENDOR_AMD
#define B true	/* in the baseline */
#define N false /* not */

/* name, leaf, subleaf, register, bit, vendor, baseline */
/* clang-format off */
#define F(name, leaf, sub, reg, bit, vendor, base) {name, leaf, sub, reg, bit, vendor, base, 0}
/* clang-format on */
const struct cpu_feature cpu_core_features[] = {
    /* leaf 1 EDX */
    F("fpu", 1, 0, EDX, 0, ANY, B),
    F("vme", 1, 0, EDX, 1, ANY, B),
    F("de", 1, 0, EDX, 2, ANY, B),
    F("pse", 1, 0, EDX, 3, ANY, B),
    F("tsc", 1, 0, EDX, 4, ANY, B),
    F("msr", 1, 0, EDX, 5, ANY, B),
    F("pae", 1, 0, EDX, 6, ANY, B),
    F("mce", 1, 0, EDX, 7, ANY, B),
    F("cx8", 1, 0, EDX, 8, ANY, B),
    F("apic", 1, 0, EDX, 9, ANY, B),
    F("sep", 1, 0, EDX, 11, ANY, B),
    F("mtrr", 1, 0, EDX, 12, ANY, B),
    F("pge", 1, 0, EDX, 13, ANY, B),
    F("mca", 1, 0, EDX, 14, ANY, B),
    F("cmov", 1, 0, EDX, 15, ANY, B),
    F("pat", 1, 0, EDX, 16, ANY, B),
    F("pse36", 1, 0, EDX, 17, ANY, B),
    F("clflush", 1, 0, EDX, 19, ANY, B),
    F("mmx", 1, 0, EDX, 23, ANY, B),
    F("fxsr", 1, 0, EDX, 24, ANY, B),
    F("sse", 1, 0, EDX, 25, ANY, B),
    F("sse2", 1, 0, EDX, 26, ANY, B),
    F("ss", 1, 0, EDX, 27, ANY, N),
    /* leaf 1 ECX */
    F("sse3", 1, 0, ECX, 0, ANY, B),
    F("pclmulqdq", 1, 0, ECX, 1, ANY, B),
    F("ssse3", 1, 0, ECX, 9, ANY, B),
    F("fma", 1, 0, ECX, 12, ANY, B),
    F("cx16", 1, 0, ECX, 13, ANY, B),
    F("pdcm", 1, 0, ECX, 15, ANY, N),
    F("pcid", 1, 0, ECX, 17, ANY, N),
    F("sse4_1", 1, 0, ECX, 19, ANY, B),
    F("sse4_2", 1, 0, ECX, 20, ANY, B),
    F("x2apic", 1, 0, ECX, 21, ANY, B),
    F("movbe", 1, 0, ECX, 22, ANY, B),
    F("popcnt", 1, 0, ECX, 23, ANY, B),
    F("tsc_deadline", 1, 0, ECX, 24, ANY, B),
    F("aes", 1, 0, ECX, 25, ANY, B),
    F("xsave", 1, 0, ECX, 26, ANY, B),
    F("avx", 1, 0, ECX, 28, ANY, B),
    F("f16c", 1, 0, ECX, 29, ANY, B),
    F("rdrand", 1, 0, ECX, 30, ANY, B),
    F("hypervisor", 1, 0, ECX, 31, ANY, B),
    /* leaf 6 EAX */
    F("arat", 6, 0, EAX, 2, ANY, B),
    /* leaf 7.0 EBX */
    F("fsgsbase", 7, 0, EBX, 0, ANY, B),
    F("tsc_adjust", 7, 0, EBX, 1, ANY, B),
    F("bmi1", 7, 0, EBX, 3, ANY, B),
    F("hle", 7, 0, EBX, 4, ANY, N),
    F("avx2", 7, 0, EBX, 5, ANY, B),
    F("smep", 7, 0, EBX, 7, ANY, B),
    F("bmi2", 7, 0, EBX, 8, ANY, B),
    F("erms", 7, 0, EBX, 9, ANY, N),
    F("invpcid", 7, 0, EBX, 10, ANY, N),
    F("rtm", 7, 0, EBX, 11, ANY, N),
    F("mpx", 7, 0, EBX, 14, ANY, N),
    F("avx512f", 7, 0, EBX, 16, ANY, N),
    F("avx512dq", 7, 0, EBX, 17, ANY, N),
    F("rdseed", 7, 0, EBX, 18, ANY, N),
    F("adx", 7, 0, EBX, 19, ANY, N),
    F("smap", 7, 0, EBX, 20, ANY, N),
    F("avx512ifma", 7, 0, EBX, 21, ANY, N),
    F("clflushopt", 7, 0, EBX, 23, ANY, N),
    F("clwb", 7, 0, EBX, 24, ANY, N),
    F("avx512pf", 7, 0, EBX, 26, ANY, N),
    F("avx512er", 7, 0, EBX, 27, ANY, N),
    F("avx512cd", 7, 0, EBX, 28, ANY, N),
    F("sha_ni", 7, 0, EBX, 29, ANY, N),
    F("avx512bw", 7, 0, EBX, 30, ANY, N),
    F("avx512vl", 7, 0, EBX, 31, ANY, N),
    /* leaf 7.0 ECX */
    F("avx512vbmi", 7, 0, ECX, 1, ANY, N),
    F("umip", 7, 0, ECX, 2, ANY, N),
    F("pku", 7, 0, ECX, 3, ANY, N),
    F("waitpkg", 7, 0, ECX, 5, ANY, N),
    F("avx512_vbmi2", 7, 0, ECX, 6, ANY, N),
    F("gfni", 7, 0, ECX, 8, ANY, N),
    F("vaes", 7, 0, ECX, 9, ANY, N),
    F("vpclmulqdq", 7, 0, ECX, 10, ANY, N),
    F("avx512_vnni", 7, 0, ECX, 11, ANY, N),
    F("avx512_bitalg", 7, 0, ECX, 12, ANY, N),
    F("avx512_vpopcntdq", 7, 0, ECX, 14, ANY, N),
    F("la57", 7, 0, ECX, 16, ANY, N),
    F("rdpid", 7, 0, ECX, 22, ANY, N),
    F("cldemote", 7, 0, ECX, 25, ANY, N),
    F("movdiri", 7, 0, ECX, 27, ANY, N),
    F("movdir64b", 7, 0, ECX, 28, ANY, N),
    /* leaf 7.0 EDX */
    F("avx512_4vnniw", 7, 0, EDX, 2, ANY, N),
    F("avx512_4fmaps", 7, 0, EDX, 3, ANY, N),
    F("fsrm", 7, 0, EDX, 4, ANY, N),
    F("avx512_vp2intersect", 7, 0, EDX, 8, ANY, N),
    F("md_clear", 7, 0, EDX, 10, ANY, B),
    F("serialize", 7, 0, EDX, 14, ANY, N),
    F("tsxldtrk", 7, 0, EDX, 16, ANY, N),
    F("amx_bf16", 7, 0, EDX, 22, ANY, N),
    F("avx512_fp16", 7, 0, EDX, 23, ANY, N),
    F("amx_tile", 7, 0, EDX, 24, ANY, N),
    F("amx_int8", 7, 0, EDX, 25, ANY, N),
    F("spec_ctrl", 7, 0, EDX, 26, ANY, B),
    F("stibp", 7, 0, EDX, 27, ANY, B),
    F("flush_l1d", 7, 0, EDX, 28, ANY, B),
    F("arch_capabilities", 7, 0, EDX, 29, ANY, B),
    F("ssbd", 7, 0, EDX, 31, ANY, B),
    /* leaf 7.1 EAX */
    F("avx_vnni", 7, 1, EAX, 4, ANY, N),
    F("avx512_bf16", 7, 1, EAX, 5, ANY, N),
    F("fzrm", 7, 1, EAX, 10, ANY, N),
    F("fsrs", 7, 1, EAX, 11, ANY, N),
    F("fsrc", 7, 1, EAX, 12, ANY, N),
    /* leaf 7.2 EDX: more speculation controls */
    F("psfd", 7, 2, EDX, 0, ANY, B),
    F("ipred_ctrl", 7, 2, EDX, 1, ANY, B),
    F("rrsba_ctrl", 7, 2, EDX, 2, ANY, B),
    F("bhi_ctrl", 7, 2, EDX, 4, ANY, B),
    F("mcdt_no", 7, 2, EDX, 5, ANY, B),
    /* leaf 0xD.1 EAX */
    F("xsaveopt", 0xd, 1, EAX, 0, ANY, B),
    F("xsavec", 0xd, 1, EAX, 1, ANY, N),
    F("xgetbv1", 0xd, 1, EAX, 2, ANY, N),
    F("xsaves", 0xd, 1, EAX, 3, ANY, N),
    /* leaf 0x80000001 ECX */
    F("lahf_lm", 0x80000001, 0, ECX, 0, ANY, B),
    F("cmp_legacy", 0x80000001, 0, ECX, 1, AMD, N),
    F("abm", 0x80000001, 0, ECX, 5, ANY, B),
    F("sse4a", 0x80000001, 0, ECX, 6, AMD, N),
    F("misalignsse", 0x80000001, 0, ECX, 7, AMD, N),
    F("3dnowprefetch", 0x80000001, 0, ECX, 8, ANY, N),
    F("xop", 0x80000001, 0, ECX, 11, AMD, N),
    F("fma4", 0x80000001, 0, ECX, 16, AMD, N),
    F("tbm", 0x80000001, 0, ECX, 21, AMD, N),
    F("topoext", 0x80000001, 0, ECX, 22, AMD, N),
    /* leaf 0x80000001 EDX */
    F("syscall", 0x80000001, 0, EDX, 11, ANY, B),
    F("nx", 0x80000001, 0, EDX, 20, ANY, B),
    F("mmxext", 0x80000001, 0, EDX, 22, AMD, N),
    F("fxsr_opt", 0x80000001, 0, EDX, 25, AMD, N),
    F("pdpe1gb", 0x80000001, 0, EDX, 26, ANY, B),
    F("rdtscp", 0x80000001, 0, EDX, 27, ANY, B),
    F("lm", 0x80000001, 0, EDX, 29, ANY, B),
    /* leaf 0x80000007 EDX */
    F("invtsc", 0x80000007, 0, EDX, 8, ANY, N),
    /* leaf 0x80000008 EBX */
    F("clzero", 0x80000008, 0, EBX, 0, AMD, N),
    F("wbnoinvd", 0x80000008, 0, EBX, 9, ANY, N),
    F("amd_ibpb", 0x80000008, 0, EBX, 12, AMD, B),
    F("amd_ibrs", 0x80000008, 0, EBX, 14, AMD, B),
    F("amd_stibp", 0x80000008, 0, EBX, 15, AMD, B),
    F("amd_ssbd", 0x80000008, 0, EBX, 24, AMD, B),
    F("virt_ssbd", 0x80000008, 0, EBX, 25, AMD, B),
    F("amd_ssb_no", 0x80000008, 0, EBX, 26, AMD, B),
    F(NULL, 0, 0, 0, 0, 0, false),
};

/* '-' and '_' are the same: "tsc-deadline" finds tsc_deadline. */
static bool name_eq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char ca = *a == '-' ? '_' : *a, cb = *b == '-' ? '_' : *b;
		if (ca != cb)
			return false;
	}
	return *a == *b;
}

static const struct cpu_feature *find_feature_in(const struct cpu_feature *t, const char *name)
{
	for (; t && t->name; t++)
		if (name_eq(t->name, name))
			return t;
	return NULL;
}

static const struct cpu_model *find_model_in(const struct cpu_model *t, const char *name)
{
	for (; t && t->name; t++)
		if (name_eq(t->name, name))
			return t;
	return NULL;
}

const struct cpu_model *cpu_model_find(const char *name)
{
	if (name_eq(cpu_baseline_model.name, name))
		return &cpu_baseline_model;
	for (unsigned i = 0; i < module_count(); i++) {
		const struct cpu_model *m = find_model_in(module_at(i)->cpu_models, name);
		if (m)
			return m;
	}
	return NULL;
}

const struct cpu_feature *cpu_feature_find(const char *name)
{
	const struct cpu_feature *f = find_feature_in(cpu_core_features, name);
	for (unsigned i = 0; !f && i < module_count(); i++)
		f = find_feature_in(module_at(i)->cpu_features, name);
	return f;
}

const char *cpu_name_module(const char *name)
{
	for (const struct module_known_cpu_name *k = module_known_cpu_names; k->name; k++)
		if (name_eq(k->name, name))
			return k->module;
	return NULL;
}

static void help_features(FILE *out, const struct cpu_feature *t, const char *module)
{
	unsigned col = 0;
	for (; t && t->name; t++) {
		if (col == 0)
			fputs(" ", out);
		fprintf(out, " %s%s", t->name, t->baseline ? "*" : "");
		if (++col == 8) {
			fputc('\n', out);
			col = 0;
		}
	}
	if (module)
		fprintf(out, " (module %s)", module);
	if (col || module)
		fputc('\n', out);
}

void cpu_model_help(FILE *out)
{
	fputs("CPU models (--cpu MODEL[,+FEATURE][,-FEATURE]...):\n", out);
	fprintf(out, "  %-10s %s\n", cpu_baseline_model.name, cpu_baseline_model.help);
	for (unsigned i = 0; i < module_count(); i++)
		for (const struct cpu_model *m = module_at(i)->cpu_models; m && m->name; m++)
			fprintf(out, "  %-10s %s (module %s)\n", m->name, m->help,
				module_at(i)->name);
	fputs("Features (* in the baseline; shown only where this host's KVM supports them):\n",
	      out);
	help_features(out, cpu_core_features, NULL);
	for (unsigned i = 0; i < module_count(); i++)
		if (module_at(i)->cpu_features)
			help_features(out, module_at(i)->cpu_features, module_at(i)->name);
	const char *open = NULL; /* the module whose names are being listed */
	for (const struct module_known_cpu_name *k = module_known_cpu_names; k->name; k++) {
		if (module_find(k->module))
			continue;
		if (open && strcmp(open, k->module) != 0)
			fprintf(out, " (module %s)\n", open);
		fprintf(out, open && strcmp(open, k->module) == 0 ? ", %s" : "Not built in: %s",
			k->name);
		open = k->module;
	}
	if (open)
		fprintf(out, " (module %s)\n", open);
}
