/*
 * The nested module (modules/nested/): the "host" model and the vmx / svm
 * features over crafted tables and in the table KVM holds, the host checks
 * with their exact messages, and nested-state records. Built only with the
 * module.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "cputest.h"
#include "modules/nested/nested.h"
#include "module.h"
#include "seccomp/sandbox.h"

static struct cpuid_buf sup, t;
static char why[512];

#define BIT(n) (1u << (n))

static void crafted_host(enum cpu_vendor v, bool ext)
{
	memset(&sup, 0, sizeof(sup));
	if (v == CPU_VENDOR_AMD)
		ct_add(&sup, 0, 0, 0x10, 0x68747541, 0x444d4163, 0x69746e65);
	else
		ct_add(&sup, 0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69);
	ct_add(&sup, 1, 0, 0x906ea, 0x800,
	       BIT(28) | BIT(26) | (ext && v != CPU_VENDOR_AMD ? BIT(5) : 0), 0x178bfbff);
	ct_add(&sup, 7, 0, 0, BIT(16), 0, 0); /* avx512f, so AVX-512 state is KVM's too */
	ct_add(&sup, 0xd, 0, 0xe7, 0xa80, 0xa80, 0);
	ct_add(&sup, 0xd, 2, 0x100, 0x240, 0, 0);
	ct_add(&sup, 0xd, 5, 0x40, 0x440, 0, 0);
	ct_add(&sup, 0x14, 0, 1, 0, 0, 0);
	ct_add(&sup, 0x80000000, 0, 0x8000000a, 0, 0, 0);
	ct_add(&sup, 0x80000001, 0, 0, 0, (ext && v == CPU_VENDOR_AMD ? BIT(2) : 0) | BIT(6),
	       0x2c100800);
	if (ext && v == CPU_VENDOR_AMD)
		ct_add(&sup, 0x8000000a, 0, 1, 0x8000, 0, 0x1ff);
	t = sup;
}

static int apply(const char *spec)
{
	struct cpu_config cfg;
	assert_int_equal(cpu_config_parse(spec, &cfg, why, sizeof(why)), CPU_SPEC_OK);
	why[0] = '\0';
	return cpu_model_apply(&cfg, CT_T(&sup), CT_T(&t), CPUID_MAX_ENTRIES, why, sizeof(why));
}

/* ---- the module's names ---- */

static void module_provides_host_vmx_svm(void **state)
{
	(void)state;
	const struct vmm_module *m = module_find("nested");
	assert_non_null(m);
	assert_ptr_equal(m->vcpu_save, nested_vcpu_save);
	assert_ptr_equal(m->vcpu_restore, nested_vcpu_restore);
	assert_non_null(cpu_model_find("host"));
	const struct cpu_feature *vmx = cpu_feature_find("vmx"), *svm = cpu_feature_find("svm");
	assert_non_null(vmx);
	assert_non_null(svm);
	assert_true(vmx->leaf == 1 && vmx->reg == CPU_REG_ECX && vmx->bit == 5);
	assert_true(svm->leaf == 0x80000001 && svm->reg == CPU_REG_ECX && svm->bit == 2);
	assert_int_equal(vmx->vendor, CPU_VENDOR_INTEL);
	assert_int_equal(svm->vendor, CPU_VENDOR_AMD);
	assert_false(vmx->baseline || svm->baseline);
}

/* ---- the host model and vmx / svm over crafted hosts ---- */

static void host_model_passes_everything(void **state)
{
	(void)state;
	crafted_host(CPU_VENDOR_INTEL, true);
	assert_int_equal(apply("host"), 0);
	assert_int_equal(t.nent, sup.nent);
	assert_memory_equal(t.entries, sup.entries, sup.nent * sizeof(sup.entries[0]));
	/* -avx: its state goes with it, the rest stays. */
	assert_int_equal(apply("host,-avx"), 0);
	assert_false(ct_has(&t, "avx"));
	assert_int_equal(ct_get(&t, 0xd, 0)->eax, 0xe3);
	assert_null(ct_get(&t, 0xd, 2));
	assert_non_null(ct_get(&t, 0x14, 0));
}

static void vmx_shown_only_when_asked(void **state)
{
	(void)state;
	crafted_host(CPU_VENDOR_INTEL, true);
	assert_int_equal(apply("baseline"), 0);
	assert_false(ct_has(&t, "vmx"));
	t = sup;
	assert_int_equal(apply("+vmx"), 0);
	assert_true(ct_has(&t, "vmx"));
	t = sup;
	assert_int_equal(apply("host,-vmx"), 0);
	assert_false(ct_has(&t, "vmx"));
	/* A host without nesting: KVM does not list VMX. */
	crafted_host(CPU_VENDOR_INTEL, false);
	assert_int_equal(apply("+vmx"), VMM_EXIT_KVM_CAP);
	assert_string_equal(why,
			    "+vmx: this host's KVM does not support vmx (KVM_GET_SUPPORTED_CPUID)");
}

