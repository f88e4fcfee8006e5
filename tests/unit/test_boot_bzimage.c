/* bzImage setup-header parsing and loading (boot/bzimage.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "boot/bzimage.h"
#include "boot/zeropage.h"
#include "mem.h"

#define PM_SIZE 0x2000
#define IMG_MAX (64 * 512 + PM_SIZE)

static uint8_t img[IMG_MAX];
static size_t img_len;
static char err[256];

static void w16(size_t off, uint16_t v)
{
	memcpy(img + off, &v, 2);
}
static void w32(size_t off, uint32_t v)
{
	memcpy(img + off, &v, 4);
}
static void w64(size_t off, uint64_t v)
{
	memcpy(img + off, &v, 8);
}

/* A protocol 2.15 relocatable 64-bit bzImage with `sects` setup sectors
 * and PM_SIZE bytes of protected-mode code. */
static void build(uint8_t sects)
{
	memset(img, 0, sizeof(img));
	unsigned real = sects ? sects : 4;
	img_len = (real + 1) * 512 + PM_SIZE;
	img[0x1f1] = sects;
	w32(0x1f4, PM_SIZE / 16);
	w16(0x1fe, 0xAA55);
	img[0x200] = 0xeb;
	img[0x201] = 0x6a; /* header ends at 0x26c */
	w32(0x202, 0x53726448);
	w16(0x206, 0x020f);
	img[0x211] = LOADFLAG_LOADED_HIGH;
	w32(0x22c, 0x7fffffff);
	w32(0x230, 0x200000);
	img[0x234] = 1;
	w16(0x236, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G);
	w32(0x238, 2047);
	w32(0x248, 0x100);  /* payload_offset */
	w32(0x24c, 0x1000); /* payload_length */
	w64(0x258, 0x1000000);
	w32(0x260, 0x400000);
	for (size_t i = 0; i < PM_SIZE; i++)
		img[(real + 1) * 512 + i] = (uint8_t)(i * 7 + 1);
}

static int parse(struct bzimage_header *h)
{
	err[0] = 0;
	return bzimage_parse_header(img, img_len, h, err, sizeof(err));
}

static void test_valid(void **state)
{
	(void)state;
	struct bzimage_header h;
	build(27);
	assert_int_equal(parse(&h), 0);
	assert_int_equal(h.version, 0x020f);
	assert_int_equal(h.setup_sects, 27);
	assert_int_equal(h.protected_mode_offset, 28 * 512);
	assert_int_equal(h.protected_mode_size, PM_SIZE);
	assert_int_equal(h.xloadflags, 3);
	assert_int_equal(h.pref_address, 0x1000000);
	assert_int_equal(h.init_size, 0x400000);
	assert_int_equal(h.cmdline_size, 2047);
	assert_int_equal(h.initrd_addr_max, 0x7fffffff);
	assert_int_equal(h.kernel_alignment, 0x200000);
	assert_int_equal(h.relocatable_kernel, 1);
	assert_int_equal(h.payload_offset, 0x100);
	assert_int_equal(h.payload_length, 0x1000);
	assert_int_equal(h.header_end, 0x26c);
	assert_int_equal(bzimage_load_address(&h), 0x1000000);
	assert_int_equal(bzimage_footprint(&h), 0x400000);
}

static void test_setup_sects_zero_means_4(void **state)
{
	(void)state;
	struct bzimage_header h;
	build(0);
	assert_int_equal(parse(&h), 0);
	assert_int_equal(h.setup_sects, 0);
	assert_int_equal(h.protected_mode_offset, 5 * 512);
}

static void test_too_short(void **state)
{
	(void)state;
	struct bzimage_header h;
	build(4);
	img_len = 0x200;
	assert_int_equal(parse(&h), -1);
	assert_non_null(strstr(err, "too short"));
}

static void test_no_hdrs(void **state)
{
	(void)state;
	struct bzimage_header h;
	build(4);
	img[0x202] = 'X';
	assert_false(bzimage_detect(img, img_len));
	assert_int_equal(parse(&h), -1);
	assert_non_null(strstr(err, "HdrS"));
}

static void test_old_protocol(void **state)
{
	(void)state;
	struct bzimage_header h;
	build(4);
	w16(0x206, 0x0205);
	assert_int_equal(parse(&h), -1);
	assert_string_equal(err, "bzImage boot protocol 2.05 is older than 2.06");
	w16(0x206, 0x0206);
	w16(0x236, 0); /* 2.06..2.11 have no xloadflags: refused for lack of XLF_KERNEL_64 */
	assert_int_equal(parse(&h), -1);
	assert_non_null(strstr(err, "XLF_KERNEL_64"));
}

static void test_no_kernel64(void **state)
{
	(void)state;
	struct bzimage_header h;
	build(4);
	w16(0x236, XLF_CAN_BE_LOADED_ABOVE_4G);
	assert_int_equal(parse(&h), -1);
	assert_non_null(strstr(err, "XLF_KERNEL_64"));
}

static void test_setup_beyond_file(void **state)
{
	(void)state;
	struct bzimage_header h;
	build(4);
	img[0x1f1] = 60; /* setup claims 61 sectors; file is 5 + 16 */
	assert_int_equal(parse(&h), -1);
	assert_non_null(strstr(err, "truncated"));
}

