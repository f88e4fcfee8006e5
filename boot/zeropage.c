#include "zeropage.h"

#include <string.h>

#include "e820.h"

#define CHECK_OFF(field, off)                                                                      \
	_Static_assert(offsetof(struct boot_params, field) == (off), #field " offset")

CHECK_OFF(tboot_addr, 0x058);
CHECK_OFF(acpi_rsdp_addr, 0x070);
CHECK_OFF(ext_ramdisk_image, 0x0c0);
CHECK_OFF(ext_ramdisk_size, 0x0c4);
CHECK_OFF(ext_cmd_line_ptr, 0x0c8);
CHECK_OFF(cc_blob_address, 0x13c);
CHECK_OFF(edid_info, 0x140);
CHECK_OFF(efi_info, 0x1c0);
CHECK_OFF(alt_mem_k, 0x1e0);
CHECK_OFF(e820_entries, 0x1e8);
CHECK_OFF(sentinel, 0x1ef);
CHECK_OFF(hdr, 0x1f1);
CHECK_OFF(hdr.boot_flag, 0x1fe);
CHECK_OFF(hdr.header, 0x202);
CHECK_OFF(hdr.version, 0x206);
CHECK_OFF(hdr.type_of_loader, 0x210);
CHECK_OFF(hdr.loadflags, 0x211);
CHECK_OFF(hdr.code32_start, 0x214);
CHECK_OFF(hdr.ramdisk_image, 0x218);
CHECK_OFF(hdr.ramdisk_size, 0x21c);
CHECK_OFF(hdr.heap_end_ptr, 0x224);
CHECK_OFF(hdr.cmd_line_ptr, 0x228);
CHECK_OFF(hdr.initrd_addr_max, 0x22c);
CHECK_OFF(hdr.kernel_alignment, 0x230);
CHECK_OFF(hdr.relocatable_kernel, 0x234);
CHECK_OFF(hdr.xloadflags, 0x236);
CHECK_OFF(hdr.cmdline_size, 0x238);
CHECK_OFF(hdr.payload_offset, 0x248);
CHECK_OFF(hdr.payload_length, 0x24c);
CHECK_OFF(hdr.setup_data, 0x250);
CHECK_OFF(hdr.pref_address, 0x258);
CHECK_OFF(hdr.init_size, 0x260);
CHECK_OFF(hdr.kernel_info_offset, 0x268);
CHECK_OFF(edd_mbr_sig_buffer, 0x290);
CHECK_OFF(e820_table, 0x2d0);
CHECK_OFF(eddbuf, 0xd00);
_Static_assert(sizeof(struct boot_e820_entry) == 20, "e820 entry size");
_Static_assert(sizeof(struct boot_params) == 4096, "zero page size");

/* The synthetic header claims protocol 2.06: the oldest one that has
 * cmdline_size, and all an ELF vmlinux entered at startup_64 looks at. */
#define SYNTHETIC_VERSION 0x0206
#define HEAP_END_PTR 0xfe00 /* real-mode heap end; unused by a 64-bit entry */

void zeropage_init_synthetic(struct boot_params *bp)
{
	memset(bp, 0, sizeof(*bp));
	bp->hdr.boot_flag = SETUP_BOOT_FLAG;
	bp->hdr.header = SETUP_HDR_MAGIC;
	bp->hdr.version = SYNTHETIC_VERSION;
	bp->hdr.loadflags = LOADFLAG_LOADED_HIGH;
}

int zeropage_init_from_image(struct boot_params *bp, const uint8_t *img, size_t len)
{
	memset(bp, 0, sizeof(*bp));
	if (len < 0x202)
		return -1;
	size_t end = 0x202 + (size_t)img[0x201];
	size_t max = SETUP_HDR_OFFSET + sizeof(bp->hdr);
	if (end > max)
		end = max;
	if (end > len)
		return -1;
	memcpy(&bp->hdr, img + SETUP_HDR_OFFSET, end - SETUP_HDR_OFFSET);
	return 0;
}

void zeropage_set_loader_fields(struct boot_params *bp, uint64_t cmdline_gpa, uint64_t initrd_gpa,
				uint64_t initrd_size)
{
	bp->hdr.type_of_loader = BOOT_LOADER_TYPE_UNDEFINED;
	bp->hdr.loadflags |= LOADFLAG_CAN_USE_HEAP;
	bp->hdr.heap_end_ptr = HEAP_END_PTR;
	bp->hdr.cmd_line_ptr = (uint32_t)cmdline_gpa;
	bp->ext_cmd_line_ptr = (uint32_t)(cmdline_gpa >> 32);
	bp->hdr.ramdisk_image = (uint32_t)initrd_gpa;
	bp->ext_ramdisk_image = (uint32_t)(initrd_gpa >> 32);
	bp->hdr.ramdisk_size = (uint32_t)initrd_size;
	bp->ext_ramdisk_size = (uint32_t)(initrd_size >> 32);
}

unsigned zeropage_set_e820(struct boot_params *bp, const struct guest_mem *m)
{
	struct e820_range r[E820_MAX_RANGES];
	unsigned n = e820_build(m, r, E820_MAX_RANGES);
	for (unsigned i = 0; i < n; i++) {
		bp->e820_table[i].addr = r[i].addr;
		bp->e820_table[i].size = r[i].size;
		bp->e820_table[i].type = r[i].type;
	}
	bp->e820_entries = (uint8_t)n;
	return n;
}
