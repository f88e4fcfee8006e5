/* /dev/kvm: open, version and capability checks, VM creation. */
#ifndef VMM_KVM_H
#define VMM_KVM_H

#include "vmm.h"

/* Open the KVM device and check the API version and every capability the
 * VMM relies on. Returns 0 and sets *fd, or an enum vmm_exit status
 * (VMM_EXIT_NO_KVM, VMM_EXIT_KVM_PERM, VMM_EXIT_KVM_CAP) with a one-line
 * message printed. The device path is /dev/kvm unless VMM_KVM_DEVICE is
 * set (for tests and unusual hosts). */
int kvm_open_checked(unsigned ncpus, int *fd);

/* The 8259 state the VM starts with (see kvm.c). */
#define PIC_MASTER_VECTOR_BASE 0x20
#define PIC_SLAVE_VECTOR_BASE 0x28
#define PIC_MASTER_IMR 0xfb /* all masked but IRQ2, the cascade */
#define PIC_SLAVE_IMR 0xff

/* Create the VM: in-kernel irqchip and PIT, TSS and identity-map pages.
 * Returns 0 or an enum vmm_exit status with a message printed. */
int kvm_create_vm(struct vm *vm);

/* Name of a required capability that is missing, for tests; NULL if all
 * are present. `disabled` names one capability to treat as missing (the
 * VMM_TEST_MISSING_CAP environment knob), or NULL. */
const char *kvm_missing_cap(int kvm_fd, const char *disabled);

#endif
