/* Local APIC: LINT0 delivers ExtINT (the 8259), LINT1 delivers NMI. */
#ifndef VMM_BOOT_LAPIC_H
#define VMM_BOOT_LAPIC_H

#include <linux/kvm.h>
#include <stdint.h>

#define APIC_REG_LVT_LINT0 0x350
#define APIC_REG_LVT_LINT1 0x360
#define APIC_LVT_DELIVERY_MASK 0x700u
#define APIC_DM_NMI 0x400u
#define APIC_DM_EXTINT 0x700u

uint32_t lapic_get_reg(const struct kvm_lapic_state *s, unsigned reg);
void lapic_set_reg(struct kvm_lapic_state *s, unsigned reg, uint32_t val);

/* Set the LINT0/LINT1 delivery modes, keeping every other bit (the mask
 * bit included: KVM leaves the BSP's LINT0 unmasked, the rest masked). */
void lapic_set_lints(struct kvm_lapic_state *s);

/* KVM_GET_LAPIC, lapic_set_lints, KVM_SET_LAPIC. 0, or -1 with a message. */
int lapic_setup(int vcpu_fd, unsigned index);

#endif
