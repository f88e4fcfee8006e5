/*
 * CPU models (boot/cpu_model.h): --cpu parsing, the baseline and +/-
 * features over crafted tables, then the table KVM holds for real vCPUs
 * (KVM_GET_CPUID2) for the default model and +/- combinations (skipped
 * where /dev/kvm is unusable). Built with and without the modules: what
 * the nested module provides is checked both ways.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cputest.h"
#include "module.h"

static struct cpuid_buf sup, t;
static char why[256];

#define BIT(n) (1u << (n))

/* An Intel host whose KVM supports every bit of the feature registers,
 * AVX-512 state, and Intel PT (leaf 0x14, XSS component 8). */
static void intel_host(void)
{
	memset(&sup, 0, sizeof(sup));
	ct_add(&sup, 0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69);
	ct_add(&sup, 1, 0, 0x906ea, 0x00100800, ~BIT(27), ~0u);
	ct_add(&sup, 6, 0, 0x6, 0, 0, 0);
	ct_add(&sup, 7, 0, 2, ~0u, ~0u, ~0u);
	ct_add(&sup, 7, 1, ~0u, 0, 0, ~0u);
	ct_add(&sup, 7, 2, 0, 0, 0, ~0u);
	ct_add(&sup, 0xd, 0, 0xe7, 0xa80, 0xa80, 0);
	ct_add(&sup, 0xd, 1, 0xf, 0, 0x100, 0);
	ct_add(&sup, 0xd, 2, 0x100, 0x240, 0, 0);
	ct_add(&sup, 0xd, 5, 0x40, 0x440, 0, 0);
	ct_add(&sup, 0xd, 6, 0x200, 0x480, 0, 0);
	ct_add(&sup, 0xd, 7, 0x400, 0x680, 0, 0);
	ct_add(&sup, 0xd, 8, 0x80, 0, 1, 0);
	ct_add(&sup, 0x14, 0, 1, 0x1f, 0x7, 0);
	ct_add(&sup, 0x40000000, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d);
	ct_add(&sup, 0x40000001, 0, 0x01007efb, 0, 0, 0);
	ct_add(&sup, 0x80000000, 0, 0x80000008, 0, 0, 0);
	ct_add(&sup, 0x80000001, 0, 0, 0, 0x121, 0x2c100800);
	ct_add(&sup, 0x80000007, 0, 0, 0, 0, BIT(8));
	ct_add(&sup, 0x80000008, 0, 0x3027, BIT(9), 0, 0);
	t = sup;
}

static int apply(const char *spec)
{
	struct cpu_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	if (spec)
		assert_int_equal(cpu_config_parse(spec, &cfg, why, sizeof(why)), CPU_SPEC_OK);
	why[0] = '\0';
	return cpu_model_apply(&cfg, CT_T(&sup), CT_T(&t), CPUID_MAX_ENTRIES, why, sizeof(why));
}

static bool has(const char *feature)
{
	return ct_has(&t, feature);
}

/* ---- parsing ---- */

static void parse_model_and_features(void **state)
{
	(void)state;
	struct cpu_config c;
	memset(&c, 0, sizeof(c));
	assert_int_equal(cpu_config_parse("baseline,+avx512f,-tsc-deadline", &c, why, sizeof(why)),
			 CPU_SPEC_OK);
	assert_string_equal(c.model, "baseline");
	assert_int_equal(c.nedits, 2);
	assert_string_equal(c.edits[0].name, "avx512f");
	assert_true(c.edits[0].on);
	assert_string_equal(c.edits[1].name, "tsc_deadline"); /* the table's spelling */
	assert_false(c.edits[1].on);
	assert_true(cpu_config_shows(&c, "avx512f"));
	assert_false(cpu_config_shows(&c, "tsc_deadline"));
	/* Features alone: the default model. */
	assert_int_equal(cpu_config_parse("-x2apic", &c, why, sizeof(why)), CPU_SPEC_OK);
	assert_string_equal(c.model, "");
	assert_int_equal(c.nedits, 1);
}

