/*
 * Boot MSRs for every vCPU: SYSENTER/SYSCALL state and KERNEL_GS_BASE
 * cleared, TSC 0, fast strings on in IA32_MISC_ENABLE, MTRRs enabled with
 * write-back default. An MSR that KVM_GET_MSR_INDEX_LIST does not list is
 * skipped, so the set works on every host.
 */
#ifndef VMM_BOOT_MSR_H
#define VMM_BOOT_MSR_H

#include <linux/kvm.h>
#include <stdint.h>

#define MSR_IA32_TSC 0x00000010
#define MSR_IA32_SYSENTER_CS 0x00000174
#define MSR_IA32_SYSENTER_ESP 0x00000175
#define MSR_IA32_SYSENTER_EIP 0x00000176
#define MSR_IA32_MISC_ENABLE 0x000001a0
#define MSR_MTRR_DEF_TYPE 0x000002ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

#define MISC_ENABLE_FAST_STRING 0x1ULL
#define MTRR_DEF_TYPE_WB_ENABLED 0x806ULL /* E (bit 11) | type WB (6) */

#define MSR_BOOT_MAX 16

/* The boot MSRs KVM lists in `supported` (n indices), in a fixed order,
 * written to out[] (room for `cap`). `misc_enable` is the vCPU's current
 * IA32_MISC_ENABLE; fast strings are ORed into it. Returns the count. */
unsigned msr_boot_entries(const uint32_t *supported, unsigned n, uint64_t misc_enable,
			  struct kvm_msr_entry *out, unsigned cap);

/* KVM_GET_MSR_INDEX_LIST (cached), then KVM_SET_MSRS on the vCPU. */
int msr_setup(int kvm_fd, int vcpu_fd, unsigned index);

#endif