static void test_payload_beyond_file(void **state)
{
	(void)state;
	struct bzimage_header h;
	build(4);
	w32(0x24c, PM_SIZE); /* offset 0x100 + PM_SIZE > PM_SIZE */
	assert_int_equal(parse(&h), -1);
	assert_non_null(strstr(err, "payload"));
	build(4);
	w32(0x248, 0xffffffff); /* must not wrap */
	w32(0x24c, 0xffffffff);
	assert_int_equal(parse(&h), -1);
}

static void test_syssize_truncated(void **state)
{
	(void)state;
	struct bzimage_header h;
	build(4);
	img_len -= 0x800; /* header still says PM_SIZE */
	w32(0x24c, 0x100);
	assert_int_equal(parse(&h), -1);
	assert_non_null(strstr(err, "truncated"));
	build(4);
	img_len -= 8; /* syssize rounded up by up to 15 bytes: fine */
	w32(0x24c, 0x100);
	assert_int_equal(parse(&h), 0);
}

static void test_load_address(void **state)
{
	(void)state;
	struct bzimage_header h;
	build(4);
	assert_int_equal(parse(&h), 0);
	h.relocatable_kernel = 0;
	assert_int_equal(bzimage_load_address(&h), BZIMAGE_DEFAULT_LOAD);
	h.relocatable_kernel = 1;
	h.pref_address = 0x1100000; /* not 2 MiB aligned */
	assert_int_equal(bzimage_load_address(&h), BZIMAGE_DEFAULT_LOAD);
	h.pref_address = 0;
	assert_int_equal(bzimage_load_address(&h), BZIMAGE_DEFAULT_LOAD);
	h.pref_address = 0x1000000;
	h.kernel_alignment = 0x300000; /* not a power of two */
	assert_int_equal(bzimage_load_address(&h), BZIMAGE_DEFAULT_LOAD);
	h.init_size = 0; /* before 2.10: the file size counts */
	assert_int_equal(bzimage_footprint(&h), PM_SIZE);
}

static void test_protocol_2_06_fields(void **state)
{
	(void)state;
	struct bzimage_header h;
	build(4);
	w16(0x206, 0x0206);
	assert_int_equal(parse(&h), -1); /* no xloadflags before 2.12 */
	/* the parser leaves fields of later protocols at 0 */
	build(4);
	w16(0x206, 0x020c);
	assert_int_equal(parse(&h), 0);
	assert_int_equal(h.pref_address, 0x1000000);
	assert_int_equal(h.payload_length, 0x1000);
}

static void test_load(void **state)
{
	(void)state;
	struct bzimage_header h;
	struct guest_mem m;
	build(4);
	assert_int_equal(parse(&h), 0);
	assert_int_equal(guest_mem_init(&m, 32 * MIB, 0), 0);
	memset(m.host + 0x1000000 + PM_SIZE, 0x5a, 0x100);
	assert_int_equal(bzimage_load(&m, img, &h, 0x1000000, err, sizeof(err)), 0);
	assert_memory_equal(m.host + 0x1000000, img + 5 * 512, PM_SIZE);
	assert_int_equal(m.host[0x1000000 + PM_SIZE], 0); /* rest of init_size zeroed */
	/* init_size past the end of RAM */
	assert_int_equal(bzimage_load(&m, img, &h, 32 * MIB - 0x100000, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "init_size"));
	guest_mem_destroy(&m);
}

static void test_zeropage_copy(void **state)
{
	(void)state;
	static struct boot_params bp;
	build(4);
	assert_int_equal(zeropage_init_from_image(&bp, img, img_len), 0);
	assert_int_equal(bp.hdr.header, SETUP_HDR_MAGIC);
	assert_int_equal(bp.hdr.version, 0x020f);
	assert_int_equal(bp.hdr.cmdline_size, 2047);
	assert_int_equal(bp.hdr.init_size, 0x400000);
	assert_int_equal(bp.hdr.pref_address, 0x1000000);
	/* A short jump byte limits the copy: fields past it stay 0. */
	img[0x201] = 0x36; /* header ends at 0x238, before cmdline_size */
	assert_int_equal(zeropage_init_from_image(&bp, img, img_len), 0);
	assert_int_equal(bp.hdr.xloadflags, 3);
	assert_int_equal(bp.hdr.cmdline_size, 0);
	assert_int_equal(zeropage_init_from_image(&bp, img, 0x100), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid),
	    cmocka_unit_test(test_setup_sects_zero_means_4),
	    cmocka_unit_test(test_too_short),
	    cmocka_unit_test(test_no_hdrs),
	    cmocka_unit_test(test_old_protocol),
	    cmocka_unit_test(test_no_kernel64),
	    cmocka_unit_test(test_setup_beyond_file),
	    cmocka_unit_test(test_payload_beyond_file),
	    cmocka_unit_test(test_syssize_truncated),
	    cmocka_unit_test(test_load_address),
	    cmocka_unit_test(test_protocol_2_06_fields),
	    cmocka_unit_test(test_load),
	    cmocka_unit_test(test_zeropage_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
