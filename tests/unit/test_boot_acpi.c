/* ACPI tables (boot/acpi.c): checksums, pointers, MADT entries, the DSDT's
 * AML, placement, and what boot_load() points the guest at. */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "boot/checksum.h"

#include "boot/acpi.h"
#include "boot/boot.h"
#include "boot/e820.h"
#include "boot/layout.h"
#include "boot/mptable.h"
#include "boot/pvh.h"
#include "boot/zeropage.h"
#include "mem.h"

#define BASE BOOT_ACPI_ADDR

static struct acpi_tables t;

static const struct boot_mmio_dev virtio_devs[ACPI_MAX_MMIO_DEVS] = {
    {0xd0000000, 0x1000, 5},  {0xd0001000, 0x1000, 6},	{0xd0002000, 0x1000, 7},
    {0xd0003000, 0x1000, 9},  {0xd0004000, 0x1000, 10}, {0xd0005000, 0x1000, 11},
    {0xd0006000, 0x1000, 12}, {0xd0007000, 0x1000, 14}, {0xd0008000, 0x1000, 15},
    {0xd0009000, 0x1000, 16}, {0xd000a000, 0x1000, 17}, {0xd000b000, 0x1000, 18},
    {0xd000c000, 0x1000, 19}, {0xd000d000, 0x1000, 20}, {0xd000e000, 0x1000, 21},
    {0xd000f000, 0x1000, 22},
};

static uint8_t sum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t s = 0;
	for (size_t i = 0; i < len; i++)
		s += b[i];
	return s;
}

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* The table at guest address gpa inside t (built at BASE). */
static const uint8_t *at(uint64_t gpa)
{
	assert_true(gpa >= BASE && gpa + sizeof(struct acpi_header) <= BASE + t.len);
	return t.buf + (gpa - BASE);
}

/* Common header checks; returns the table's length. */
static uint32_t check_header(const uint8_t *p, const char *sig, uint8_t revision)
{
	struct acpi_header h;
	memcpy(&h, p, sizeof(h));
	assert_memory_equal(h.signature, sig, 4);
	assert_int_equal(h.revision, revision);
	assert_memory_equal(h.oem_id, "VMM   ", 6);
	assert_memory_equal(h.oem_table_id, "MICROVM ", 8);
	assert_memory_equal(h.creator_id, "VMM ", 4);
	assert_true(h.length >= sizeof(h));
	assert_true(p + h.length <= t.buf + t.len);
	assert_int_equal(sum(p, h.length), 0);
	return h.length;
}

static size_t count_bytes(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
	size_t c = 0;
	for (size_t i = 0; i + m <= n; i++)
		if (!memcmp(hay + i, needle, m))
			c++;
	return c;
}

struct madt_counts {
	unsigned lapic, ioapic, iso, nmi;
};

static void walk_madt(const uint8_t *p, uint32_t len, unsigned ncpus, struct madt_counts *c)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(rd32(p + 36), 0xFEE00000u);	       /* local APIC address */
	assert_int_equal(rd32(p + 40), ACPI_MADT_PCAT_COMPAT); /* flags */
	size_t off = sizeof(struct acpi_madt);
	while (off < len) {
		const uint8_t *e = p + off;
		assert_true(e[1] >= 2 && off + e[1] <= len);
		switch (e[0]) {
		case ACPI_MADT_TYPE_LAPIC: {
			struct acpi_madt_lapic l;
			assert_int_equal(e[1], sizeof(l));
			memcpy(&l, e, sizeof(l));
			assert_int_equal(l.apic_id, c->lapic); /* in order: APIC id = index */
			assert_int_equal(l.uid, c->lapic);
			assert_int_equal(l.flags, ACPI_MADT_LAPIC_ENABLED);
			c->lapic++;
			break;
		}
		case ACPI_MADT_TYPE_IOAPIC: {
			struct acpi_madt_ioapic io;
			assert_int_equal(e[1], sizeof(io));
			memcpy(&io, e, sizeof(io));
			assert_int_equal(io.id, ncpus);
			assert_int_equal(io.address, 0xFEC00000u);
			assert_int_equal(io.gsi_base, 0);
			c->ioapic++;
			break;
		}
		case ACPI_MADT_TYPE_ISO: {
			struct acpi_madt_iso iso;
			assert_int_equal(e[1], sizeof(iso));
			memcpy(&iso, e, sizeof(iso));
			/* Only IRQ0, and only if the MP table routes it
			 * elsewhere; ISA conforming flags. */
			assert_int_equal(iso.bus, 0);
			assert_int_equal(iso.source, 0);
			assert_int_equal(iso.gsi, MPTABLE_IRQ0_PIN);
			assert_int_equal(iso.flags, ACPI_INTI_CONFORMS);
			c->iso++;
			break;
		}
		case ACPI_MADT_TYPE_LAPIC_NMI: {
			struct acpi_madt_lapic_nmi nmi;
			assert_int_equal(e[1], sizeof(nmi));
			memcpy(&nmi, e, sizeof(nmi));
			assert_int_equal(nmi.uid, 0xFF);
			assert_int_equal(nmi.lint, 1);
			assert_int_equal(nmi.flags, ACPI_INTI_ACTIVE_HIGH | ACPI_INTI_EDGE);
			c->nmi++;
			break;
		}
		default:
			fail_msg("unexpected MADT entry type %u at %zu", e[0], off);
		}
		off += e[1];
	}
	assert_int_equal(off, len);
}

