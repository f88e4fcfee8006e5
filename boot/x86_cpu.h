/*
 * x86 CPU state for entering the kernel: identity page tables, the boot
 * GDT, and the BSP's registers for the Linux 64-bit protocol (long mode,
 * paging on, RSI = zero page) or PVH (32-bit flat protected mode, paging
 * off, EBX = hvm_start_info). The builders are pure; x86_setup_regs() is
 * the only part that talks to KVM.
 */
#ifndef VMM_BOOT_X86_CPU_H
#define VMM_BOOT_X86_CPU_H

#include <linux/kvm.h>
#include <stdint.h>

#include "../mem.h"
#include "boot.h"

/* GDT layout at BOOT_GDT_ADDR. 0x10/0x18 are boot.rst's __BOOT_CS/__BOOT_DS. */
#define GDT_SEL_CODE32 0x08
#define GDT_SEL_CODE64 0x10
#define GDT_SEL_DATA 0x18
#define GDT_SEL_TSS 0x20 /* 16-byte system descriptor: slots 4 and 5 */
#define GDT_ENTRIES 6

/* Descriptor flags: access byte in bits 0-7, G/DB/L/AVL in bits 12-15. */
#define GDT_FLAGS_CODE32 0xc09b
#define GDT_FLAGS_CODE64 0xa09b
#define GDT_FLAGS_DATA 0xc093
#define GDT_FLAGS_TSS 0x008b /* busy TSS, present */
#define GDT_TSS_LIMIT 0x67

#define X86_CR0_PE (1ULL << 0)
#define X86_CR0_ET (1ULL << 4)
#define X86_CR0_PG (1ULL << 31)
#define X86_CR4_PAE (1ULL << 5)
#define X86_EFER_LME (1ULL << 8)
#define X86_EFER_LMA (1ULL << 10)
#define X86_RFLAGS_RESERVED 0x2ULL

#define PTE_PRESENT 0x1ULL
#define PTE_RW 0x2ULL
#define PTE_PS 0x80ULL
#define BOOT_PD_PAGES 4 /* 4 x 1 GiB of 2 MiB pages */

#define FPU_DEFAULT_FCW 0x37f
#define FPU_DEFAULT_MXCSR 0x1f80

uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit);
/* Decode a code/data/TSS descriptor into KVM's segment form. */
struct kvm_segment gdt_to_segment(uint64_t desc, uint16_t selector);
void x86_build_gdt(uint64_t gdt[GDT_ENTRIES]);

/* Write the GDT / the identity page tables (0-4 GiB, 2 MiB pages) into
 * guest RAM. Return 0, or -1 if RAM is too small. */
int x86_write_gdt(struct guest_mem *m);
int x86_write_page_tables(struct guest_mem *m);

/* Entry register state, applied on top of KVM's reset state. */
void x86_boot_sregs(struct kvm_sregs *s, enum boot_protocol p);
void x86_boot_regs(struct kvm_regs *r, const struct boot_setup *bs);
void x86_boot_fpu(struct kvm_fpu *f);

/* KVM_GET/SET_SREGS, KVM_SET_REGS, KVM_SET_FPU on a vCPU fd. 0 or -1. */
int x86_setup_regs(int vcpu_fd, const struct boot_setup *bs);

#endif
