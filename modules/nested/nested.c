/*
 * The nested module: the CPU model "host" (everything KVM supports), the
 * features vmx and svm (hardware virtualization for the guest, so it can
 * run KVM itself), the host checks they need before boot, and the vCPUs'
 * nested state in snapshots and migration. See nested.h for the files.
 */
#include <linux/kvm.h>

#include "boot/cpu_model.h"
#include "module.h"
#include "nested.h"
#include "seccomp/sandbox.h"

static const struct cpu_model nested_models[] = {
    {
	.name = "host",
	.help = "everything this host's KVM supports (KVM_GET_SUPPORTED_CPUID); not "
		"migration-safe",
	.filter = NULL,
	.xsave_ungoverned = ~0ull,
    },
    {.name = NULL},
};

/* Intel SDM: CPUID.1:ECX[5] VMX. AMD APM: CPUID Fn8000_0001_ECX[2] SVM,
 * with the SVM features (nested paging, ...) in leaf 0x8000000A. */
static const struct cpu_feature nested_features[] = {
    {"vmx", 1, 0, CPU_REG_ECX, 5, CPU_VENDOR_INTEL, false, 0},
    {"svm", 0x80000001, 0, CPU_REG_ECX, 2, CPU_VENDOR_AMD, false, 0x8000000a},
    {NULL, 0, 0, 0, 0, 0, false, 0},
};

/* A snapshot or a migration reads the vCPUs' state on the main thread,
 * once it is sandboxed (modules/migration/seccomp.c); restoring happens
 * while the VM is built, before any filter, so KVM_SET_NESTED_STATE needs
 * no allowance. */
static const struct sandbox_rule nested_rules[] = {
    SB_IOCTL(KVM_CHECK_EXTENSION), /* KVM_CAP_NESTED_STATE: the state's size */
    SB_IOCTL(KVM_GET_NESTED_STATE),
};
static SANDBOX_RULES(nested_main, SANDBOX_MAIN, "nested", nested_rules);
SANDBOX_EXTRA(nested_main);

static const struct vmm_module nested_module = {
    .name = "nested",
    .check = nested_check,
    .cpu_models = nested_models,
    .cpu_features = nested_features,
    .vcpu_save = nested_vcpu_save,
    .vcpu_restore = nested_vcpu_restore,
};

VMM_MODULE(nested_module);