static void svm_brings_its_leaf(void **state)
{
	(void)state;
	crafted_host(CPU_VENDOR_AMD, true);
	assert_int_equal(apply("baseline"), 0);
	assert_false(ct_has(&t, "svm"));
	assert_null(ct_get(&t, 0x8000000a, 0));
	t = sup;
	assert_int_equal(apply("+svm"), 0);
	assert_true(ct_has(&t, "svm"));
	const struct kvm_cpuid_entry2 *a = ct_get(&t, 0x8000000a, 0);
	assert_non_null(a);
	assert_int_equal(a->ebx, 0x8000);
	assert_int_equal(a->edx, 0x1ff);
	t = sup;
	assert_int_equal(apply("host,-svm"), 0);
	assert_false(ct_has(&t, "svm"));
	assert_null(ct_get(&t, 0x8000000a, 0));
}

static void other_vendor_refused(void **state)
{
	(void)state;
	crafted_host(CPU_VENDOR_AMD, true);
	assert_int_equal(apply("+vmx"), VMM_EXIT_KVM_CAP);
	assert_string_equal(why, "+vmx: vmx is Intel's and this host is AMD");
	crafted_host(CPU_VENDOR_INTEL, true);
	assert_int_equal(apply("+svm"), VMM_EXIT_KVM_CAP);
	assert_string_equal(why, "+svm: svm is AMD's and this host is Intel");
}

/* ---- the table KVM holds (the ct_real fixture, cputest.h) ---- */

/* Every feature KVM lets the VMM decide: as KVM supports it (host), but
 * those hidden. */
static void expect_host(const struct ct_real *r, int fd, const char *hidden)
{
	struct cpuid_buf *held = ct_held(fd);
	assert_non_null(held);
	unsigned checked = 0;
	for (size_t m = 0; m <= module_count(); m++) {
		const struct cpu_feature *f =
		    m < module_count() ? module_at(m)->cpu_features : cpu_core_features;
		for (; f && f->name; f++) {
			if (!ct_decided(&r->decides, f))
				continue;
			bool want = (cpu_table_has(CT_T(r->sup), f) || ct_forced(f)) &&
				    !strstr(hidden, f->name);
			if (cpu_table_has(CT_T(held), f) != want)
				fail_msg("%s is %d in KVM's table, expected %d", f->name, !want,
					 want);
			checked++;
		}
	}
	assert_true(checked >= 3);
	free(held);
}

static void held_table_is_host(void **state)
{
	struct ct_real *r = ct_real_or_skip(state);
	struct cpu_config cfg;
	assert_int_equal(cpu_config_parse("host", &cfg, why, sizeof(why)), CPU_SPEC_OK);
	assert_int_equal(cpu_model_check(r->k.kvm, &cfg), 0);
	int fd = ct_vcpu(&r->k, &cfg, 0, 1);
	assert_true(fd >= 0);
	expect_host(r, fd, "");
	close(fd);
	assert_int_equal(cpu_config_parse("host,-x2apic,-tsc_deadline", &cfg, why, sizeof(why)),
			 CPU_SPEC_OK);
	fd = ct_vcpu(&r->k, &cfg, 1, 2);
	assert_true(fd >= 0);
	expect_host(r, fd, "x2apic tsc_deadline");
	close(fd);
}

/* +vmx where KVM supports it (a host with nesting on) is shown; elsewhere
 * it is refused before any vCPU exists. */
static void held_table_vmx(void **state)
{
	struct ct_real *r = ct_real_or_skip(state);
	const char *ext = cpu_vendor_of(CT_T(r->sup)) == CPU_VENDOR_AMD ? "+svm" : "+vmx";
	struct cpu_config cfg;
	assert_int_equal(cpu_config_parse(ext, &cfg, why, sizeof(why)), CPU_SPEC_OK);
	const struct cpu_feature *f = cpu_feature_find(ext + 1);
	if (!cpu_table_has(CT_T(r->sup), f)) {
		assert_int_equal(cpu_model_check(r->k.kvm, &cfg), VMM_EXIT_KVM_CAP);
		assert_int_equal(ct_vcpu(&r->k, &cfg, 2, 3), -1);
		return;
	}
	int fd = ct_vcpu(&r->k, &cfg, 2, 3);
	assert_true(fd >= 0);
	struct cpuid_buf *held = ct_held(fd);
	assert_true(cpu_table_has(CT_T(held), f));
	free(held);
	close(fd);
}

