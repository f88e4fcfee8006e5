#include "bzimage.h"

#include <stdio.h>
#include <string.h>

#include "zeropage.h"

/* Offsets in the image (same as in the zero page). */
#define OFF_SETUP_SECTS 0x1f1
#define OFF_SYSSIZE 0x1f4
#define OFF_JUMP_LEN 0x201
#define OFF_HEADER 0x202
#define OFF_VERSION 0x206
#define OFF_LOADFLAGS 0x211
#define OFF_INITRD_ADDR_MAX 0x22c
#define OFF_KERNEL_ALIGNMENT 0x230
#define OFF_RELOCATABLE 0x234
#define OFF_XLOADFLAGS 0x236
#define OFF_CMDLINE_SIZE 0x238
#define OFF_PAYLOAD_OFFSET 0x248
#define OFF_PAYLOAD_LENGTH 0x24c
#define OFF_PREF_ADDRESS 0x258
#define OFF_INIT_SIZE 0x260
/* Enough to read every field above. */
#define BZIMAGE_HDR_MIN_LEN 0x264

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

int bzimage_detect(const uint8_t *buf, size_t len)
{
	return len >= OFF_HEADER + 4 && rd32(buf + OFF_HEADER) == SETUP_HDR_MAGIC;
}

static void read_fields(const uint8_t *buf, struct bzimage_header *h)
{
	uint16_t v = rd16(buf + OFF_VERSION);
	memset(h, 0, sizeof(*h));
	h->version = v;
	h->setup_sects = buf[OFF_SETUP_SECTS];
	h->syssize = rd32(buf + OFF_SYSSIZE);
	h->loadflags = buf[OFF_LOADFLAGS];
	h->header_end = OFF_HEADER + (size_t)buf[OFF_JUMP_LEN];
	h->initrd_addr_max = rd32(buf + OFF_INITRD_ADDR_MAX);
	h->kernel_alignment = rd32(buf + OFF_KERNEL_ALIGNMENT);
	h->relocatable_kernel = buf[OFF_RELOCATABLE];
	h->cmdline_size = rd32(buf + OFF_CMDLINE_SIZE);
	if (v >= 0x020c)
		h->xloadflags = rd16(buf + OFF_XLOADFLAGS);
	if (v >= 0x0208) {
		h->payload_offset = rd32(buf + OFF_PAYLOAD_OFFSET);
		h->payload_length = rd32(buf + OFF_PAYLOAD_LENGTH);
	}
	if (v >= 0x020a) {
		h->pref_address = rd64(buf + OFF_PREF_ADDRESS);
		h->init_size = rd32(buf + OFF_INIT_SIZE);
	}
	unsigned sects = h->setup_sects ? h->setup_sects : BZIMAGE_DEFAULT_SETUP_SECTS;
	h->protected_mode_offset = ((size_t)sects + 1) * BZIMAGE_SECTOR;
}

static int check_layout(const struct bzimage_header *h, size_t len, char *err, size_t errlen)
{
	if (h->protected_mode_offset >= len) {
		snprintf(err, errlen,
			 "truncated bzImage: %zu bytes, but the setup code alone takes %zu", len,
			 h->protected_mode_offset);
		return -1;
	}
	size_t pm = len - h->protected_mode_offset;
	/* syssize is rounded up to 16 bytes: allow up to 15 missing. */
	if ((uint64_t)h->syssize * 16 > (uint64_t)pm + 15) {
		snprintf(err, errlen,
			 "truncated bzImage: header says %llu bytes of kernel code, file has %zu",
			 (unsigned long long)h->syssize * 16, pm);
		return -1;
	}
	if ((uint64_t)h->payload_offset + h->payload_length > pm) {
		snprintf(err, errlen,
			 "truncated bzImage: payload [0x%x, +0x%x) lies beyond the end of the file",
			 h->payload_offset, h->payload_length);
		return -1;
	}
	return 0;
}

int bzimage_parse_header(const uint8_t *buf, size_t len, struct bzimage_header *out, char *err,
			 size_t errlen)
{
	if (len < BZIMAGE_HDR_MIN_LEN) {
		snprintf(err, errlen, "too short for a bzImage (%zu bytes)", len);
		return -1;
	}
	if (!bzimage_detect(buf, len)) {
		snprintf(err, errlen, "no \"HdrS\" signature at offset 0x202: not a bzImage");
		return -1;
	}
	read_fields(buf, out);
	if (out->version < BZIMAGE_MIN_VERSION) {
		snprintf(err, errlen, "bzImage boot protocol %u.%02u is older than 2.06",
			 out->version >> 8, out->version & 0xff);
		return -1;
	}
	if (!(out->xloadflags & XLF_KERNEL_64)) {
		snprintf(
		    err, errlen,
		    "bzImage has no 64-bit entry point (XLF_KERNEL_64 not set, protocol %u.%02u)",
		    out->version >> 8, out->version & 0xff);
		return -1;
	}
	if (check_layout(out, len, err, errlen) < 0)
		return -1;
	out->protected_mode_size = len - out->protected_mode_offset;
	return 0;
}

static int is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

uint64_t bzimage_load_address(const struct bzimage_header *h)
{
	if (h->relocatable_kernel && h->pref_address && is_pow2(h->kernel_alignment) &&
	    !(h->pref_address & (h->kernel_alignment - 1)))
		return h->pref_address;
	return BZIMAGE_DEFAULT_LOAD;
}

uint64_t bzimage_footprint(const struct bzimage_header *h)
{
	uint64_t pm = h->protected_mode_size;
	return h->init_size > pm ? h->init_size : pm;
}

int bzimage_load(struct guest_mem *m, const uint8_t *buf, const struct bzimage_header *h,
		 uint64_t load, char *err, size_t errlen)
{
	uint64_t need = bzimage_footprint(h);
	uint8_t *dst = guest_ptr(m, load, need);
	if (!dst) {
		snprintf(err, errlen,
			 "needs 0x%llx bytes (init_size) from 0x%llx, past the end of guest RAM",
			 (unsigned long long)need, (unsigned long long)load);
		return -1;
	}
	memcpy(dst, buf + h->protected_mode_offset, h->protected_mode_size);
	memset(dst + h->protected_mode_size, 0, need - h->protected_mode_size);
	return 0;
}