static void parse_errors(void **state)
{
	(void)state;
	static const struct {
		const char *spec, *why;
	} bad[] = {
	    {"skylake", "unknown model 'skylake'; see vmm --cpu help"},
	    {"baseline,+foo", "unknown feature 'foo'; see vmm --cpu help"},
	    {"baseline,avx", "expected +FEATURE or -FEATURE, got 'avx'"},
	    {"+avx,-avx", "feature 'avx' given twice"},
	    {"+avx,+tsc_deadline,-tsc-deadline", "feature 'tsc_deadline' given twice"},
	    {"", "empty item"},
	    {",+avx", "empty item"},
	    {"baseline,", "empty item"},
	    {"baseline,,+avx", "empty item"},
	    {"+averyveryveryveryverylongfeaturename", "a name is too long"},
	};
	struct cpu_config c;
	memset(&c, 0, sizeof(c));
	snprintf(c.model, sizeof(c.model), "kept");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cpu_config_parse(bad[i].spec, &c, why, sizeof(why)),
				 CPU_SPEC_INVALID);
		assert_string_equal(why, bad[i].why);
		assert_string_equal(c.model, "kept"); /* untouched on error */
	}
	char many[1024] = "baseline";
	for (const struct cpu_feature *f = cpu_core_features; f - cpu_core_features <= 32; f++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), ",+%s", f->name);
	assert_int_equal(cpu_config_parse(many, &c, why, sizeof(why)), CPU_SPEC_INVALID);
	assert_string_equal(why, "more than 32 features");
}

/* "host", vmx and svm are the nested module's: parsed with it, refused by
 * name without it. */
static void parse_module_names(void **state)
{
	(void)state;
	struct cpu_config c;
	memset(&c, 0, sizeof(c));
	const char *specs[] = {"host", "+vmx", "-svm", "baseline,+svm"};
	const char *items[] = {"host", "+vmx", "-svm", "+svm"};
	bool built = module_find("nested") != NULL;
	for (size_t i = 0; i < 4; i++) {
		int rc = cpu_config_parse(specs[i], &c, why, sizeof(why));
		if (built) {
			assert_int_equal(rc, CPU_SPEC_OK);
			continue;
		}
		assert_int_equal(rc, CPU_SPEC_NOT_BUILT_IN);
		char want[160];
		snprintf(want, sizeof(want),
			 "%s: not built in (module nested; build with make MODULES=\"... nested\")",
			 items[i]);
		assert_string_equal(why, want);
	}
}

/* The API or a config file could set the fields directly: modules_check()
 * refuses what needs a module that is not built in. */
static void module_needs_refuses_host_without_nested(void **state)
{
	(void)state;
	struct vm_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.cpus = 1;
	snprintf(cfg.cpu.model, sizeof(cfg.cpu.model), "host");
	assert_int_equal(modules_check(&cfg), module_find("nested") ? 0 : VMM_EXIT_USAGE);
	memset(&cfg.cpu, 0, sizeof(cfg.cpu));
	cfg.cpu.nedits = 1;
	snprintf(cfg.cpu.edits[0].name, sizeof(cfg.cpu.edits[0].name), "svm");
	if (!module_find("nested"))
		assert_int_equal(modules_check(&cfg), VMM_EXIT_USAGE);
	cfg.cpu.edits[0].on = false;
	snprintf(cfg.cpu.edits[0].name, sizeof(cfg.cpu.edits[0].name), "avx");
	assert_int_equal(modules_check(&cfg), 0);
}

static void help_lists_models_and_features(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	cpu_model_help(f);
	fclose(f);
	assert_non_null(strstr(text, "  baseline   the default"));
	assert_non_null(strstr(text, " avx2*"));
	assert_non_null(strstr(text, " avx512f "));
	if (module_find("nested"))
		assert_non_null(strstr(text, "vmx svm (module nested)"));
	else
		assert_non_null(strstr(text, "Not built in: host, vmx, svm (module nested)"));
	free(text);
}

/* ---- the baseline over a crafted host ---- */