/* ---- can this host nest? ---- */

static void param_values(void **state)
{
	(void)state;
	assert_int_equal(nested_param_value("Y"), 1);
	assert_int_equal(nested_param_value("1"), 1);
	assert_int_equal(nested_param_value("N"), 0);
	assert_int_equal(nested_param_value("0"), 0);
	assert_int_equal(nested_param_value(""), -1);
	assert_int_equal(nested_param_value("yes"), -1);
}

static void diagnose_messages(void **state)
{
	(void)state;
	static const struct {
		const char *feature;
		struct nested_host h;
		int rc;
		const char *msg;
	} cases[] = {
	    /* This project's PVM hosts: no kvm_intel, no capability. */
	    {"vmx",
	     {CPU_VENDOR_INTEL, -1, false},
	     VMM_EXIT_KVM_CAP,
	     "--cpu +vmx: this host cannot run nested guests: kvm_intel is not loaded (no "
	     "/sys/module/kvm_intel/parameters/nested), and KVM does not report "
	     "KVM_CAP_NESTED_STATE. On a host with VT-x, enable nesting with: modprobe -r "
	     "kvm_intel && modprobe kvm_intel nested=1"},
	    {"vmx",
	     {CPU_VENDOR_INTEL, 0, true},
	     VMM_EXIT_KVM_CAP,
	     "--cpu +vmx: this host cannot run nested guests: nesting is off in kvm_intel "
	     "(/sys/module/kvm_intel/parameters/nested). On a host with VT-x, enable nesting "
	     "with: modprobe -r kvm_intel && modprobe kvm_intel nested=1"},
	    {"vmx",
	     {CPU_VENDOR_INTEL, 1, false},
	     VMM_EXIT_KVM_CAP,
	     "--cpu +vmx: this host cannot run nested guests: KVM does not report "
	     "KVM_CAP_NESTED_STATE (Linux 4.19 or later has it)"},
	    {"vmx", {CPU_VENDOR_INTEL, 1, true}, 0, ""},
	    {"svm",
	     {CPU_VENDOR_AMD, 0, false},
	     VMM_EXIT_KVM_CAP,
	     "--cpu +svm: this host cannot run nested guests: nesting is off in kvm_amd "
	     "(/sys/module/kvm_amd/parameters/nested), and KVM does not report "
	     "KVM_CAP_NESTED_STATE. On a host with AMD-V, enable nesting with: modprobe -r "
	     "kvm_amd && modprobe kvm_amd nested=1"},
	    {"svm", {CPU_VENDOR_AMD, 1, true}, 0, ""},
	    {"vmx",
	     {CPU_VENDOR_AMD, 1, true},
	     VMM_EXIT_KVM_CAP,
	     "--cpu +vmx: vmx is Intel's hardware virtualization and this host is AMD: ask for "
	     "+svm instead"},
	    {"svm",
	     {CPU_VENDOR_INTEL, 1, true},
	     VMM_EXIT_KVM_CAP,
	     "--cpu +svm: svm is AMD's hardware virtualization and this host is Intel: ask for "
	     "+vmx instead"},
	    {"vmx",
	     {CPU_VENDOR_OTHER, -1, false},
	     VMM_EXIT_KVM_CAP,
	     "--cpu +vmx: this host's KVM reports neither an Intel nor an AMD CPU; nesting "
	     "needs VT-x (+vmx) or AMD-V (+svm)"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char msg[512] = "";
		assert_int_equal(nested_diagnose(cases[i].feature, &cases[i].h, msg, sizeof(msg)),
				 cases[i].rc);
		assert_string_equal(msg, cases[i].msg);
	}
}

static void write_param(const char *root, const char *mod, const char *value)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/module", root);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/module/%s", root, mod);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/module/%s/parameters", root, mod);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/module/%s/parameters/nested", root, mod);
	if (!value) {
		unlink(path);
		return;
	}
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", value);
	fclose(f);
}

