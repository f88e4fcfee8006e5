/* boot_setup_vcpu(): per-vCPU CPUID, MSRs, LAPIC, and the BSP's registers. */
#include "boot.h"
#include "cpuid.h"
#include "lapic.h"
#include "msr.h"
#include "x86_cpu.h"

int boot_setup_vcpu(struct vm *vm, struct vcpu *vcpu, const struct boot_setup *bs)
{
	unsigned ncpus = vm->ncpus ? vm->ncpus : 1;
	const struct cpu_config *cpu = vm->cfg ? &vm->cfg->cpu : NULL;
	if (cpuid_setup(vm->kvm_fd, vcpu->fd, cpu, vcpu->index, ncpus) < 0 ||
	    msr_setup(vm->kvm_fd, vcpu->fd, vcpu->index) < 0 ||
	    lapic_setup(vcpu->fd, vcpu->index) < 0)
		return -1;
	/* APs stay in KVM's wait-for-SIPI state; the guest starts them. */
	if (vcpu->index == 0 && x86_setup_regs(vcpu->fd, bs) < 0)
		return -1;
	return 0;
}
