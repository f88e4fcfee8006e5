/*
 * Guest CPUID: KVM_GET_SUPPORTED_CPUID once, then a per-vCPU normalised
 * copy (APIC ids, topology, hypervisor leaves, no PMU), filtered by the CPU
 * model (cpu_model.h) and set with KVM_SET_CPUID2. cpuid_normalise() is
 * pure.
 */
#ifndef VMM_BOOT_CPUID_H
#define VMM_BOOT_CPUID_H

#include <asm/kvm_para.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#define CPUID_MAX_ENTRIES 512

/* struct kvm_cpuid2 with room for its entries. */
struct cpuid_buf {
	uint32_t nent;
	uint32_t padding;
	struct kvm_cpuid_entry2 entries[CPUID_MAX_ENTRIES];
};

#define CPUID_SIG_KVM_EBX 0x4b4d564b /* "KVMK" */
#define CPUID_SIG_KVM_ECX 0x564b4d56 /* "VMKV" */
#define CPUID_SIG_KVM_EDX 0x0000004d /* "M\0\0\0" */

#define CPUID_1_ECX_X2APIC (1u << 21)
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)

/* KVM paravirt features passed through when KVM supports them: those
 * that need nothing from the VMM. */
#define CPUID_KVM_FEATURES_ALLOWED                                                                 \
	((1u << KVM_FEATURE_CLOCKSOURCE) | (1u << KVM_FEATURE_NOP_IO_DELAY) |                      \
	 (1u << KVM_FEATURE_CLOCKSOURCE2) | (1u << KVM_FEATURE_ASYNC_PF) |                         \
	 (1u << KVM_FEATURE_STEAL_TIME) | (1u << KVM_FEATURE_PV_EOI) |                             \
	 (1u << KVM_FEATURE_PV_UNHALT) | (1u << KVM_FEATURE_PV_TLB_FLUSH) |                        \
	 (1u << KVM_FEATURE_ASYNC_PF_VMEXIT) | (1u << KVM_FEATURE_PV_SEND_IPI) |                   \
	 (1u << KVM_FEATURE_POLL_CONTROL) | (1u << KVM_FEATURE_PV_SCHED_YIELD) |                   \
	 (1u << KVM_FEATURE_ASYNC_PF_INT) | (1u << KVM_FEATURE_CLOCKSOURCE_STABLE_BIT))

/* log2 of the APIC-id space for ncpus cores of one thread each. */
unsigned cpuid_core_shift(unsigned ncpus);

/* Build in `out` (room for `cap` entries) the CPUID of vCPU `apic_id` out
 * of `ncpus`, from KVM's supported table `sup`:
 *   leaf 1: EBX[31:24] APIC id, EBX[23:16] ncpus, HTT iff ncpus > 1,
 *           ECX hypervisor and x2APIC bits;
 *   leaf 4: cores-per-package and cache-sharing fields;
 *   leaf 0xA: zeroed (no PMU);
 *   leaves 0xB and 0x1F (0x1F only if KVM lists it): SMT level (1 thread),
 *           core level (ncpus), end, with the x2APIC id in every EDX;
 *   0x40000000: "KVMKVMKVM\0\0\0", max leaf 0x40000001;
 *   0x40000001: KVM's features within CPUID_KVM_FEATURES_ALLOWED;
 *   AMD 0x80000008 ECX / 0x8000001E: core count and ids.
 * Returns 0, or -1 if `cap` is too small. */
int cpuid_normalise(const struct kvm_cpuid2 *sup, struct kvm_cpuid2 *out, unsigned cap,
		    unsigned apic_id, unsigned ncpus);

/* Find an entry (index ignored unless the entry's index is significant);
 * NULL if absent. */
const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid2 *c, uint32_t function,
					  uint32_t index);

/* KVM_GET_SUPPORTED_CPUID, cached after the first call (one host, one
 * answer). 0, or -1 with a message. */
int cpuid_get_supported(int kvm_fd, struct cpuid_buf *dst);

struct cpu_config;
/* KVM_GET_SUPPORTED_CPUID, normalise, apply the CPU model `cpu` (NULL: the
 * default), and KVM_SET_CPUID2 on the vCPU. 0, or -1 with a message. */
int cpuid_setup(int kvm_fd, int vcpu_fd, const struct cpu_config *cpu, unsigned apic_id,
		unsigned ncpus);

#endif