static void baseline_keeps_only_its_features(void **state)
{
	(void)state;
	intel_host();
	assert_int_equal(apply(NULL), 0);
	for (const struct cpu_feature *f = cpu_core_features; f->name; f++) {
		bool want = f->baseline && cpu_table_has(CT_T(&sup), f);
		if (has(f->name) != want)
			fail_msg("%s: %d, expected %d", f->name, has(f->name), want);
	}
	/* Bits that are no named feature: gone, but for HTT (the normaliser's). */
	assert_int_equal(ct_get(&t, 1, 0)->ecx & (BIT(3) | BIT(5) | BIT(15) | BIT(17)), 0);
	assert_int_equal(ct_get(&t, 1, 0)->edx & (BIT(10) | BIT(28) | BIT(30)), BIT(28));
	assert_int_equal(ct_get(&t, 6, 0)->eax, BIT(2));
	assert_int_equal(ct_get(&t, 7, 1)->eax, 0);
	assert_int_equal(ct_get(&t, 7, 1)->edx, 0);
	/* What describes the machine stays: family/model, max subleaf,
	 * address sizes, the hypervisor leaves. */
	assert_int_equal(ct_get(&t, 1, 0)->eax, 0x906ea);
	assert_int_equal(ct_get(&t, 7, 0)->eax, 2);
	assert_int_equal(ct_get(&t, 0x80000008, 0)->eax, 0x3027);
	assert_int_equal(ct_get(&t, 0x40000001, 0)->eax, 0x01007efb);
	/* Leaves outside the baseline are dropped: Intel PT. */
	assert_null(ct_get(&t, 0x14, 0));
}

static void baseline_xsave_components_follow_features(void **state)
{
	(void)state;
	intel_host();
	assert_int_equal(apply(NULL), 0);
	const struct kvm_cpuid_entry2 *d0 = ct_get(&t, 0xd, 0);
	assert_int_equal(d0->eax, 0x7); /* x87, SSE, AVX: no AVX-512 without avx512f */
	assert_int_equal(d0->edx, 0);
	assert_int_equal(d0->ecx, 0x240 + 0x100); /* the area ends after AVX's state */
	assert_non_null(ct_get(&t, 0xd, 2));
	for (uint32_t i = 5; i <= 8; i++)
		assert_null(ct_get(&t, 0xd, i));
	/* No XSAVES in the baseline: no supervisor state either. */
	assert_int_equal(ct_get(&t, 0xd, 1)->eax, 1); /* xsaveopt */
	assert_int_equal(ct_get(&t, 0xd, 1)->ecx, 0);
}

static void plus_shows_minus_hides(void **state)
{
	(void)state;
	intel_host();
	assert_int_equal(apply("+avx512f,+invtsc,+xsaves,-x2apic,-sse4_2"), 0);
	assert_true(has("avx512f"));
	assert_true(has("invtsc"));
	assert_false(has("x2apic"));
	assert_false(has("sse4_2"));
	assert_false(has("avx512dq")); /* only what is asked for */
	assert_true(has("sse4_1"));
	const struct kvm_cpuid_entry2 *d0 = ct_get(&t, 0xd, 0);
	assert_int_equal(d0->eax, 0xe7); /* AVX-512 state is back */
	assert_int_equal(d0->ecx, 0xa80);
	for (uint32_t i = 5; i <= 8; i++) /* and with XSAVES, PT's supervisor state */
		assert_non_null(ct_get(&t, 0xd, i));
	assert_int_equal(ct_get(&t, 0xd, 1)->ecx, 0x100);
}

static void minus_avx_drops_its_state(void **state)
{
	(void)state;
	intel_host();
	assert_int_equal(apply("-avx,-avx2"), 0);
	const struct kvm_cpuid_entry2 *d0 = ct_get(&t, 0xd, 0);
	assert_int_equal(d0->eax, 0x3);
	assert_int_equal(d0->ecx, 576);
	assert_null(ct_get(&t, 0xd, 2));
}

