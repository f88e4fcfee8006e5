/*
 * bzImage: setup-header parsing (pure, on a buffer) and loading of the
 * protected-mode code for the 64-bit boot protocol.
 */
#ifndef VMM_BOOT_BZIMAGE_H
#define VMM_BOOT_BZIMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../mem.h"

/* The oldest protocol we boot: cmdline_size appears in 2.06. */
#define BZIMAGE_MIN_VERSION 0x0206
/* A bzImage's real-mode part is at least this long (setup_sects 0 = 4). */
#define BZIMAGE_DEFAULT_SETUP_SECTS 4
#define BZIMAGE_SECTOR 512
/* The 64-bit entry point: protected-mode code start + 0x200. */
#define BZIMAGE_ENTRY64_OFFSET 0x200
/* Where a non-relocatable (or misaligned) kernel is loaded. */
#define BZIMAGE_DEFAULT_LOAD 0x100000ULL

struct bzimage_header {
	uint16_t version;    /* boot protocol, e.g. 0x020f */
	uint8_t setup_sects; /* as in the file (0 means 4) */
	uint16_t xloadflags; /* 0 before 2.12 */
	uint8_t loadflags;
	uint64_t pref_address;	  /* 0 before 2.10 */
	uint32_t init_size;	  /* 0 before 2.10 */
	uint32_t cmdline_size;	  /* max command line length, NUL excluded */
	uint32_t initrd_addr_max; /* highest address the initrd may occupy */
	uint32_t kernel_alignment;
	uint8_t relocatable_kernel;
	uint32_t syssize; /* protected-mode size in 16-byte units */
	/* payload_offset is as in the header: relative to the start of the
	 * protected-mode code; the payload is at file offset
	 * protected_mode_offset + payload_offset. 0/0 before 2.08. */
	uint32_t payload_offset;
	uint32_t payload_length;
	size_t protected_mode_offset; /* file offset of the 32/64-bit code */
	size_t protected_mode_size;   /* bytes of it in the file */
	size_t header_end;	      /* 0x202 + image[0x201] */
};

/* Parse and validate the setup header of a bzImage held in buf[0, len).
 * Refuses: too short, no "HdrS", protocol < 2.06, no XLF_KERNEL_64,
 * protected-mode code or payload beyond the end of the buffer.
 * Returns 0, or -1 with a one-line reason in err. */
int bzimage_parse_header(const uint8_t *buf, size_t len, struct bzimage_header *out, char *err,
			 size_t errlen);

/* True if buf has the "HdrS" signature at 0x202 (a bzImage to parse). */
int bzimage_detect(const uint8_t *buf, size_t len);

/* Guest address for the protected-mode code: pref_address when the kernel
 * is relocatable and pref_address is kernel_alignment-aligned, else 1 MiB. */
uint64_t bzimage_load_address(const struct bzimage_header *h);

/* Bytes of guest memory the kernel needs from its load address:
 * max(init_size, protected-mode size). */
uint64_t bzimage_footprint(const struct bzimage_header *h);

/* Copy the protected-mode code to `load` in guest RAM (the whole footprint
 * must be RAM; the remainder is zeroed). Returns 0, or -1 with a reason. */
int bzimage_load(struct guest_mem *m, const uint8_t *buf, const struct bzimage_header *h,
		 uint64_t load, char *err, size_t errlen);

#endif
