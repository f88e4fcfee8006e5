/*
 * Intel MultiProcessor Specification 1.4 tables: the floating pointer
 * (found by the guest's scan of the last KiB of base memory) and the
 * configuration table it points to.
 *
 * Entries: one processor per vCPU (APIC id = index, BSP flag on 0), one ISA
 * bus, the IOAPIC (id = ncpus, 0xFEC00000, version 0x11), 16 I/O interrupt
 * entries for ISA IRQs 0-15, and LINT0 ExtINT / LINT1 NMI local entries.
 *
 * ISA IRQ n goes to IOAPIC pin n, IRQ0 included: that is KVM's default GSI
 * routing (GSI n -> IOAPIC pin n), and the in-kernel PIT raises GSI 0.
 * MPTABLE_IRQ0_PIN says where IRQ0 goes; set it to 2 only if the VMM
 * installs a routing that sends GSI 0 to pin 2 (IRQ2 is then left out).
 */
#ifndef VMM_BOOT_MPTABLE_H
#define VMM_BOOT_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "../mem.h"

#define MPTABLE_IRQ0_PIN 0
#define MPTABLE_ISA_IRQS 16
#define MPTABLE_IOAPIC_VERSION 0x11
#define MPTABLE_LAPIC_VERSION 0x14

#define MP_ENTRY_PROCESSOR 0
#define MP_ENTRY_BUS 1
#define MP_ENTRY_IOAPIC 2
#define MP_ENTRY_IOINT 3
#define MP_ENTRY_LOCALINT 4

#define MP_INT_TYPE_INT 0
#define MP_INT_TYPE_NMI 1
#define MP_INT_TYPE_EXTINT 3

#define MP_CPU_ENABLED 0x01
#define MP_CPU_BSP 0x02

struct mpf_intel {
	char signature[4]; /* "_MP_" */
	uint32_t physptr;
	uint8_t length; /* in 16-byte units: 1 */
	uint8_t specification;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_table {
	char signature[4]; /* "PCMP" */
	uint16_t length;
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount; /* number of entries */
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;
	uint32_t cpufeature; /* signature */
	uint32_t featureflag;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type;
	uint8_t busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {
	uint8_t type;
	uint8_t irqtype;
	uint16_t irqflag;
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic; /* IOAPIC id, or local APIC id (0xff: all) */
	uint8_t dstirq;	 /* IOAPIC pin, or LINTn */
} __attribute__((packed));

#define MPTABLE_MAX_CPUS 64
#define MPC_MAX_SIZE                                                                               \
	(sizeof(struct mpc_table) + MPTABLE_MAX_CPUS * sizeof(struct mpc_cpu) +                    \
	 sizeof(struct mpc_bus) + sizeof(struct mpc_ioapic) +                                      \
	 (MPTABLE_ISA_IRQS + 2) * sizeof(struct mpc_intsrc))

struct mptable {
	struct mpf_intel mpf;
	uint8_t mpc[MPC_MAX_SIZE];
	size_t mpc_len;
	unsigned entries;
};


/* Build both tables for ncpus (1..MPTABLE_MAX_CPUS), the config table to
 * live at guest address mpc_addr. Returns 0, or -1 for a bad ncpus. */
int mptable_build(struct mptable *t, unsigned ncpus, uint32_t mpc_addr);

/* Build and write at BOOT_MPF_ADDR / BOOT_MPC_ADDR. Returns 0 or -1. */
int mptable_write(struct guest_mem *m, unsigned ncpus);

#endif
