/*
 * The Linux zero page (struct boot_params) and its setup header, laid out
 * per Documentation/arch/x86/zero-page.rst and boot.rst. Offsets are those
 * of the zero page; each one is checked in zeropage.c.
 */
#ifndef VMM_BOOT_ZEROPAGE_H
#define VMM_BOOT_ZEROPAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../mem.h"

struct setup_header {
	uint8_t setup_sects;		/* 0x1f1 */
	uint16_t root_flags;		/* 0x1f2 */
	uint32_t syssize;		/* 0x1f4 */
	uint16_t ram_size;		/* 0x1f8 */
	uint16_t vid_mode;		/* 0x1fa */
	uint16_t root_dev;		/* 0x1fc */
	uint16_t boot_flag;		/* 0x1fe */
	uint16_t jump;			/* 0x200 */
	uint32_t header;		/* 0x202 */
	uint16_t version;		/* 0x206 */
	uint32_t realmode_swtch;	/* 0x208 */
	uint16_t start_sys_seg;		/* 0x20c */
	uint16_t kernel_version;	/* 0x20e */
	uint8_t type_of_loader;		/* 0x210 */
	uint8_t loadflags;		/* 0x211 */
	uint16_t setup_move_size;	/* 0x212 */
	uint32_t code32_start;		/* 0x214 */
	uint32_t ramdisk_image;		/* 0x218 */
	uint32_t ramdisk_size;		/* 0x21c */
	uint32_t bootsect_kludge;	/* 0x220 */
	uint16_t heap_end_ptr;		/* 0x224 */
	uint8_t ext_loader_ver;		/* 0x226 */
	uint8_t ext_loader_type;	/* 0x227 */
	uint32_t cmd_line_ptr;		/* 0x228 */
	uint32_t initrd_addr_max;	/* 0x22c */
	uint32_t kernel_alignment;	/* 0x230 */
	uint8_t relocatable_kernel;	/* 0x234 */
	uint8_t min_alignment;		/* 0x235 */
	uint16_t xloadflags;		/* 0x236 */
	uint32_t cmdline_size;		/* 0x238 */
	uint32_t hardware_subarch;	/* 0x23c */
	uint64_t hardware_subarch_data; /* 0x240 */
	uint32_t payload_offset;	/* 0x248 */
	uint32_t payload_length;	/* 0x24c */
	uint64_t setup_data;		/* 0x250 */
	uint64_t pref_address;		/* 0x258 */
	uint32_t init_size;		/* 0x260 */
	uint32_t handover_offset;	/* 0x264 */
	uint32_t kernel_info_offset;	/* 0x268 */
} __attribute__((packed));

struct boot_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

#define BOOT_E820_MAX 128

struct boot_params {
	uint8_t screen_info[0x40];			  /* 0x000 */
	uint8_t apm_bios_info[0x14];			  /* 0x040 */
	uint8_t _pad0[4];				  /* 0x054 */
	uint64_t tboot_addr;				  /* 0x058 */
	uint8_t ist_info[0x10];				  /* 0x060 */
	uint64_t acpi_rsdp_addr;			  /* 0x070 */
	uint8_t _pad1[8];				  /* 0x078 */
	uint8_t hd0_info[0x10];				  /* 0x080 */
	uint8_t hd1_info[0x10];				  /* 0x090 */
	uint8_t sys_desc_table[0x10];			  /* 0x0a0 */
	uint8_t olpc_ofw_header[0x10];			  /* 0x0b0 */
	uint32_t ext_ramdisk_image;			  /* 0x0c0 */
	uint32_t ext_ramdisk_size;			  /* 0x0c4 */
	uint32_t ext_cmd_line_ptr;			  /* 0x0c8 */
	uint8_t _pad2[0x13c - 0xcc];			  /* 0x0cc */
	uint32_t cc_blob_address;			  /* 0x13c */
	uint8_t edid_info[0x80];			  /* 0x140 */
	uint8_t efi_info[0x20];				  /* 0x1c0 */
	uint32_t alt_mem_k;				  /* 0x1e0 */
	uint32_t scratch;				  /* 0x1e4 */
	uint8_t e820_entries;				  /* 0x1e8 */
	uint8_t eddbuf_entries;				  /* 0x1e9 */
	uint8_t edd_mbr_sig_buf_entries;		  /* 0x1ea */
	uint8_t kbd_status;				  /* 0x1eb */
	uint8_t secure_boot;				  /* 0x1ec */
	uint8_t _pad3[2];				  /* 0x1ed */
	uint8_t sentinel;				  /* 0x1ef */
	uint8_t _pad4[1];				  /* 0x1f0 */
	struct setup_header hdr;			  /* 0x1f1 */
	uint8_t _pad5[0x290 - 0x26c];			  /* 0x26c */
	uint32_t edd_mbr_sig_buffer[16];		  /* 0x290 */
	struct boot_e820_entry e820_table[BOOT_E820_MAX]; /* 0x2d0 */
	uint8_t _pad6[0xd00 - 0xcd0];			  /* 0xcd0 */
	uint8_t eddbuf[0x1ec];				  /* 0xd00 */
	uint8_t _pad7[0x1000 - 0xeec];			  /* 0xeec */
} __attribute__((packed));

/* Setup header magic values and flags (boot.rst). */
#define SETUP_HDR_OFFSET 0x1f1
#define SETUP_HDR_MAGIC 0x53726448 /* "HdrS" */
#define SETUP_BOOT_FLAG 0xAA55
#define LOADFLAG_LOADED_HIGH 0x01
#define LOADFLAG_CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x0001
#define XLF_CAN_BE_LOADED_ABOVE_4G 0x0002
#define BOOT_LOADER_TYPE_UNDEFINED 0xff

/* Start a zero page for an image without a setup header (ELF vmlinux):
 * zeroed, with a minimal synthetic header. */
void zeropage_init_synthetic(struct boot_params *bp);

/* Start a zero page from a bzImage: zeroed, then the image's setup header
 * copied from 0x1f1 up to 0x202 + image[0x201] (clipped to the header and
 * to the image). Returns 0, or -1 if the image is too short. */
int zeropage_init_from_image(struct boot_params *bp, const uint8_t *img, size_t len);

/* Fill the loader-written fields: type_of_loader, loadflags heap use,
 * command line and initrd (0/0: none). */
void zeropage_set_loader_fields(struct boot_params *bp, uint64_t cmdline_gpa, uint64_t initrd_gpa,
				uint64_t initrd_size);

/* Copy the guest memory map into e820_table. Returns the entry count. */
unsigned zeropage_set_e820(struct boot_params *bp, const struct guest_mem *m);

#endif