static void check_fadt(const uint8_t *p)
{
	struct acpi_fadt f;
	assert_int_equal(check_header(p, "FACP", 6), 276);
	memcpy(&f, p, sizeof(f));
	assert_int_equal(f.minor_version, ACPI_FADT_MINOR_REVISION);
	assert_true(f.flags & (1u << 20));	    /* HW_REDUCED_ACPI */
	assert_true(f.flags & (1u << 10));	    /* RESET_REG_SUP */
	assert_true(f.flags & (1u << 4));	    /* PWR_BUTTON: no fixed-feature button */
	assert_true(f.flags & (1u << 5));	    /* SLP_BUTTON */
	assert_true(f.iapc_boot_arch & (1u << 1));  /* 8042 */
	assert_true(f.iapc_boot_arch & (1u << 2));  /* no VGA */
	assert_true(f.iapc_boot_arch & (1u << 5));  /* no CMOS RTC */
	assert_false(f.iapc_boot_arch & (1u << 3)); /* MSI not forbidden */
	/* RESET_REG: SystemIO 0x64, 8 bits, byte access; 0xFE resets. */
	assert_int_equal(p[116], 1);
	assert_int_equal(p[117], 8);
	assert_int_equal(p[118], 0);
	assert_int_equal(p[119], 1);
	assert_int_equal(rd64(p + 120), 0x64);
	assert_int_equal(p[128], 0xFE);
	/* Hardware-reduced: no FACS, SCI, SMI port, PM or GPE blocks. */
	assert_int_equal(f.firmware_ctrl, 0);
	assert_int_equal(f.x_firmware_ctrl, 0);
	assert_int_equal(f.sci_int, 0);
	assert_int_equal(f.smi_cmd, 0);
	for (size_t off = 56; off < 96; off++) /* PM1a_EVT_BLK .. CST_CNT */
		assert_int_equal(p[off], 0);
	for (size_t off = 148; off < 276; off++) /* X_PM1a_EVT_BLK .. the end */
		assert_int_equal(p[off], 0);
	/* DSDT through X_DSDT only. */
	assert_int_equal(f.dsdt, 0);
	assert_int_equal(f.x_dsdt, BASE + t.dsdt);
}

