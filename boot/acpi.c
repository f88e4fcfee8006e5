#include "acpi.h"
#include "checksum.h"

#include <stdbool.h>
#include <string.h>

#include "layout.h"
#include "mptable.h"

_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP size");
_Static_assert(offsetof(struct acpi_rsdp, length) == 20, "RSDP 1.0 part is 20 bytes");
_Static_assert(sizeof(struct acpi_header) == 36, "table header size");
_Static_assert(sizeof(struct acpi_gas) == 12, "generic address size");
_Static_assert(offsetof(struct acpi_fadt, iapc_boot_arch) == 109, "FADT IAPC_BOOT_ARCH offset");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT Flags offset");
_Static_assert(offsetof(struct acpi_fadt, reset_reg) == 116, "FADT RESET_REG offset");
_Static_assert(offsetof(struct acpi_fadt, reset_value) == 128, "FADT RESET_VALUE offset");
_Static_assert(offsetof(struct acpi_fadt, minor_version) == 131, "FADT minor version offset");
_Static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT X_DSDT offset");
_Static_assert(offsetof(struct acpi_fadt, sleep_status_reg) == 256, "FADT SLEEP_STATUS offset");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6 size");
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT header size");
_Static_assert(sizeof(struct acpi_madt_lapic) == 8, "Local APIC entry size");
_Static_assert(sizeof(struct acpi_madt_ioapic) == 12, "IOAPIC entry size");
_Static_assert(sizeof(struct acpi_madt_iso) == 10, "Interrupt Source Override size");
_Static_assert(sizeof(struct acpi_madt_lapic_nmi) == 6, "Local APIC NMI entry size");
/* xAPIC ids are 8 bits, 0xFF is broadcast, and the IOAPIC takes id ncpus. */
_Static_assert(ACPI_MAX_CPUS < 0xFF, "more vCPUs need x2APIC entries");
_Static_assert(ACPI_MAX_CPUS >= MPTABLE_MAX_CPUS, "ACPI describes every vCPU the MP table does");
_Static_assert(BOOT_ACPI_ADDR % 16 == 0, "the RSDP is found on 16-byte boundaries");
_Static_assert(BOOT_ACPI_ADDR >= BOOT_BIOS_START && BOOT_ACPI_ADDR + ACPI_BUF_SIZE <= BOOT_ACPI_END,
	       "the ACPI tables fit their e820-reserved region");
_Static_assert(BOOT_ACPI_END <= BOOT_MPC_ADDR, "the ACPI tables stay clear of the MP table");

#define TABLE_ALIGN 16
#define ISA_IRQS 16

/* ---- a bounded byte buffer; overflow is sticky and checked once ---- */

struct out {
	uint8_t *p;
	size_t len, cap;
	bool overflow;
};

static void put(struct out *o, const void *b, size_t n)
{
	if (o->overflow || n > o->cap - o->len) {
		o->overflow = true;
		return;
	}
	memcpy(o->p + o->len, b, n);
	o->len += n;
}

static void put8(struct out *o, uint8_t v)
{
	put(o, &v, 1);
}

static void put16(struct out *o, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	put(o, b, sizeof(b));
}

static void put32(struct out *o, uint32_t v)
{
	put16(o, (uint16_t)v);
	put16(o, (uint16_t)(v >> 16));
}

static void align(struct out *o)
{
	static const uint8_t zero[TABLE_ALIGN];
	put(o, zero, (TABLE_ALIGN - o->len % TABLE_ALIGN) % TABLE_ALIGN);
}

/* ---- AML (ACPI Machine Language), the little the DSDT needs ---- */

#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0A
#define AML_WORD_PREFIX 0x0B
#define AML_DWORD_PREFIX 0x0C
#define AML_STRING_PREFIX 0x0D
#define AML_QWORD_PREFIX 0x0E
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_EXT_PREFIX 0x5B
#define AML_DEVICE_OP 0x82 /* after AML_EXT_PREFIX */
#define AML_ROOT_CHAR '\\'

