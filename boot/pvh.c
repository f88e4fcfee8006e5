#include "pvh.h"

#include <stddef.h>
#include <string.h>

#include "e820.h"
#include "layout.h"

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info v1 size");
_Static_assert(offsetof(struct hvm_start_info, rsdp_paddr) == 32, "rsdp_paddr offset");
_Static_assert(offsetof(struct hvm_start_info, memmap_paddr) == 40, "memmap_paddr offset");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "modlist entry size");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "memmap entry size");
_Static_assert(offsetof(struct pvh_info, memmap) == sizeof(struct hvm_start_info),
	       "memmap right after start_info");
_Static_assert(BOOT_PVH_INFO_ADDR + sizeof(struct pvh_info) <= BOOT_PVH_INFO_END,
	       "PVH info fits its page");
_Static_assert(PVH_MAX_MEMMAP >= E820_MAX_RANGES, "memmap holds the whole e820");

static uint32_t memmap_type(uint32_t e820_type)
{
	return e820_type == E820_TYPE_RAM ? HVM_MEMMAP_TYPE_RAM : HVM_MEMMAP_TYPE_RESERVED;
}

void pvh_build(struct pvh_info *p, uint64_t base, const struct guest_mem *m, uint64_t cmdline_gpa,
	       uint64_t initrd_gpa, uint64_t initrd_size)
{
	struct e820_range r[E820_MAX_RANGES];
	unsigned n = e820_build(m, r, E820_MAX_RANGES);

	memset(p, 0, sizeof(*p));
	p->start.magic = HVM_START_MAGIC;
	p->start.version = HVM_START_VERSION;
	p->start.cmdline_paddr = cmdline_gpa;
	p->start.memmap_paddr = base + offsetof(struct pvh_info, memmap);
	p->start.memmap_entries = n;
	for (unsigned i = 0; i < n; i++) {
		p->memmap[i].addr = r[i].addr;
		p->memmap[i].size = r[i].size;
		p->memmap[i].type = memmap_type(r[i].type);
	}
	if (initrd_size) {
		p->start.nr_modules = 1;
		p->start.modlist_paddr = base + offsetof(struct pvh_info, module);
		p->module.paddr = initrd_gpa;
		p->module.size = initrd_size;
	}
}

uint64_t pvh_write_acpi(struct guest_mem *m, uint64_t cmdline_gpa, uint64_t initrd_gpa,
			uint64_t initrd_size, uint64_t rsdp_gpa)
{
	struct pvh_info p;
	pvh_build(&p, BOOT_PVH_INFO_ADDR, m, cmdline_gpa, initrd_gpa, initrd_size);
	p.start.rsdp_paddr = rsdp_gpa;
	if (!guest_write(m, BOOT_PVH_INFO_ADDR, &p, sizeof(p)))
		return 0;
	return BOOT_PVH_INFO_ADDR;
}

uint64_t pvh_write(struct guest_mem *m, uint64_t cmdline_gpa, uint64_t initrd_gpa,
		   uint64_t initrd_size)
{
	return pvh_write_acpi(m, cmdline_gpa, initrd_gpa, initrd_size, 0);
}