static void plus_refused_when_host_lacks_it(void **state)
{
	(void)state;
	intel_host();
	((struct kvm_cpuid_entry2 *)ct_get(&sup, 7, 0))->ebx &= ~BIT(16);
	assert_int_equal(apply("+avx512f"), VMM_EXIT_KVM_CAP);
	assert_string_equal(
	    why, "+avx512f: this host's KVM does not support avx512f (KVM_GET_SUPPORTED_CPUID)");
	/* Hiding what the host lacks is no error. */
	intel_host();
	((struct kvm_cpuid_entry2 *)ct_get(&sup, 7, 0))->ebx &= ~BIT(16);
	assert_int_equal(apply("-avx512f"), 0);
}

static void plus_refused_for_other_vendor(void **state)
{
	(void)state;
	intel_host();
	assert_int_equal(apply("+sse4a"), VMM_EXIT_KVM_CAP);
	assert_string_equal(why, "+sse4a: sse4a is AMD's and this host is Intel");
}

static void missing_features_named(void **state)
{
	(void)state;
	intel_host();
	assert_int_equal(apply("+invtsc,+clflushopt"), 0);
	static struct cpuid_buf dest;
	dest = sup;
	((struct kvm_cpuid_entry2 *)ct_get(&dest, 0x80000007, 0))->edx = 0;
	((struct kvm_cpuid_entry2 *)ct_get(&dest, 7, 0))->ebx &= ~BIT(23);
	char names[256];
	assert_true(cpu_missing_features(CT_T(&t), CT_T(&dest), names, sizeof(names)));
	assert_string_equal(names, "clflushopt, invtsc");
	assert_false(cpu_missing_features(CT_T(&t), CT_T(&sup), names, sizeof(names)));
}

/* ---- the table KVM holds (the ct_real fixture, cputest.h) ---- */

static bool decided(const struct ct_real *r, const struct cpu_feature *f)
{
	return ct_decided(&r->decides, f);
}

static bool kvm_has(const struct ct_real *r, const struct cpu_feature *f)
{
	return cpu_table_has(CT_T(r->sup), f) || ct_forced(f);
}

/* Every named feature of the vCPU's table that KVM lets the VMM decide is
 * as expected(f), and the normaliser's per-vCPU fields are there. */
static void expect_held(const struct ct_real *r, int fd, unsigned apic,
			bool (*expected)(const struct ct_real *, const struct cpu_feature *,
					 const struct cpu_config *),
			const struct cpu_config *cfg)
{
	struct cpuid_buf *held = ct_held(fd);
	assert_non_null(held);
	unsigned checked = 0;
	for (const struct cpu_feature *f = cpu_core_features; f->name; f++) {
		if (!decided(r, f))
			continue;
		bool want = expected(r, f, cfg), got = cpu_table_has(CT_T(held), f);
		if (want != got)
			fail_msg("vCPU %u: %s is %d in KVM's table, expected %d", apic, f->name,
				 got, want);
		checked++;
	}
	assert_true(checked >= 3); /* x2apic, tsc_deadline, hypervisor at least */
	assert_int_equal(ct_get(held, 1, 0)->ebx >> 24, apic);
	/* XSAVE components only for features shown. */
	const struct kvm_cpuid_entry2 *d0 = ct_get(held, 0xd, 0);
	if (d0) {
		assert_true(!(d0->eax & BIT(2)) || ct_has(held, "avx"));
		assert_true(!(d0->eax & 0xe0) || ct_has(held, "avx512f"));
		assert_true(!(d0->eax & BIT(9)) || ct_has(held, "pku"));
	}
	free(held);
}

static const struct cpu_feature_edit *edit_of(const struct cpu_config *cfg, const char *name)
{
	for (unsigned i = 0; cfg && i < cfg->nedits; i++)
		if (strcmp(cfg->edits[i].name, name) == 0)
			return &cfg->edits[i];
	return NULL;
}

/* The baseline: its features that KVM supports; then the edits. */
static bool baseline_expected(const struct ct_real *r, const struct cpu_feature *f,
			      const struct cpu_config *cfg)
{
	const struct cpu_feature_edit *e = edit_of(cfg, f->name);
	if (e)
		return e->on;
	return f->baseline && kvm_has(r, f);
}