static void check_tables(unsigned ncpus, unsigned ndevs)
{
	assert_int_equal(acpi_build(&t, BASE, ncpus, virtio_devs, ndevs), 0);
	assert_true(t.len <= ACPI_BUF_SIZE);

	/* RSDP */
	struct acpi_rsdp r;
	assert_int_equal(t.rsdp, 0);
	memcpy(&r, t.buf, sizeof(r));
	assert_memory_equal(r.signature, "RSD PTR ", 8);
	assert_int_equal(r.revision, 2);
	assert_int_equal(r.length, 36);
	assert_memory_equal(r.oem_id, "VMM   ", 6);
	assert_int_equal(sum(t.buf, 20), 0);
	assert_int_equal(sum(t.buf, 36), 0);
	assert_int_equal(r.rsdt_address, BASE + t.rsdt);
	assert_int_equal(r.xsdt_address, BASE + t.xsdt);

	/* XSDT and RSDT: FADT, then MADT. */
	const uint8_t *xsdt = at(r.xsdt_address);
	assert_int_equal(check_header(xsdt, "XSDT", 1), 36 + 2 * 8);
	assert_int_equal(rd64(xsdt + 36), BASE + t.fadt);
	assert_int_equal(rd64(xsdt + 44), BASE + t.madt);
	const uint8_t *rsdt = at(r.rsdt_address);
	assert_int_equal(check_header(rsdt, "RSDT", 1), 36 + 2 * 4);
	assert_int_equal(rd32(rsdt + 36), BASE + t.fadt);
	assert_int_equal(rd32(rsdt + 40), BASE + t.madt);

	/* FADT -> DSDT */
	const uint8_t *fadt = at(rd64(xsdt + 36));
	check_fadt(fadt);
	const uint8_t *dsdt = at(rd64(fadt + 140));
	uint32_t dsdt_len = check_header(dsdt, "DSDT", 2);
	assert_int_equal(dsdt[36], 0x10); /* Scope (\_SB) */
	assert_int_equal(count_bytes(dsdt, dsdt_len, "COM1", 4), 1);
	assert_int_equal(count_bytes(dsdt, dsdt_len, "\x0c\x41\xd0\x05\x01", 5), 1); /* PNP0501 */
	assert_int_equal(count_bytes(dsdt, dsdt_len, "LNRO0005", 9), ndevs);

	/* MADT */
	const uint8_t *madt = at(rd64(xsdt + 44));
	uint32_t madt_len = check_header(madt, "APIC", ACPI_MADT_REVISION);
	unsigned isos = MPTABLE_IRQ0_PIN != 0;
	assert_int_equal(madt_len, 44 + 8 * ncpus + 12 + 10 * isos + 6);
	struct madt_counts c;
	walk_madt(madt, madt_len, ncpus, &c);
	assert_int_equal(c.lapic, ncpus);
	assert_int_equal(c.ioapic, 1);
	assert_int_equal(c.iso, isos);
	assert_int_equal(c.nmi, 1);

	/* Every table 8-byte aligned and inside the buffer, none overlapping
	 * the RSDP. */
	size_t offs[] = {t.rsdt, t.xsdt, t.fadt, t.madt, t.dsdt};
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		assert_int_equal(offs[i] % 8, 0);
		assert_true(offs[i] >= sizeof(struct acpi_rsdp));
	}
}

static void test_1cpu(void **state)
{
	(void)state;
	check_tables(1, 0);
}

static void test_2cpus(void **state)
{
	(void)state;
	check_tables(2, 1);
}

static void test_64cpus(void **state)
{
	(void)state;
	check_tables(64, 9);
}

static void test_every_count(void **state)
{
	(void)state;
	for (unsigned n = 1; n <= ACPI_MAX_CPUS; n++)
		check_tables(n, n % (ACPI_MAX_MMIO_DEVS + 1));
}

/* The largest tables fit the region reserved for them, clear of the MP
 * configuration table, and RSDT/FADT 32-bit pointers can reach them. */
static void test_fits_region(void **state)
{
	(void)state;
	assert_int_equal(acpi_build(&t, BASE, ACPI_MAX_CPUS, virtio_devs, ACPI_MAX_MMIO_DEVS), 0);
	assert_true(BASE + t.len <= BOOT_ACPI_END);
	assert_true(BOOT_ACPI_END <= BOOT_MPC_ADDR);
	assert_true(BASE + t.len <= 0xFFFFFFFFu);
	assert_int_equal(BASE % 16, 0);
	assert_true(BASE >= 0xE0000 && BASE + 36 <= 0x100000); /* where Linux scans */
	/* ACPI_MAX_CPUS covers every vCPU the VMM can have, and xAPIC
	 * entries suffice: ids 0..ncpus (IOAPIC included) stay below the
	 * broadcast id 0xFF; beyond 254 x2APIC entries would be needed. */
	assert_true(ACPI_MAX_CPUS >= VMM_MAX_CPUS);
	assert_true(ACPI_MAX_CPUS + 1 < 0xFF);
}