/* Resource descriptors */
#define RES_IRQ_NO_FLAGS 0x22	/* small item 0x4, 2 bytes: edge, active high, exclusive */
#define RES_IO 0x47		/* small item 0x8, 7 bytes */
#define RES_END_TAG 0x79	/* small item 0xF, 1 byte */
#define RES_MEMORY32_FIXED 0x86 /* large item 0x6 */
#define RES_EXT_IRQ 0x89	/* large item 0x9 */
#define RES_IO_DECODE16 0x01
#define RES_MEM_READ_WRITE 0x01
#define RES_EXT_IRQ_CONSUMER 0x01
#define RES_EXT_IRQ_EDGE 0x02 /* active high and exclusive are 0 */

#define COM1_IO_BASE 0x3F8
#define COM1_IO_LEN 8
#define COM1_ISA_IRQ 4
#define VIRTIO_MMIO_HID "LNRO0005"

/* PkgLength: the length of what follows the opcode, itself included, in
 * 1 to 4 bytes (6 bits in one byte; else 4 bits + 8 per extra byte). */
static void aml_pkglen(struct out *o, size_t body)
{
	if (body + 1 <= 0x3F) {
		put8(o, (uint8_t)(body + 1));
		return;
	}
	for (unsigned extra = 1; extra <= 3; extra++) {
		size_t total = body + 1 + extra;
		if (total >> (4 + 8 * extra))
			continue;
		put8(o, (uint8_t)((extra << 6) | (total & 0xF)));
		for (unsigned i = 0; i < extra; i++)
			put8(o, (uint8_t)(total >> (4 + 8 * i)));
		return;
	}
	o->overflow = true; /* 256 MiB: never for us */
}

static void aml_integer(struct out *o, uint64_t v)
{
	if (v == 0) {
		put8(o, AML_ZERO_OP);
	} else if (v == 1) {
		put8(o, AML_ONE_OP);
	} else if (v <= 0xFF) {
		put8(o, AML_BYTE_PREFIX);
		put8(o, (uint8_t)v);
	} else if (v <= 0xFFFF) {
		put8(o, AML_WORD_PREFIX);
		put16(o, (uint16_t)v);
	} else if (v <= 0xFFFFFFFF) {
		put8(o, AML_DWORD_PREFIX);
		put32(o, (uint32_t)v);
	} else {
		put8(o, AML_QWORD_PREFIX);
		put32(o, (uint32_t)v);
		put32(o, (uint32_t)(v >> 32));
	}
}

static void aml_name_integer(struct out *o, const char name[4], uint64_t v)
{
	put8(o, AML_NAME_OP);
	put(o, name, 4);
	aml_integer(o, v);
}

static void aml_name_string(struct out *o, const char name[4], const char *s)
{
	put8(o, AML_NAME_OP);
	put(o, name, 4);
	put8(o, AML_STRING_PREFIX);
	put(o, s, strlen(s) + 1);
}

static unsigned hex_digit(char c)
{
	return c >= 'A' ? (unsigned)(c - 'A' + 10) & 0xF : (unsigned)(c - '0') & 0xF;
}

/* A compressed EISA id ("PNP0501") as the DWordConst ASL's EisaId() gives:
 * three 5-bit letters ('A' = 1) then four upper-case hex digits, most
 * significant byte first. */
static void aml_name_eisaid(struct out *o, const char name[4], const char id[7])
{
	uint16_t vendor = (uint16_t)(((id[0] - '@') & 0x1F) << 10 | ((id[1] - '@') & 0x1F) << 5 |
				     ((id[2] - '@') & 0x1F));
	uint16_t product = 0;
	for (int i = 3; i < 7; i++)
		product = (uint16_t)(product << 4 | hex_digit(id[i]));
	uint8_t b[4] = {(uint8_t)(vendor >> 8), (uint8_t)vendor, (uint8_t)(product >> 8),
			(uint8_t)product};
	put8(o, AML_NAME_OP);
	put(o, name, 4);
	put8(o, AML_DWORD_PREFIX);
	put(o, b, sizeof(b));
}

/* Name(name, Buffer() { bytes }): a resource template. */
static void aml_name_buffer(struct out *o, const char name[4], const uint8_t *b, size_t n)
{
	uint8_t sizebuf[9];
	struct out size = {.p = sizebuf, .cap = sizeof(sizebuf)};
	aml_integer(&size, n);
	put8(o, AML_NAME_OP);
	put(o, name, 4);
	put8(o, AML_BUFFER_OP);
	aml_pkglen(o, size.len + n);
	put(o, sizebuf, size.len);
	put(o, b, n);
}

