/*
 * PVH boot: struct hvm_start_info (version 1) with its memmap table and an
 * optional initrd module, per Xen's public/arch-x86/hvm/start_info.h.
 */
#ifndef VMM_BOOT_PVH_H
#define VMM_BOOT_PVH_H

#include <stdint.h>

#include "../mem.h"

#define HVM_START_MAGIC 0x336ec578
#define HVM_START_VERSION 1

#define HVM_MEMMAP_TYPE_RAM 1
#define HVM_MEMMAP_TYPE_RESERVED 2

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

/* Everything the boot code writes for PVH, built in host memory. */
#define PVH_MAX_MEMMAP 8
struct pvh_info {
	struct hvm_start_info start;
	struct hvm_memmap_table_entry memmap[PVH_MAX_MEMMAP];
	struct hvm_modlist_entry module;
};

/* Build the start_info for guest address `base` (memmap and modlist follow
 * it inside struct pvh_info). initrd_size 0: no module. Pure. */
void pvh_build(struct pvh_info *p, uint64_t base, const struct guest_mem *m, uint64_t cmdline_gpa,
	       uint64_t initrd_gpa, uint64_t initrd_size);

/* pvh_build at BOOT_PVH_INFO_ADDR, rsdp_paddr = rsdp_gpa (0: no ACPI
 * tables), and write it to guest RAM. Returns the start_info address, or 0
 * if it does not fit. */
uint64_t pvh_write_acpi(struct guest_mem *m, uint64_t cmdline_gpa, uint64_t initrd_gpa,
			uint64_t initrd_size, uint64_t rsdp_gpa);
/* The same without ACPI tables. */
uint64_t pvh_write(struct guest_mem *m, uint64_t cmdline_gpa, uint64_t initrd_gpa,
		   uint64_t initrd_size);

#endif