static void test_bad_args(void **state)
{
	(void)state;
	struct boot_mmio_dev d = {0xd0000000, 0x1000, 5};
	assert_int_equal(acpi_build(&t, BASE, 0, NULL, 0), -1);
	assert_int_equal(acpi_build(&t, BASE, ACPI_MAX_CPUS + 1, NULL, 0), -1);
	assert_int_equal(acpi_build(&t, BASE + 8, 1, NULL, 0), -1);	 /* RSDP alignment */
	assert_int_equal(acpi_build(&t, 0xFFFFF800ULL, 1, NULL, 0), -1); /* crosses 4 GiB */
	assert_int_equal(acpi_build(&t, BASE, 1, NULL, 1), -1);
	assert_int_equal(acpi_build(&t, BASE, 1, virtio_devs, ACPI_MAX_MMIO_DEVS + 1), -1);
	d.base = 0xFFFFF800;
	assert_int_equal(acpi_build(&t, BASE, 1, &d, 1), -1); /* ends above 4 GiB */
	d.base = 0xd0000000;
	d.size = 0;
	assert_int_equal(acpi_build(&t, BASE, 1, &d, 1), -1);
	d.size = 0x1000;
	d.gsi = ACPI_IOAPIC_PINS;
	assert_int_equal(acpi_build(&t, BASE, 1, &d, 1), -1);
	d.gsi = ACPI_IOAPIC_PINS - 1;
	assert_int_equal(acpi_build(&t, BASE, 1, &d, 1), 0);
}

/* The DSDT's AML, byte for byte: COM1 and one virtio-mmio window. These
 * bytes are what iasl makes of
 *   Scope (\_SB) {
 *     Device (COM1) { Name (_HID, EisaId ("PNP0501")) Name (_UID, One)
 *       Name (_CRS, ResourceTemplate () {
 *         IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08) IRQNoFlags () {4} }) }
 *     Device (VR00) { Name (_HID, "LNRO0005") Name (_UID, Zero)
 *       Name (_CRS, ResourceTemplate () {
 *         Memory32Fixed (ReadWrite, 0xD0000000, 0x00001000)
 *         Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) {5} }) } }
 * (checked with iasl and acpiexec when written). */
static void test_dsdt_aml(void **state)
{
	(void)state;
	static const uint8_t want[] = {
	    0x10, 0x40, 0x07, 0x5c, 0x5f, 0x53, 0x42, 0x5f, /* Scope, PkgLength 112, \_SB_ */
	    0x5b, 0x82, 0x2b, 0x43, 0x4f, 0x4d, 0x31,	    /* Device (COM1) */
	    0x08, 0x5f, 0x48, 0x49, 0x44, 0x0c, 0x41, 0xd0, 0x05, 0x01, /* _HID PNP0501 */
	    0x08, 0x5f, 0x55, 0x49, 0x44, 0x01,				/* _UID One */
	    0x08, 0x5f, 0x43, 0x52, 0x53, 0x11, 0x10, 0x0a, 0x0d,	/* _CRS Buffer(13) */
	    0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,		/* IO */
	    0x22, 0x10, 0x00,						/* IRQNoFlags {4} */
	    0x79, 0x00,							/* End tag */
	    0x5b, 0x82, 0x3a, 0x56, 0x52, 0x30, 0x30,			/* Device (VR00) */
	    0x08, 0x5f, 0x48, 0x49, 0x44, 0x0d, 0x4c, 0x4e, 0x52, 0x4f, 0x30, 0x30,
	    0x30, 0x35, 0x00,					  /* _HID "LNRO0005" */
	    0x08, 0x5f, 0x55, 0x49, 0x44, 0x00,			  /* _UID Zero */
	    0x08, 0x5f, 0x43, 0x52, 0x53, 0x11, 0x1a, 0x0a, 0x17, /* _CRS Buffer(23) */
	    0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00, /* Mem32Fixed */
	    0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00, /* Interrupt {5} */
	    0x79, 0x00,
	};
	assert_int_equal(acpi_build(&t, BASE, 1, virtio_devs, 1), 0);
	const uint8_t *dsdt = t.buf + t.dsdt;
	assert_int_equal(rd32(dsdt + 4), 36 + sizeof(want));
	assert_memory_equal(dsdt + 36, want, sizeof(want));
}