/* Device(name) { body } */
static void aml_device(struct out *o, const char name[4], const struct out *body)
{
	put8(o, AML_EXT_PREFIX);
	put8(o, AML_DEVICE_OP);
	aml_pkglen(o, 4 + body->len);
	put(o, name, 4);
	put(o, body->p, body->len);
	o->overflow |= body->overflow;
}

/* Scope(\name) { body } */
static void aml_root_scope(struct out *o, const char name[4], const struct out *body)
{
	put8(o, AML_SCOPE_OP);
	aml_pkglen(o, 1 + 4 + body->len);
	put8(o, AML_ROOT_CHAR);
	put(o, name, 4);
	put(o, body->p, body->len);
	o->overflow |= body->overflow;
}

static void com1_device(struct out *o)
{
	uint8_t body_buf[128], crs_buf[16];
	struct out body = {.p = body_buf, .cap = sizeof(body_buf)};
	struct out crs = {.p = crs_buf, .cap = sizeof(crs_buf)};

	put8(&crs, RES_IO);
	put8(&crs, RES_IO_DECODE16);
	put16(&crs, COM1_IO_BASE); /* minimum */
	put16(&crs, COM1_IO_BASE); /* maximum */
	put8(&crs, 1);		   /* alignment */
	put8(&crs, COM1_IO_LEN);
	put8(&crs, RES_IRQ_NO_FLAGS);
	put16(&crs, 1u << COM1_ISA_IRQ);
	put8(&crs, RES_END_TAG);
	put8(&crs, 0); /* checksum 0: not checked */

	aml_name_eisaid(&body, "_HID", "PNP0501");
	aml_name_integer(&body, "_UID", ACPI_COM1_UID);
	aml_name_buffer(&body, "_CRS", crs.p, crs.len);
	body.overflow |= crs.overflow;
	aml_device(o, "COM1", &body);
}

static void mmio_device(struct out *o, unsigned index, const struct boot_mmio_dev *d)
{
	static const char hex[] = "0123456789ABCDEF";
	uint8_t body_buf[128], crs_buf[32];
	struct out body = {.p = body_buf, .cap = sizeof(body_buf)};
	struct out crs = {.p = crs_buf, .cap = sizeof(crs_buf)};
	char name[4] = {'V', 'R', hex[(index >> 4) & 0xF], hex[index & 0xF]};

	put8(&crs, RES_MEMORY32_FIXED);
	put16(&crs, 9);
	put8(&crs, RES_MEM_READ_WRITE);
	put32(&crs, (uint32_t)d->base);
	put32(&crs, (uint32_t)d->size);
	put8(&crs, RES_EXT_IRQ);
	put16(&crs, 6);
	put8(&crs, RES_EXT_IRQ_CONSUMER | RES_EXT_IRQ_EDGE);
	put8(&crs, 1); /* one interrupt */
	put32(&crs, d->gsi);
	put8(&crs, RES_END_TAG);
	put8(&crs, 0);

	aml_name_string(&body, "_HID", VIRTIO_MMIO_HID);
	aml_name_integer(&body, "_UID", index);
	aml_name_buffer(&body, "_CRS", crs.p, crs.len);
	body.overflow |= crs.overflow;
	aml_device(o, name, &body);
}

/* ---- tables ---- */

static void fill_header(struct acpi_header *h, const char sig[4], uint32_t len, uint8_t revision)
{
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = revision;
	memcpy(h->oem_id, ACPI_OEM_ID, sizeof(h->oem_id));
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, sizeof(h->oem_table_id));
	h->oem_revision = ACPI_OEM_REVISION;
	memcpy(h->creator_id, ACPI_CREATOR_ID, sizeof(h->creator_id));
	h->creator_revision = ACPI_CREATOR_REVISION;
}

/* Header at `off` (already holding the table's `len` bytes): fill it in and
 * checksum the whole table. */
static void finish_table(struct out *o, size_t off, const char sig[4], uint8_t revision)
{
	if (o->overflow)
		return;
	struct acpi_header h;
	memset(&h, 0, sizeof(h));
	fill_header(&h, sig, (uint32_t)(o->len - off), revision);
	memcpy(o->p + off, &h, sizeof(h));
	o->p[off + offsetof(struct acpi_header, checksum)] =
	    boot_checksum8(o->p + off, o->len - off);
}

