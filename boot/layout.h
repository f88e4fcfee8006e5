/*
 * Fixed guest-physical layout of everything the boot code writes below
 * 1 MiB. The kernel itself must start at or above BOOT_KERNEL_MIN.
 *
 *   0x00500  boot GDT (6 descriptors)
 *   0x06000  PVH hvm_start_info, memmap table right after, then modlist
 *   0x07000  zero page (struct boot_params)
 *   0x08ff0  initial stack pointer (stack grows down into 0x8000..)
 *   0x09000  PML4, 0xA000 PDPT, 0xB000-0xEFFF four PDs (2 MiB pages, 0-4 GiB)
 *   0x20000  kernel command line (up to 64 KiB including the NUL)
 *   0x9fc00  MP floating pointer (last KiB of base memory, e820-reserved)
 *   0xe0000  ACPI: RSDP, then RSDT, XSDT, FADT, MADT, DSDT (up to 4 KiB;
 *            the guest also finds the RSDP by scanning 0xe0000-0xfffff)
 *   0xf0000  MP configuration table: it does not fit in the 1 KiB at
 *            0x9fc00 with 64 vCPUs
 * 0xe0000 up to 1 MiB (the BIOS area) is e820-reserved.
 */
#ifndef VMM_BOOT_LAYOUT_H
#define VMM_BOOT_LAYOUT_H

#define BOOT_GDT_ADDR 0x500ULL
#define BOOT_PVH_INFO_ADDR 0x6000ULL
#define BOOT_PVH_INFO_END 0x7000ULL
#define BOOT_ZEROPAGE_ADDR 0x7000ULL
#define BOOT_STACK_TOP 0x8ff0ULL
#define BOOT_PML4_ADDR 0x9000ULL
#define BOOT_PDPT_ADDR 0xA000ULL
#define BOOT_PD_ADDR 0xB000ULL /* 4 pages */
#define BOOT_CMDLINE_ADDR 0x20000ULL
#define BOOT_CMDLINE_MAX 0x10000ULL /* bytes, NUL included */
#define BOOT_MPF_ADDR 0x9fc00ULL
#define BOOT_MPC_ADDR 0xf0000ULL
#define BOOT_ACPI_ADDR 0xe0000ULL
#define BOOT_ACPI_END 0xf0000ULL /* = BOOT_MPC_ADDR */

/* e820 landmarks */
#define BOOT_EBDA_START 0x9fc00ULL
#define BOOT_VGA_START 0xa0000ULL
#define BOOT_BIOS_START 0xe0000ULL
#define BOOT_HIGH_START 0x100000ULL

/* Everything below this belongs to the boot structures. */
#define BOOT_KERNEL_MIN 0x100000ULL

/* Default initrd ceiling for images that do not state one (ELF). */
#define BOOT_INITRD_ADDR_MAX_DEFAULT 0x37FFFFFFULL

#define BOOT_PAGE_SIZE 0x1000ULL

#endif