/* PkgLength grows to two bytes past 63 and stays consistent: walk the
 * Scope and each Device by their lengths. */
static size_t pkglen(const uint8_t *p, size_t *nbytes)
{
	unsigned extra = p[0] >> 6;
	*nbytes = 1 + extra;
	if (!extra)
		return p[0] & 0x3F;
	size_t len = p[0] & 0xF;
	for (unsigned i = 0; i < extra; i++)
		len |= (size_t)p[1 + i] << (4 + 8 * i);
	return len;
}

static void test_dsdt_structure(void **state)
{
	(void)state;
	assert_int_equal(acpi_build(&t, BASE, 4, virtio_devs, ACPI_MAX_MMIO_DEVS), 0);
	const uint8_t *dsdt = t.buf + t.dsdt;
	uint32_t len = rd32(dsdt + 4);
	const uint8_t *p = dsdt + 36;
	assert_int_equal(p[0], 0x10);
	size_t n, scope = pkglen(p + 1, &n);
	assert_int_equal(n, 2);
	assert_int_equal(1 + scope, len - 36); /* the Scope is the whole body */
	const uint8_t *d = p + 1 + n + 5, *end = p + 1 + scope;
	unsigned devices = 0;
	while (d < end) {
		assert_int_equal(d[0], 0x5b);
		assert_int_equal(d[1], 0x82);
		size_t dl = pkglen(d + 2, &n);
		if (devices == 0)
			assert_memory_equal(d + 2 + n, "COM1", 4);
		else {
			char name[16];
			snprintf(name, sizeof(name), "VR%02X", (devices - 1) & 0xFF);
			assert_memory_equal(d + 2 + n, name, 4);
		}
		d += 2 + dl;
		devices++;
	}
	assert_ptr_equal(d, end);
	assert_int_equal(devices, 1 + ACPI_MAX_MMIO_DEVS);
}

static void test_checksum_helper(void **state)
{
	(void)state;
	uint8_t b[7] = {0x52, 0x53, 0x44, 0, 0xff, 0x80, 1};
	b[3] = boot_checksum8(b, sizeof(b));
	assert_int_equal(sum(b, sizeof(b)), 0);
}

/* Follow the guest's path through guest RAM only: scan for the RSDP the
 * way Linux does without a pointer, then RSDP -> XSDT -> FADT -> DSDT and
 * XSDT -> MADT, checking every checksum. */
static void test_written_to_guest(void **state)
{
	(void)state;
	struct guest_mem m;
	assert_int_equal(guest_mem_init(&m, 16 * MIB, 0), 0);
	assert_int_equal(acpi_write(&m, 8, virtio_devs, 2), BOOT_ACPI_ADDR);

	uint64_t rsdp = 0;
	for (uint64_t a = 0xE0000; a < 0x100000; a += 16) {
		const uint8_t *p = guest_ptr(&m, a, 20);
		if (!memcmp(p, "RSD PTR ", 8) && sum(p, 20) == 0) {
			rsdp = a;
			break;
		}
	}
	assert_int_equal(rsdp, BOOT_ACPI_ADDR);
	const uint8_t *r = guest_ptr(&m, rsdp, 36);
	assert_int_equal(sum(r, 36), 0);
	uint64_t xsdt = rd64(r + 24);
	const uint8_t *x = guest_ptr(&m, xsdt, 36);
	uint32_t xlen = rd32(x + 4);
	x = guest_ptr(&m, xsdt, xlen);
	assert_non_null(x);
	assert_int_equal(sum(x, xlen), 0);
	assert_int_equal((xlen - 36) / 8, 2);
	const char *sigs[] = {"FACP", "APIC"};
	for (unsigned i = 0; i < 2; i++) {
		uint64_t gpa = rd64(x + 36 + 8 * i);
		const uint8_t *h = guest_ptr(&m, gpa, 36);
		assert_non_null(h);
		assert_memory_equal(h, sigs[i], 4);
		uint32_t len = rd32(h + 4);
		assert_int_equal(sum(guest_ptr(&m, gpa, len), len), 0);
	}
	const uint8_t *fadt = guest_ptr(&m, rd64(x + 36), 276);
	const uint8_t *dsdt = guest_ptr(&m, rd64(fadt + 140), 36);
	assert_memory_equal(dsdt, "DSDT", 4);
	uint32_t dlen = rd32(dsdt + 4);
	assert_int_equal(sum(guest_ptr(&m, rd64(fadt + 140), dlen), dlen), 0);
	const uint8_t *madt = guest_ptr(&m, rd64(x + 44), 36);
	assert_int_equal(rd32(madt + 4), 44 + 8 * 8 + 12 + 10 * (MPTABLE_IRQ0_PIN != 0) + 6);
	uint16_t nmi_flags = rd16(madt + rd32(madt + 4) - 3);
	assert_int_equal(nmi_flags, ACPI_INTI_ACTIVE_HIGH | ACPI_INTI_EDGE);

	/* The whole region is e820-reserved, never RAM. */
	struct e820_range e[E820_MAX_RANGES];
	unsigned n = e820_build(&m, e, E820_MAX_RANGES);
	bool covered = false;
	for (unsigned i = 0; i < n; i++) {
		bool overlaps = e[i].addr < BOOT_ACPI_END && e[i].addr + e[i].size > BOOT_ACPI_ADDR;
		if (overlaps)
			assert_int_equal(e[i].type, E820_TYPE_RESERVED);
		if (e[i].addr <= BOOT_ACPI_ADDR && e[i].addr + e[i].size >= 0x100000)
			covered = true;
	}
	assert_true(covered);

	/* And it fails cleanly where it cannot be built. */
	assert_int_equal(acpi_write(&m, 0, NULL, 0), 0);
	guest_mem_destroy(&m);
}

