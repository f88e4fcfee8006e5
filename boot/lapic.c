#include "lapic.h"

#include <string.h>
#include <sys/ioctl.h>

#include "../log.h"

uint32_t lapic_get_reg(const struct kvm_lapic_state *s, unsigned reg)
{
	uint32_t v;
	memcpy(&v, s->regs + reg, sizeof(v));
	return v;
}

void lapic_set_reg(struct kvm_lapic_state *s, unsigned reg, uint32_t val)
{
	memcpy(s->regs + reg, &val, sizeof(val));
}

static void set_delivery(struct kvm_lapic_state *s, unsigned reg, uint32_t mode)
{
	uint32_t v = lapic_get_reg(s, reg);
	lapic_set_reg(s, reg, (v & ~APIC_LVT_DELIVERY_MASK) | mode);
}

void lapic_set_lints(struct kvm_lapic_state *s)
{
	set_delivery(s, APIC_REG_LVT_LINT0, APIC_DM_EXTINT);
	set_delivery(s, APIC_REG_LVT_LINT1, APIC_DM_NMI);
}

int lapic_setup(int vcpu_fd, unsigned index)
{
	struct kvm_lapic_state s;
	if (ioctl(vcpu_fd, KVM_GET_LAPIC, &s) < 0) {
		vmm_perr("vCPU %u: KVM_GET_LAPIC", index);
		return -1;
	}
	lapic_set_lints(&s);
	if (ioctl(vcpu_fd, KVM_SET_LAPIC, &s) < 0) {
		vmm_perr("vCPU %u: KVM_SET_LAPIC", index);
		return -1;
	}
	return 0;
}
