#include "mptable.h"
#include "checksum.h"

#include <string.h>

#include "layout.h"

_Static_assert(sizeof(struct mpf_intel) == 16, "MP floating pointer size");
_Static_assert(sizeof(struct mpc_table) == 44, "MP config header size");
_Static_assert(sizeof(struct mpc_cpu) == 20, "processor entry size");
_Static_assert(sizeof(struct mpc_bus) == 8, "bus entry size");
_Static_assert(sizeof(struct mpc_ioapic) == 8, "IOAPIC entry size");
_Static_assert(sizeof(struct mpc_intsrc) == 8, "interrupt entry size");
_Static_assert(BOOT_MPC_ADDR + MPC_MAX_SIZE <= BOOT_HIGH_START, "MP table fits the BIOS area");

#define MP_SPEC_REV 4	       /* 1.4 */
#define MP_CPU_SIGNATURE 0x600 /* family 6 */
#define MP_CPU_FEATURES 0x201  /* FPU, APIC */
#define MP_ISA_BUS_ID 0
#define MP_ALL_LAPICS 0xff

struct mpc_writer {
	uint8_t *buf;
	size_t len;
	unsigned count;
};

static void put(struct mpc_writer *w, const void *e, size_t size)
{
	memcpy(w->buf + w->len, e, size);
	w->len += size;
	w->count++;
}

static void put_cpus(struct mpc_writer *w, unsigned ncpus)
{
	for (unsigned i = 0; i < ncpus; i++) {
		struct mpc_cpu c = {
		    .type = MP_ENTRY_PROCESSOR,
		    .apicid = (uint8_t)i,
		    .apicver = MPTABLE_LAPIC_VERSION,
		    .cpuflag = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
		    .cpufeature = MP_CPU_SIGNATURE,
		    .featureflag = MP_CPU_FEATURES,
		};
		put(w, &c, sizeof(c));
	}
}

static void put_bus_ioapic(struct mpc_writer *w, uint8_t ioapic_id)
{
	struct mpc_bus bus = {.type = MP_ENTRY_BUS, .busid = MP_ISA_BUS_ID};
	memcpy(bus.bustype, "ISA   ", sizeof(bus.bustype));
	put(w, &bus, sizeof(bus));
	struct mpc_ioapic io = {
	    .type = MP_ENTRY_IOAPIC,
	    .apicid = ioapic_id,
	    .apicver = MPTABLE_IOAPIC_VERSION,
	    .flags = 1, /* enabled */
	    .apicaddr = (uint32_t)IOAPIC_BASE,
	};
	put(w, &io, sizeof(io));
}

static void put_irqs(struct mpc_writer *w, uint8_t ioapic_id)
{
	for (unsigned irq = 0; irq < MPTABLE_ISA_IRQS; irq++) {
		unsigned pin = irq == 0 ? MPTABLE_IRQ0_PIN : irq;
		if (irq == 2 && MPTABLE_IRQ0_PIN == 2)
			continue; /* pin 2 already taken by IRQ0 */
		struct mpc_intsrc e = {
		    .type = MP_ENTRY_IOINT,
		    .irqtype = MP_INT_TYPE_INT,
		    .irqflag = 0, /* polarity and trigger conform to the ISA bus */
		    .srcbus = MP_ISA_BUS_ID,
		    .srcbusirq = (uint8_t)irq,
		    .dstapic = ioapic_id,
		    .dstirq = (uint8_t)pin,
		};
		put(w, &e, sizeof(e));
	}
}

static void put_lints(struct mpc_writer *w)
{
	struct mpc_intsrc e = {
	    .type = MP_ENTRY_LOCALINT,
	    .irqtype = MP_INT_TYPE_EXTINT,
	    .srcbus = MP_ISA_BUS_ID,
	    .dstapic = MP_ALL_LAPICS,
	    .dstirq = 0,
	};
	put(w, &e, sizeof(e));
	e.irqtype = MP_INT_TYPE_NMI;
	e.dstirq = 1;
	put(w, &e, sizeof(e));
}

static void fill_header(struct mpc_table *h, size_t len, unsigned count)
{
	memcpy(h->signature, "PCMP", 4);
	h->length = (uint16_t)len;
	h->spec = MP_SPEC_REV;
	memcpy(h->oem, "VMM     ", sizeof(h->oem));
	memcpy(h->productid, "MICROVM     ", sizeof(h->productid));
	h->oemcount = (uint16_t)count;
	h->lapic = (uint32_t)LAPIC_BASE;
}

static void fill_mpf(struct mpf_intel *f, uint32_t mpc_addr)
{
	memset(f, 0, sizeof(*f));
	memcpy(f->signature, "_MP_", 4);
	f->physptr = mpc_addr;
	f->length = 1;
	f->specification = MP_SPEC_REV;
	/* feature[0] = 0: a config table is present; feature[1] bit 7 = 0:
	 * virtual wire mode, no IMCR. */
	f->checksum = boot_checksum8(f, sizeof(*f));
}

int mptable_build(struct mptable *t, unsigned ncpus, uint32_t mpc_addr)
{
	if (ncpus == 0 || ncpus > MPTABLE_MAX_CPUS)
		return -1;
	memset(t, 0, sizeof(*t));
	struct mpc_writer w = {.buf = t->mpc, .len = sizeof(struct mpc_table)};
	uint8_t ioapic_id = (uint8_t)ncpus;
	put_cpus(&w, ncpus);
	put_bus_ioapic(&w, ioapic_id);
	put_irqs(&w, ioapic_id);
	put_lints(&w);

	struct mpc_table h = {0};
	fill_header(&h, w.len, w.count);
	memcpy(t->mpc, &h, sizeof(h));
	t->mpc[offsetof(struct mpc_table, checksum)] = boot_checksum8(t->mpc, w.len);
	t->mpc_len = w.len;
	t->entries = w.count;
	fill_mpf(&t->mpf, mpc_addr);
	return 0;
}

int mptable_write(struct guest_mem *m, unsigned ncpus)
{
	struct mptable t;
	if (mptable_build(&t, ncpus, (uint32_t)BOOT_MPC_ADDR) < 0)
		return -1;
	if (!guest_write(m, BOOT_MPF_ADDR, &t.mpf, sizeof(t.mpf)) ||
	    !guest_write(m, BOOT_MPC_ADDR, t.mpc, t.mpc_len))
		return -1;
	return 0;
}