static void test_pvh_rsdp(void **state)
{
	(void)state;
	struct guest_mem m;
	uint64_t v;
	assert_int_equal(guest_mem_init(&m, 16 * MIB, 0), 0);
	assert_int_equal(pvh_write_acpi(&m, 0x20000, 0, 0, BOOT_ACPI_ADDR), BOOT_PVH_INFO_ADDR);
	assert_true(guest_read(&m, BOOT_PVH_INFO_ADDR + 32, &v, 8)); /* rsdp_paddr */
	assert_int_equal(v, BOOT_ACPI_ADDR);
	assert_int_equal(pvh_write(&m, 0x20000, 0, 0), BOOT_PVH_INFO_ADDR);
	assert_true(guest_read(&m, BOOT_PVH_INFO_ADDR + 32, &v, 8));
	assert_int_equal(v, 0);
	guest_mem_destroy(&m);
}

/* ---- through boot_load(): every protocol points the guest at the RSDP ---- */

static struct vm vm;
static struct vm_config cfg;
static char kpath[64];

static int setup_vm(void **state)
{
	(void)state;
	memset(&vm, 0, sizeof(vm));
	cfg.cpus = 3;
	vm.cfg = &cfg;
	vm.kvm_fd = vm.vm_fd = -1;
	kpath[0] = 0;
	return guest_mem_init(&vm.mem, 64 * MIB, 0) == 0 ? 0 : -1;
}

static int teardown_vm(void **state)
{
	(void)state;
	guest_mem_destroy(&vm.mem);
	if (kpath[0])
		unlink(kpath);
	return 0;
}

/* An ELF64 with one PT_LOAD at 1 MiB, and a PVH note if asked. */
static void write_elf(bool pvh)
{
	static uint8_t elf[0x3000];
	memset(elf, 0, sizeof(elf));
	Elf64_Ehdr *eh = (Elf64_Ehdr *)elf;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_entry = 0x100000;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = pvh ? 2 : 1;
	Elf64_Phdr *ph = (Elf64_Phdr *)(elf + sizeof(*eh));
	ph[0].p_type = PT_LOAD;
	ph[0].p_offset = 0x1000;
	ph[0].p_paddr = ph[0].p_vaddr = 0x100000;
	ph[0].p_filesz = ph[0].p_memsz = 0x1000;
	if (pvh) {
		uint32_t note[] = {4, 4, 18, 0x006e6558 /* "Xen\0" */, 0x100000};
		memcpy(elf + 0x2000, note, sizeof(note));
		ph[1].p_type = PT_NOTE;
		ph[1].p_offset = 0x2000;
		ph[1].p_filesz = sizeof(note);
		ph[1].p_align = 4;
	}
	strcpy(kpath, "/tmp/vmm-test-acpi-XXXXXX");
	int fd = mkstemp(kpath);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, elf, sizeof(elf)), (ssize_t)sizeof(elf));
	close(fd);
}

