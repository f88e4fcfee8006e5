/*
 * The nested module: a guest that runs KVM itself.
 *
 *   nested.c  the module: CPU model "host", features vmx and svm, its
 *             hooks and seccomp allowances
 *   host.c    can this host run nested guests? (before boot)
 *   state.c   each vCPU's nested state (KVM_GET/SET_NESTED_STATE) in
 *             snapshots and migration
 */
#ifndef VMM_MODULES_NESTED_H
#define VMM_MODULES_NESTED_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>

#include "boot/cpu_model.h"
#include "vmm.h"

/* ---- host.c ---- */

/* What a host offers for nesting. */
struct nested_host {
	enum cpu_vendor vendor; /* of KVM's CPUID */
	/* The vendor module's `nested` parameter: 1 on, 0 off, -1 the module
	 * is not loaded (no /sys/module/kvm_{intel,amd}/parameters/nested). */
	int param;
	bool cap; /* KVM_CAP_NESTED_STATE */
};

/* kvm_intel's parameter reads Y or N, kvm_amd's 1 or 0: 1, 0, or -1 for
 * anything else. */
int nested_param_value(const char *text);
/* The host's CPU vendor, as KVM's supported CPUID says. */
enum cpu_vendor nested_host_vendor(int kvm_fd);
/* Fill h from this host: KVM's vendor and capability through kvm_fd, the
 * parameter from sysfs_root ("/sys" but in tests). */
void nested_host_probe(int kvm_fd, const char *sysfs_root, struct nested_host *h);
/* Can a guest see `feature` ("vmx" or "svm") on this host? 0, or
 * VMM_EXIT_KVM_CAP with what is missing and how to enable it in msg. */
int nested_diagnose(const char *feature, const struct nested_host *h, char *msg, size_t n);
/* The module's check: the configuration shows vmx or svm. */
int nested_check(const struct vm_config *cfg);

/* ---- state.c ---- */

/* What to do with a saved record of nested state. */
enum nested_record { NESTED_RECORD_BAD = -1, NESTED_RECORD_SKIP, NESTED_RECORD_LOAD };
/* Does the state hold anything (a vCPU in VMX operation or in a nested
 * guest)? A vCPU that never used nesting has nothing to carry. */
bool nested_state_in_use(const struct kvm_nested_state *hdr);
/* Check a record against this host (vendor, and KVM_CAP_NESTED_STATE's
 * answer `max`: the largest state it takes, 0 without the capability).
 * NESTED_RECORD_BAD with the reason in why. */
enum nested_record nested_record_check(const void *data, size_t len, enum cpu_vendor host, int max,
				       char *why, size_t n);
/* The module's vcpu_save and vcpu_restore (module.h). */
long nested_vcpu_save(struct vcpu *v, void *buf, size_t cap);
int nested_vcpu_restore(struct vcpu *v, const void *data, size_t len);

#endif