static void held_table_is_the_default_model(void **state)
{
	struct ct_real *r = ct_real_or_skip(state);
	struct cpu_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(cpu_model_check(r->k.kvm, &cfg), 0);
	for (unsigned i = 0; i < 2; i++) {
		int fd = ct_vcpu(&r->k, &cfg, i, 2);
		assert_true(fd >= 0);
		expect_held(r, fd, i, baseline_expected, &cfg);
		close(fd);
	}
	/* NULL (a VM built without a configuration) is the default too. */
	int fd = ct_vcpu(&r->k, NULL, 2, 3);
	assert_true(fd >= 0);
	expect_held(r, fd, 2, baseline_expected, &cfg);
	close(fd);
}

/* A feature in the baseline or not, supported by KVM or not, whose bit
 * KVM lets the VMM decide. */
static const struct cpu_feature *pick(const struct ct_real *r, bool baseline, bool supported)
{
	for (const struct cpu_feature *f = cpu_core_features; f->name; f++)
		if (f->baseline == baseline && cpu_table_has(CT_T(r->sup), f) == supported &&
		    !ct_forced(f) && decided(r, f) &&
		    (f->vendor == CPU_VENDOR_OTHER || f->vendor == cpu_vendor_of(CT_T(r->sup))))
			return f;
	return NULL;
}

static void held_table_has_plus_and_minus(void **state)
{
	struct ct_real *r = ct_real_or_skip(state);
	const struct cpu_feature *extra = pick(r, false, true), *base = pick(r, true, true);
	if (!extra || !base)
		skip();
	char spec[128];
	snprintf(spec, sizeof(spec), "baseline,+%s,-%s,-x2apic,-hypervisor", extra->name,
		 base->name);
	struct cpu_config cfg;
	assert_int_equal(cpu_config_parse(spec, &cfg, why, sizeof(why)), CPU_SPEC_OK);
	assert_int_equal(cpu_model_check(r->k.kvm, &cfg), 0);
	int fd = ct_vcpu(&r->k, &cfg, 3, 4);
	assert_true(fd >= 0);
	expect_held(r, fd, 3, baseline_expected, &cfg);
	close(fd);
}

static void unsupported_plus_refused_before_boot(void **state)
{
	struct ct_real *r = ct_real_or_skip(state);
	const struct cpu_feature *missing = pick(r, false, false);
	if (!missing)
		skip();
	char spec[64];
	snprintf(spec, sizeof(spec), "+%s", missing->name);
	struct cpu_config cfg;
	assert_int_equal(cpu_config_parse(spec, &cfg, why, sizeof(why)), CPU_SPEC_OK);
	assert_int_equal(cpu_model_check(r->k.kvm, &cfg), VMM_EXIT_KVM_CAP);
	assert_int_equal(ct_vcpu(&r->k, &cfg, 4, 5), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse_model_and_features),
	    cmocka_unit_test(parse_errors),
	    cmocka_unit_test(parse_module_names),
	    cmocka_unit_test(module_needs_refuses_host_without_nested),
	    cmocka_unit_test(help_lists_models_and_features),
	    cmocka_unit_test(baseline_keeps_only_its_features),
	    cmocka_unit_test(baseline_xsave_components_follow_features),
	    cmocka_unit_test(plus_shows_minus_hides),
	    cmocka_unit_test(minus_avx_drops_its_state),
	    cmocka_unit_test(plus_refused_when_host_lacks_it),
	    cmocka_unit_test(plus_refused_for_other_vendor),
	    cmocka_unit_test(missing_features_named),
	    cmocka_unit_test_setup_teardown(held_table_is_the_default_model, ct_real_setup,
					    ct_real_teardown),
	    cmocka_unit_test_setup_teardown(held_table_has_plus_and_minus, ct_real_setup,
					    ct_real_teardown),
	    cmocka_unit_test_setup_teardown(unsupported_plus_refused_before_boot, ct_real_setup,
					    ct_real_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