/* What boot_load left at the RSDP: 3 vCPUs (from the config) and the
 * virtio window in the DSDT. */
static void check_guest_tables(void)
{
	const uint8_t *r = guest_ptr(&vm.mem, BOOT_ACPI_ADDR, 36);
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(sum(r, 36), 0);
	const uint8_t *x = guest_ptr(&vm.mem, rd64(r + 24), 52);
	const uint8_t *madt = guest_ptr(&vm.mem, rd64(x + 44), 36);
	assert_memory_equal(madt, "APIC", 4);
	assert_int_equal(rd32(madt + 4), 44 + 8 * 3 + 12 + 10 * (MPTABLE_IRQ0_PIN != 0) + 6);
	const uint8_t *fadt = guest_ptr(&vm.mem, rd64(x + 36), 276);
	uint64_t dsdt_gpa = rd64(fadt + 140);
	const uint8_t *dsdt = guest_ptr(&vm.mem, dsdt_gpa, 36);
	uint32_t dlen = rd32(dsdt + 4);
	dsdt = guest_ptr(&vm.mem, dsdt_gpa, dlen);
	assert_int_equal(count_bytes(dsdt, dlen, "LNRO0005", 9), 1);
	/* Memory32Fixed at 0xd0000000, 4 KiB; Interrupt {5} */
	assert_int_equal(
	    count_bytes(dsdt, dlen, "\x86\x09\x00\x01\x00\x00\x00\xd0\x00\x10\x00\x00", 12), 1);
	assert_int_equal(count_bytes(dsdt, dlen, "\x89\x06\x00\x03\x01\x05\x00\x00\x00", 9), 1);
}

static void test_boot_load_zero_page(void **state)
{
	(void)state;
	struct boot_setup bs;
	struct boot_request req = {.kernel_path = kpath, .cmdline = "acpi", .mmio_devs = virtio_devs, .n_mmio_devs = 1};
	write_elf(false);
	assert_int_equal(boot_load(&vm, &req, &bs), 0);
	assert_int_equal(bs.protocol, BOOT_LINUX64);
	uint64_t rsdp;
	assert_true(guest_read(&vm.mem, BOOT_ZEROPAGE_ADDR + 0x070, &rsdp, 8)); /* acpi_rsdp_addr */
	assert_int_equal(rsdp, BOOT_ACPI_ADDR);
	check_guest_tables();
}

static void test_boot_load_pvh(void **state)
{
	(void)state;
	struct boot_setup bs;
	struct boot_request req = {.kernel_path = kpath, .cmdline = "acpi", .mmio_devs = virtio_devs, .n_mmio_devs = 1};
	write_elf(true);
	assert_int_equal(boot_load(&vm, &req, &bs), 0);
	assert_int_equal(bs.protocol, BOOT_PVH);
	uint64_t rsdp;
	assert_true(guest_read(&vm.mem, bs.info_gpa + 32, &rsdp, 8)); /* rsdp_paddr */
	assert_int_equal(rsdp, BOOT_ACPI_ADDR);
	check_guest_tables();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_1cpu),
	    cmocka_unit_test(test_2cpus),
	    cmocka_unit_test(test_64cpus),
	    cmocka_unit_test(test_every_count),
	    cmocka_unit_test(test_fits_region),
	    cmocka_unit_test(test_bad_args),
	    cmocka_unit_test(test_dsdt_aml),
	    cmocka_unit_test(test_dsdt_structure),
	    cmocka_unit_test(test_checksum_helper),
	    cmocka_unit_test(test_written_to_guest),
	    cmocka_unit_test(test_pvh_rsdp),
	    cmocka_unit_test_setup_teardown(test_boot_load_zero_page, setup_vm, teardown_vm),
	    cmocka_unit_test_setup_teardown(test_boot_load_pvh, setup_vm, teardown_vm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
