/* smp: Intel MP table scan, INIT-SIPI-SIPI, AP check-in. */
#include "guest.h"

struct mpf {
	char sig[4]; /* "_MP_" */
	uint32_t config;
	uint8_t length; /* 16-byte units */
	uint8_t rev;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc {
	char sig[4]; /* "PCMP" */
	uint16_t length;
	uint8_t rev;
	uint8_t checksum;
	char oem[8];
	char product[12];
	uint32_t oem_table;
	uint16_t oem_size;
	uint16_t count;
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type; /* 0 */
	uint8_t apic_id;
	uint8_t apic_ver;
	uint8_t flags; /* bit 0 enabled, bit 1 bootstrap */
	uint32_t signature;
	uint32_t features;
	uint32_t reserved[2];
} __attribute__((packed));

static bool sum_ok(uint64_t addr, size_t len)
{
	const uint8_t *p = phys(addr);
	uint8_t s = 0;
	for (size_t i = 0; i < len; i++)
		s += p[i];
	return s == 0;
}

static uint64_t scan(uint64_t start, uint64_t len)
{
	for (uint64_t a = start; a + 16 <= start + len; a += 16) {
		const struct mpf *f = phys(a);
		if (!memcmp(f->sig, "_MP_", 4) && f->length >= 1 && sum_ok(a, f->length * 16u))
			return a;
	}
	return 0;
}

static uint64_t find_mpf(void)
{
	uint64_t a = 0;
	uint64_t ebda = *(volatile uint16_t *)phys(0x40e);
	ebda <<= 4;
	uint64_t base_kib = *(volatile uint16_t *)phys(0x413);
	if (ebda >= 0x80000 && ebda < 0xa0000)
		a = scan(ebda, 1024);
	if (!a && base_kib >= 512 && base_kib <= 640)
		a = scan(base_kib * 1024 - 1024, 1024);
	if (!a)
		a = scan(0x9fc00, 1024);
	if (!a)
		a = scan(0xf0000, 0x10000);
	return a;
}

#define LAPIC_ID 0x20
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310

static void send_ipi(uint64_t lapic, uint8_t apic_id, uint32_t low)
{
	mmio_write32(lapic + LAPIC_ICR_HI, (uint32_t)apic_id << 24);
	mmio_write32(lapic + LAPIC_ICR_LO, low);
	for (unsigned i = 0; i < 100000 && (mmio_read32(lapic + LAPIC_ICR_LO) & (1u << 12)); i++)
		cpu_relax();
}

/* A page below 1 MiB (not page 0) that the memory map calls RAM. */
static uint64_t trampoline_page(size_t need)
{
	for (unsigned i = 0; i < boot.nmem; i++) {
		const struct mem_range *r = &boot.mem[i];
		if (r->type != E820_RAM)
			continue;
		uint64_t p = (r->start + 0xfff) & ~0xfffULL;
		if (p < 0x1000)
			p = 0x1000;
		if (p + need <= r->end && p + need <= 0x100000)
			return p;
	}
	return 0;
}

bool test_smp(char *why, size_t n)
{
	uint64_t mpf_addr = find_mpf();
	if (!mpf_addr) {
		snformat(why, n, "no MP floating pointer found");
		return false;
	}
	const struct mpf *f = phys(mpf_addr);
	if (f->feature[0]) {
		snformat(why, n, "MP default configuration %u not supported", f->feature[0]);
		return false;
	}
	uint64_t ct = f->config;
	const struct mpc *c = phys(ct);
	if (!ct || memcmp(c->sig, "PCMP", 4)) {
		snformat(why, n, "MP config table missing at 0x%llx", (unsigned long long)ct);
		return false;
	}
	if (!sum_ok(ct, c->length)) {
		snformat(why, n, "MP config table checksum bad");
		return false;
	}
	uint64_t lapic = c->lapic ? c->lapic : 0xfee00000;
	lapic_base = lapic;

	uint8_t ids[256];
	unsigned ncpu = 0;
	uint64_t e = ct + sizeof(struct mpc), end = ct + c->length;
	/* Walk by length, not by entry count: some firmware (qboot) leaves
	 * the count at 0. */
	while (e < end) {
		uint8_t type = *(const uint8_t *)phys(e);
		if (type == 0) {
			const struct mpc_cpu *p = phys(e);
			if ((p->flags & 1) && ncpu < 256)
				ids[ncpu++] = p->apic_id;
			e += 20;
		} else if (type <= 4) {
			e += 8;
		} else {
			snformat(why, n, "MP entry type %u unknown", type);
			return false;
		}
	}
	print("SMP mptable=0x%llx config=0x%llx lapic=0x%llx\n", (unsigned long long)mpf_addr,
	      (unsigned long long)ct, (unsigned long long)lapic);

	time_init();
	uint8_t self = (uint8_t)(mmio_read32(lapic + LAPIC_ID) >> 24);
	ap_bitmap[self / 32] |= 1u << (self % 32);
	unsigned online_self = 1;

	unsigned naps = 0;
	for (unsigned i = 0; i < ncpu; i++)
		naps += ids[i] != self;
	if (naps) {
		size_t tlen = (size_t)(tramp_end - tramp_start);
		uint64_t tp = trampoline_page(tlen);
		if (!tp) {
			snformat(why, n, "no free RAM page below 1 MiB for the AP trampoline");
			return false;
		}
		memcpy(phys(tp), tramp_start, tlen);
		barrier();
		/* Software-enable our LAPIC (spurious vector 0xff); IF stays 0. */
		mmio_write32(lapic + LAPIC_SVR, 0x1ff);
		for (unsigned i = 0; i < ncpu; i++)
			if (ids[i] != self)
				send_ipi(lapic, ids[i], 0x4500); /* INIT, assert */
		udelay(10000);
		/* SIPI twice, vector = trampoline page */
		for (int round = 0; round < 2; round++) {
			for (unsigned i = 0; i < ncpu; i++)
				if (ids[i] != self &&
				    !(ap_bitmap[ids[i] / 32] & (1u << (ids[i] % 32))))
					send_ipi(lapic, ids[i], 0x4600 | (uint32_t)(tp >> 12));
			udelay(200);
		}
		uint64_t deadline = time_ns() + 2000000000ULL;
		while (ap_online < naps && time_ns() < deadline)
			cpu_relax();
	}
	unsigned online = online_self + ap_online;

	char list[256 * 4] = "";
	size_t len = 0;
	unsigned missing = 0;
	for (unsigned i = 0; i < ncpu; i++) {
		bool in = ap_bitmap[ids[i] / 32] & (1u << (ids[i] % 32));
		missing += !in;
		len += (size_t)snformat(list + len, sizeof(list) - len, "%s%u%s", i ? "," : "",
					ids[i], in ? "" : "(missing)");
		if (len >= sizeof(list))
			len = sizeof(list) - 1;
	}
	print("SMP apic_ids=%s bsp=%u clock=%s\n", list, self, time_source());
	print("SMP cpus=%u online=%u\n", ncpu, online);
	if (missing || online != ncpu) {
		snformat(why, n, "%u of %u CPUs checked in", online, ncpu);
		return false;
	}
	return true;
}