static size_t begin_table(struct out *o)
{
	static const struct acpi_header blank;
	align(o);
	size_t off = o->len;
	put(o, &blank, sizeof(blank));
	return off;
}

static size_t build_dsdt(struct out *o, const struct boot_mmio_dev *devs, unsigned ndevs)
{
	uint8_t sb_buf[ACPI_BUF_SIZE];
	struct out sb = {.p = sb_buf, .cap = sizeof(sb_buf)};
	size_t off = begin_table(o);
	com1_device(&sb);
	for (unsigned i = 0; i < ndevs; i++)
		mmio_device(&sb, i, &devs[i]);
	aml_root_scope(o, "_SB_", &sb);
	finish_table(o, off, "DSDT", ACPI_DSDT_REVISION);
	return off;
}

static size_t build_fadt(struct out *o, uint64_t dsdt_gpa)
{
	struct acpi_fadt f;
	memset(&f, 0, sizeof(f));
	/* Hardware-reduced: no SCI, SMI command port, PM/GPE blocks or FACS;
	 * those fields stay 0. The power and sleep buttons, if ever, would be
	 * control-method devices. MSI is left "supported": nothing here uses
	 * it, and a future PCI device would. */
	f.flags = ACPI_FADT_WBINVD | ACPI_FADT_PWR_BUTTON | ACPI_FADT_SLP_BUTTON |
		  ACPI_FADT_RESET_REG_SUP | ACPI_FADT_HW_REDUCED_ACPI;
	f.iapc_boot_arch = ACPI_IAPC_LEGACY_DEVICES | ACPI_IAPC_8042 | ACPI_IAPC_VGA_NOT_PRESENT |
			   ACPI_IAPC_CMOS_RTC_NOT_PRESENT;
	f.reset_reg.space_id = ACPI_GAS_SYSTEM_IO;
	f.reset_reg.bit_width = 8;
	f.reset_reg.access_size = ACPI_GAS_ACCESS_BYTE;
	f.reset_reg.address = ACPI_RESET_PORT;
	f.reset_value = ACPI_RESET_VALUE;
	f.minor_version = ACPI_FADT_MINOR_REVISION;
	f.x_dsdt = dsdt_gpa; /* and DSDT 0: the spec wants one of the two */
	size_t off = begin_table(o);
	put(o, (const uint8_t *)&f + sizeof(f.h), sizeof(f) - sizeof(f.h));
	finish_table(o, off, "FACP", ACPI_FADT_REVISION);
	return off;
}

static size_t build_madt(struct out *o, unsigned ncpus)
{
	uint8_t ioapic_id = (uint8_t)ncpus;
	size_t off = begin_table(o);
	put32(o, (uint32_t)LAPIC_BASE);
	put32(o, ACPI_MADT_PCAT_COMPAT);
	for (unsigned i = 0; i < ncpus; i++) {
		struct acpi_madt_lapic e = {
		    .type = ACPI_MADT_TYPE_LAPIC,
		    .length = sizeof(e),
		    .uid = (uint8_t)i,
		    .apic_id = (uint8_t)i,
		    .flags = ACPI_MADT_LAPIC_ENABLED,
		};
		put(o, &e, sizeof(e));
	}
	struct acpi_madt_ioapic io = {
	    .type = ACPI_MADT_TYPE_IOAPIC,
	    .length = sizeof(io),
	    .id = ioapic_id,
	    .address = (uint32_t)IOAPIC_BASE,
	    .gsi_base = 0,
	};
	put(o, &io, sizeof(io));
	/* ISA IRQ n -> GSI n is ACPI's default; list only the exceptions,
	 * the same ones the MP table's I/O interrupt entries carry. */
	for (unsigned irq = 0; irq < ISA_IRQS; irq++) {
		unsigned gsi = irq == 0 ? MPTABLE_IRQ0_PIN : irq;
		if (gsi == irq)
			continue;
		struct acpi_madt_iso iso = {
		    .type = ACPI_MADT_TYPE_ISO,
		    .length = sizeof(iso),
		    .bus = 0,
		    .source = (uint8_t)irq,
		    .gsi = gsi,
		    .flags = ACPI_INTI_CONFORMS, /* ISA: edge, active high */
		};
		put(o, &iso, sizeof(iso));
	}
	struct acpi_madt_lapic_nmi nmi = {
	    .type = ACPI_MADT_TYPE_LAPIC_NMI,
	    .length = sizeof(nmi),
	    .uid = ACPI_MADT_ALL_PROCESSORS,
	    .flags = ACPI_INTI_ACTIVE_HIGH | ACPI_INTI_EDGE,
	    .lint = ACPI_NMI_LINT,
	};
	put(o, &nmi, sizeof(nmi));
	finish_table(o, off, "APIC", ACPI_MADT_REVISION);
	return off;
}

