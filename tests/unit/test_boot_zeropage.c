/* Zero page (boot/zeropage.c) and PVH start_info (boot/pvh.c) contents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "boot/e820.h"
#include "boot/layout.h"
#include "boot/pvh.h"
#include "boot/zeropage.h"
#include "mem.h"

static struct boot_params bp;

static struct guest_mem mem_of(uint64_t size)
{
	struct guest_mem m;
	memset(&m, 0, sizeof(m));
	m.memfd = -1;
	m.size = size;
	m.low_size = size < MMIO_HOLE_START ? size : MMIO_HOLE_START;
	m.high_size = size - m.low_size;
	return m;
}

static uint32_t rd32(const void *base, size_t off)
{
	uint32_t v;
	memcpy(&v, (const uint8_t *)base + off, 4);
	return v;
}

static uint64_t rd64(const void *base, size_t off)
{
	uint64_t v;
	memcpy(&v, (const uint8_t *)base + off, 8);
	return v;
}

static void test_synthetic_header(void **state)
{
	(void)state;
	memset(&bp, 0xee, sizeof(bp));
	zeropage_init_synthetic(&bp);
	const uint8_t *raw = (const uint8_t *)&bp;
	assert_int_equal(rd32(raw, 0x202), 0x53726448);
	assert_int_equal(rd32(raw, 0x1fe) & 0xffff, 0xaa55);
	assert_true((rd32(raw, 0x206) & 0xffff) >= 0x0206);
	assert_int_equal(raw[0x1ef], 0); /* sentinel */
	assert_int_equal(raw[0x1e8], 0);
	assert_int_equal(raw[0xfff], 0);
}

static void test_loader_fields(void **state)
{
	(void)state;
	zeropage_init_synthetic(&bp);
	zeropage_set_loader_fields(&bp, 0x20000, 0x7f00000, 0x123456);
	const uint8_t *raw = (const uint8_t *)&bp;
	assert_int_equal(raw[0x210], 0xff);		 /* type_of_loader */
	assert_true(raw[0x211] & LOADFLAG_CAN_USE_HEAP); /* loadflags */
	assert_true(raw[0x211] & LOADFLAG_LOADED_HIGH);
	assert_int_equal(rd32(raw, 0x224) & 0xffff, 0xfe00); /* heap_end_ptr */
	assert_int_equal(rd32(raw, 0x228), 0x20000);	     /* cmd_line_ptr */
	assert_int_equal(rd32(raw, 0x0c8), 0);		     /* ext_cmd_line_ptr */
	assert_int_equal(rd32(raw, 0x218), 0x7f00000);	     /* ramdisk_image */
	assert_int_equal(rd32(raw, 0x21c), 0x123456);	     /* ramdisk_size */
	assert_int_equal(rd32(raw, 0x0c0), 0);
	assert_int_equal(rd32(raw, 0x0c4), 0);
	/* 64-bit values split into the ext_ fields */
	zeropage_set_loader_fields(&bp, 0x20000, 0x100001000ULL, 0x100000002ULL);
	assert_int_equal(rd32(raw, 0x218), 0x1000);
	assert_int_equal(rd32(raw, 0x0c0), 1);
	assert_int_equal(rd32(raw, 0x21c), 2);
	assert_int_equal(rd32(raw, 0x0c4), 1);
}

static void test_e820_in_zeropage(void **state)
{
	(void)state;
	struct guest_mem m = mem_of(8 * GIB);
	zeropage_init_synthetic(&bp);
	assert_int_equal(zeropage_set_e820(&bp, &m), 5);
	const uint8_t *raw = (const uint8_t *)&bp;
	assert_int_equal(raw[0x1e8], 5);
	/* entry 4 at 0x2d0 + 4 * 20 */
	assert_int_equal(rd64(raw, 0x2d0 + 80), 4 * GIB);
	assert_int_equal(rd64(raw, 0x2d0 + 88), 5 * GIB);
	assert_int_equal(rd32(raw, 0x2d0 + 96), E820_TYPE_RAM);
	/* entry 1: the EBDA reservation */
	assert_int_equal(rd64(raw, 0x2d0 + 20), 0x9fc00);
	assert_int_equal(rd64(raw, 0x2d0 + 28), 0x400);
	assert_int_equal(rd32(raw, 0x2d0 + 36), E820_TYPE_RESERVED);
}

static void test_pvh_start_info(void **state)
{
	(void)state;
	struct guest_mem m = mem_of(3 * GIB + MIB);
	struct pvh_info p;
	memset(&p, 0xee, sizeof(p));
	pvh_build(&p, BOOT_PVH_INFO_ADDR, &m, 0x20000, 0, 0);
	const uint8_t *raw = (const uint8_t *)&p;
	assert_int_equal(rd32(raw, 0), 0x336ec578);
	assert_int_equal(rd32(raw, 4), 1);
	assert_int_equal(rd32(raw, 8), 0);  /* flags */
	assert_int_equal(rd32(raw, 12), 0); /* nr_modules */
	assert_int_equal(rd64(raw, 16), 0); /* modlist */
	assert_int_equal(rd64(raw, 24), 0x20000);
	assert_int_equal(rd64(raw, 32), 0); /* rsdp */
	assert_int_equal(rd64(raw, 40), BOOT_PVH_INFO_ADDR + 56);
	assert_int_equal(rd32(raw, 48), 5);
	assert_int_equal(rd32(raw, 52), 0);
	/* memmap entries, 24 bytes each, right after */
	assert_int_equal(rd64(raw, 56 + 4 * 24), 4 * GIB);
	assert_int_equal(rd64(raw, 56 + 4 * 24 + 8), MIB);
	assert_int_equal(rd32(raw, 56 + 4 * 24 + 16), HVM_MEMMAP_TYPE_RAM);
	assert_int_equal(rd32(raw, 56 + 4 * 24 + 20), 0);
	assert_int_equal(rd32(raw, 56 + 2 * 24 + 16), HVM_MEMMAP_TYPE_RESERVED);
}

static void test_pvh_module(void **state)
{
	(void)state;
	struct guest_mem m = mem_of(64 * MIB);
	struct pvh_info p;
	pvh_build(&p, 0x6000, &m, 0x20000, 0x3000000, 0x4321);
	assert_int_equal(p.start.nr_modules, 1);
	assert_int_equal(p.start.modlist_paddr, 0x6000 + offsetof(struct pvh_info, module));
	assert_int_equal(p.module.paddr, 0x3000000);
	assert_int_equal(p.module.size, 0x4321);
	assert_int_equal(p.module.cmdline_paddr, 0);
	assert_int_equal(p.start.modlist_paddr % 8, 0);
	assert_true(p.start.modlist_paddr + 32 <= BOOT_ZEROPAGE_ADDR);
}

static void test_pvh_written(void **state)
{
	(void)state;
	struct guest_mem m;
	assert_int_equal(guest_mem_init(&m, 8 * MIB, 0), 0);
	assert_int_equal(pvh_write(&m, 0x20000, 0, 0), BOOT_PVH_INFO_ADDR);
	assert_int_equal(rd32(m.host, BOOT_PVH_INFO_ADDR), 0x336ec578);
	assert_int_equal(rd32(m.host, BOOT_PVH_INFO_ADDR + 48), 4);
	guest_mem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_synthetic_header), cmocka_unit_test(test_loader_fields),
	    cmocka_unit_test(test_e820_in_zeropage), cmocka_unit_test(test_pvh_start_info),
	    cmocka_unit_test(test_pvh_module),	     cmocka_unit_test(test_pvh_written),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
