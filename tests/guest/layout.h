/* Constants shared by the assembly and C parts of the test guest. */
#ifndef GUEST_LAYOUT_H
#define GUEST_LAYOUT_H

#define LOAD_ADDR 0x100000   /* image base (PVH 32-bit entry at +0) */
#define ENTRY64_OFFSET 0x200 /* 64-bit entry (ELF e_entry, bzImage +0x200) */
#define KERNEL_INFO_OFFSET 0x100

/* GDT selectors */
#define SEL_KCODE 0x08 /* 64-bit ring-0 code */
#define SEL_KDATA 0x10
#define SEL_KCODE32 0x18 /* 32-bit ring-0 code: PVH stub and AP start-up */
#define SEL_UDATA 0x20
#define SEL_UCODE 0x28
#define SEL_TSS 0x30
#define GDT_ENTRIES 8

/* How ring 0 was entered (first argument of kmain). */
#define BOOT_LINUX64 0
#define BOOT_PVH 1
#define BOOT_AP 2

#define CR0_PE 0x1
#define CR0_MP 0x2
#define CR0_ET 0x10
#define CR0_NE 0x20
#define CR0_WP 0x10000
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define MSR_EFER 0xC0000080
#define EFER_LME 0x100

#define KSTACK_SIZE 16384
#define USTACK_SIZE 65536

/* The static page tables map [0, 4 GiB); RAM above is mapped at boot up to
 * MAX_PHYS_GIB. */
#define MAX_PHYS_GIB 64

#endif