/* RSDT (entry_size 4) or XSDT (8) listing the given tables. */
static size_t build_sdt(struct out *o, const char sig[4], unsigned entry_size, const uint64_t *gpas,
			unsigned n)
{
	size_t off = begin_table(o);
	for (unsigned i = 0; i < n; i++) {
		put32(o, (uint32_t)gpas[i]);
		if (entry_size == 8)
			put32(o, (uint32_t)(gpas[i] >> 32));
	}
	finish_table(o, off, sig, 1);
	return off;
}

static void fill_rsdp(struct acpi_rsdp *r, uint64_t rsdt_gpa, uint64_t xsdt_gpa)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->signature, "RSD PTR ", sizeof(r->signature));
	memcpy(r->oem_id, ACPI_OEM_ID, sizeof(r->oem_id));
	r->revision = ACPI_RSDP_REVISION;
	r->rsdt_address = (uint32_t)rsdt_gpa;
	r->length = sizeof(*r);
	r->xsdt_address = xsdt_gpa;
	r->checksum = boot_checksum8(r, offsetof(struct acpi_rsdp, length));
	r->extended_checksum = boot_checksum8(r, sizeof(*r));
}

static bool devs_ok(const struct boot_mmio_dev *devs, unsigned ndevs)
{
	if (ndevs > ACPI_MAX_MMIO_DEVS || (ndevs && !devs))
		return false;
	for (unsigned i = 0; i < ndevs; i++)
		if (devs[i].size == 0 || devs[i].size >= MMIO_HOLE_END ||
		    devs[i].base > MMIO_HOLE_END - devs[i].size || devs[i].gsi >= ACPI_IOAPIC_PINS)
			return false; /* Memory32Fixed: below 4 GiB */
	return true;
}

int acpi_build(struct acpi_tables *t, uint64_t base, unsigned ncpus,
	       const struct boot_mmio_dev *devs, unsigned ndevs)
{
	if (ncpus == 0 || ncpus > ACPI_MAX_CPUS || base % TABLE_ALIGN ||
	    base + ACPI_BUF_SIZE > MMIO_HOLE_END || !devs_ok(devs, ndevs))
		return -1;
	memset(t, 0, sizeof(*t));
	struct out o = {.p = t->buf, .cap = sizeof(t->buf)};

	/* The RSDP goes first, at `base`; it is filled in last. */
	static const struct acpi_rsdp blank;
	t->rsdp = 0;
	put(&o, &blank, sizeof(blank));
	t->dsdt = build_dsdt(&o, devs, ndevs);
	t->fadt = build_fadt(&o, base + t->dsdt);
	t->madt = build_madt(&o, ncpus);
	const uint64_t listed[] = {base + t->fadt, base + t->madt};
	t->xsdt = build_sdt(&o, "XSDT", 8, listed, 2);
	t->rsdt = build_sdt(&o, "RSDT", 4, listed, 2);
	if (o.overflow)
		return -1;
	struct acpi_rsdp r;
	fill_rsdp(&r, base + t->rsdt, base + t->xsdt);
	memcpy(t->buf + t->rsdp, &r, sizeof(r));
	t->len = o.len;
	return 0;
}

uint64_t acpi_write(struct guest_mem *m, unsigned ncpus, const struct boot_mmio_dev *devs,
		    unsigned ndevs)
{
	struct acpi_tables t;
	if (acpi_build(&t, BOOT_ACPI_ADDR, ncpus, devs, ndevs) < 0 ||
	    !guest_write(m, BOOT_ACPI_ADDR, t.buf, t.len))
		return 0;
	return BOOT_ACPI_ADDR + t.rsdp;
}