static void probe_reads_sysfs_and_kvm(void **state)
{
	struct ct_real *r = ct_real_or_skip(state);
	char root[] = "/tmp/vmm-nested-XXXXXX";
	assert_non_null(mkdtemp(root));
	struct nested_host h;
	const char *values[] = {"Y", "N", NULL};
	const int want[] = {1, 0, -1};
	for (size_t i = 0; i < 3; i++) {
		write_param(root, "kvm_intel", values[i]);
		write_param(root, "kvm_amd",
			    values[i] && values[i][0] == 'Y' ? "1"
			    : values[i]			     ? "0"
							     : NULL);
		nested_host_probe(r->k.kvm, root, &h);
		assert_int_equal(h.param, want[i]);
		assert_int_equal(h.vendor, cpu_vendor_of(CT_T(r->sup)));
		assert_int_equal(h.cap,
				 ioctl(r->k.kvm, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE) > 0);
	}
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

/* The module's check on this host says what the diagnosis says. */
static void check_matches_this_host(void **state)
{
	struct ct_real *r = ct_real_or_skip(state);
	struct vm_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.cpus = 1;
	assert_int_equal(nested_check(&cfg), 0); /* no vmx, no svm: nothing to check */
	struct nested_host h;
	nested_host_probe(r->k.kvm, "/sys", &h);
	const char *ext = h.vendor == CPU_VENDOR_AMD ? "+svm" : "+vmx";
	assert_int_equal(cpu_config_parse(ext, &cfg.cpu, why, sizeof(why)), CPU_SPEC_OK);
	char msg[512];
	assert_int_equal(nested_check(&cfg), nested_diagnose(ext + 1, &h, msg, sizeof(msg)));
	assert_int_equal(modules_check(&cfg), nested_diagnose(ext + 1, &h, msg, sizeof(msg)));
}

/* ---- nested state records ---- */

static struct kvm_nested_state vmx_hdr(uint64_t vmxon, uint32_t flags, uint32_t size)
{
	struct kvm_nested_state s;
	memset(&s, 0, sizeof(s));
	s.format = KVM_STATE_NESTED_FORMAT_VMX;
	s.flags = (uint16_t)flags;
	s.size = size;
	s.hdr.vmx.vmxon_pa = vmxon;
	s.hdr.vmx.vmcs12_pa = ~0ull;
	return s;
}

static void record_checks(void **state)
{
	(void)state;
	static uint8_t rec[128 + 8192];
	const size_t hs = sizeof(struct kvm_nested_state);
	struct kvm_nested_state s = vmx_hdr(~0ull, 0, hs);
	memcpy(rec, &s, hs);
	/* Not in VMX operation: nothing to load, on any host. */
	assert_int_equal(nested_record_check(rec, hs, CPU_VENDOR_AMD, 0, why, sizeof(why)),
			 NESTED_RECORD_SKIP);
	assert_false(nested_state_in_use(&s));
	/* In VMX operation. */
	s = vmx_hdr(0x1000, 0, sizeof(rec));
	memcpy(rec, &s, hs);
	assert_true(nested_state_in_use(&s));
	assert_int_equal(
	    nested_record_check(rec, sizeof(rec), CPU_VENDOR_INTEL, 8320, why, sizeof(why)),
	    NESTED_RECORD_LOAD);
	assert_int_equal(
	    nested_record_check(rec, sizeof(rec), CPU_VENDOR_INTEL, 0, why, sizeof(why)),
	    NESTED_RECORD_BAD);
	assert_string_equal(why, "the guest was running nested guests, and this host's KVM does "
				 "not report KVM_CAP_NESTED_STATE");
	assert_int_equal(
	    nested_record_check(rec, sizeof(rec), CPU_VENDOR_AMD, 8320, why, sizeof(why)),
	    NESTED_RECORD_BAD);
	assert_string_equal(why, "it holds Intel VMX state, which this host's CPU cannot run");
	assert_int_equal(
	    nested_record_check(rec, sizeof(rec), CPU_VENDOR_INTEL, 4096, why, sizeof(why)),
	    NESTED_RECORD_BAD);
	assert_string_equal(why, "8320 bytes, more than this host's KVM takes (4096)");
	/* Malformed. */
	assert_int_equal(nested_record_check(rec, 100, CPU_VENDOR_INTEL, 8320, why, sizeof(why)),
			 NESTED_RECORD_BAD);
	assert_string_equal(why, "a record of 100 bytes is shorter than its header (128)");
	assert_int_equal(nested_record_check(rec, 200, CPU_VENDOR_INTEL, 8320, why, sizeof(why)),
			 NESTED_RECORD_BAD);
	assert_string_equal(why, "the header says 8320 bytes, the record has 200");
	s.format = 7;
	memcpy(rec, &s, hs);
	assert_int_equal(
	    nested_record_check(rec, sizeof(rec), CPU_VENDOR_INTEL, 8320, why, sizeof(why)),
	    NESTED_RECORD_BAD);
	assert_string_equal(why, "unknown format 7");
	/* SVM: state only inside a nested guest. */
	memset(&s, 0, sizeof(s));
	s.format = KVM_STATE_NESTED_FORMAT_SVM;
	s.size = hs;
	memcpy(rec, &s, hs);
	assert_int_equal(nested_record_check(rec, hs, CPU_VENDOR_AMD, 0, why, sizeof(why)),
			 NESTED_RECORD_SKIP);
	s.flags = KVM_STATE_NESTED_GUEST_MODE;
	s.size = 128 + 4096;
	memcpy(rec, &s, hs);
	assert_int_equal(nested_record_check(rec, s.size, CPU_VENDOR_AMD, 8320, why, sizeof(why)),
			 NESTED_RECORD_LOAD);
}

/* A real vCPU: nothing to save where nesting is unused (or unavailable);
 * a record of a guest that used it is refused here with the reason. */
static void vcpu_save_and_restore(void **state)
{
	struct ct_real *r = ct_real_or_skip(state);
	struct vm vm;
	memset(&vm, 0, sizeof(vm));
	vm.kvm_fd = r->k.kvm;
	vm.vm_fd = r->k.vm;
	struct vcpu *v = &vm.vcpus[0];
	v->vm = &vm;
	v->index = 5;
	v->fd = ct_vcpu(&r->k, NULL, 5, 6);
	assert_true(v->fd >= 0);
	int max = ioctl(r->k.kvm, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE);
	static uint8_t buf[64 * 1024];
	assert_int_equal(nested_vcpu_save(v, buf, sizeof(buf)), 0);
	if (max > 0)
		assert_int_equal(nested_vcpu_save(v, buf, 64), -1);
	struct kvm_nested_state s = vmx_hdr(~0ull, 0, sizeof(s));
	if (cpu_vendor_of(CT_T(r->sup)) == CPU_VENDOR_AMD)
		s.format = KVM_STATE_NESTED_FORMAT_SVM;
	assert_int_equal(nested_vcpu_restore(v, &s, sizeof(s)), 0); /* nothing in use */
	if (max <= 0) {
		s.hdr.vmx.vmxon_pa = 0x1000;
		s.flags = KVM_STATE_NESTED_GUEST_MODE;
		assert_int_equal(nested_vcpu_restore(v, &s, sizeof(s)), -1);
	}
	assert_int_equal(nested_vcpu_restore(v, &s, 10), -1);
	close(v->fd);
}

/* Saving nested state is allowed where it happens: a snapshot runs on
 * the sandboxed main thread (restoring is done before any filter). */
static void seccomp_allows_nested_state(void **state)
{
	(void)state;
	const struct sandbox_rules *tables[32];
	size_t n = sandbox_tables(SANDBOX_MAIN, true, tables, 32);
	bool found = false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(tables[i]->what, "nested") != 0)
			continue;
		found = true;
		for (size_t j = 0; j < tables[i]->n; j++) {
			const struct sandbox_rule *r = &tables[i]->rules[j];
			assert_int_equal(r->nr, SCMP_SYS(ioctl));
			assert_true(r->arg[0].datum_b == KVM_GET_NESTED_STATE ||
				    r->arg[0].datum_b == KVM_CHECK_EXTENSION);
		}
	}
	assert_true(found);
	n = sandbox_tables(SANDBOX_VCPU, true, tables, 32);
	for (size_t i = 0; i < n; i++)
		assert_string_not_equal(tables[i]->what, "nested");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(module_provides_host_vmx_svm),
	    cmocka_unit_test(host_model_passes_everything),
	    cmocka_unit_test(vmx_shown_only_when_asked),
	    cmocka_unit_test(svm_brings_its_leaf),
	    cmocka_unit_test(other_vendor_refused),
	    cmocka_unit_test_setup_teardown(held_table_is_host, ct_real_setup, ct_real_teardown),
	    cmocka_unit_test_setup_teardown(held_table_vmx, ct_real_setup, ct_real_teardown),
	    cmocka_unit_test(param_values),
	    cmocka_unit_test(diagnose_messages),
	    cmocka_unit_test_setup_teardown(probe_reads_sysfs_and_kvm, ct_real_setup,
					    ct_real_teardown),
	    cmocka_unit_test_setup_teardown(check_matches_this_host, ct_real_setup,
					    ct_real_teardown),
	    cmocka_unit_test(record_checks),
	    cmocka_unit_test_setup_teardown(vcpu_save_and_restore, ct_real_setup, ct_real_teardown),
	    cmocka_unit_test(seccomp_allows_nested_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
