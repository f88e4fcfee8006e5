/*
 * ACPI tables (ACPI 6.x) for guests that find CPUs and interrupt controllers
 * only through ACPI, e.g. a kernel built without CONFIG_X86_MPPARSE. The MP
 * table (mptable.h) is still written for the others; it describes the same
 * machine.
 *
 * Everything lives at BOOT_ACPI_ADDR (0xE0000, 16-byte aligned, e820-reserved
 * with the rest of the BIOS area), where a guest that is given no pointer
 * also finds the RSDP by scanning:
 *
 *   RSDP  revision 2 -> RSDT (32-bit entries) and XSDT (64-bit entries),
 *         both listing FACP and APIC
 *   FACP  FADT revision 6, hardware-reduced ACPI: no PM or GPE blocks, no
 *         SCI, no FACS. RESET_REG is a byte write of 0xFE to I/O port 0x64,
 *         the i8042 reset the VMM implements. IA-PC boot flags: legacy
 *         devices and an 8042 present, no VGA, no CMOS RTC. X_DSDT -> DSDT.
 *   APIC  MADT: one enabled Processor Local APIC per vCPU (ACPI UID = APIC id
 *         = vCPU index), the IOAPIC (id ncpus, 0xFEC00000, GSI base 0), one
 *         Local APIC NMI on LINT1 for all processors, and an Interrupt
 *         Source Override for every ISA IRQ that does not go to the GSI of
 *         the same number. KVM's default routing sends GSI n to IOAPIC pin
 *         n and its PIT raises GSI 0, so with MPTABLE_IRQ0_PIN 0 there are
 *         none: ACPI's default is exactly that identity mapping.
 *   DSDT  \_SB.COM1 (PNP0501: I/O 0x3F8-0x3FF, ISA IRQ 4) and one LNRO0005
 *         (virtio-mmio) device per window given: Memory32Fixed over the
 *         window and its GSI, edge-triggered, active-high.
 *
 * Why the DSDT lists devices: on a hardware-reduced platform Linux drops
 * the legacy PIC and PIT, and so no longer maps ISA IRQ n to GSI n by
 * itself. An interrupt reaches a driver only if firmware describes it (the
 * ACPI resource makes Linux map the GSI); a bare number such as the one in
 * virtio_mmio.device=...:5 then names no mapped interrupt.
 *
 * APIC ids are 8-bit in these entries and 0xFF is the broadcast id, so more
 * than 254 vCPUs would need Processor Local x2APIC entries (type 9); the
 * VMM stops at 64.
 */
#ifndef VMM_BOOT_ACPI_H
#define VMM_BOOT_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "../mem.h"
#include "boot.h"

#define ACPI_MAX_CPUS 64
#define ACPI_MAX_MMIO_DEVS 16
#define ACPI_IOAPIC_PINS 24 /* KVM's IOAPIC: GSIs 0-23 */

/* Identification written into every table. */
#define ACPI_OEM_ID "VMM   "	     /* 6 characters */
#define ACPI_OEM_TABLE_ID "MICROVM " /* 8 characters */
#define ACPI_OEM_REVISION 1
#define ACPI_CREATOR_ID "VMM "
#define ACPI_CREATOR_REVISION 1

#define ACPI_RSDP_REVISION 2
#define ACPI_FADT_REVISION 6
#define ACPI_FADT_MINOR_REVISION 5
#define ACPI_MADT_REVISION 5
#define ACPI_DSDT_REVISION 2 /* 64-bit AML integers */

/* FADT Flags */
#define ACPI_FADT_WBINVD (1u << 0)
#define ACPI_FADT_PWR_BUTTON (1u << 4) /* no fixed-feature power button */
#define ACPI_FADT_SLP_BUTTON (1u << 5) /* no fixed-feature sleep button */
#define ACPI_FADT_RESET_REG_SUP (1u << 10)
#define ACPI_FADT_HW_REDUCED_ACPI (1u << 20)

/* FADT IAPC_BOOT_ARCH */
#define ACPI_IAPC_LEGACY_DEVICES (1u << 0)
#define ACPI_IAPC_8042 (1u << 1)
#define ACPI_IAPC_VGA_NOT_PRESENT (1u << 2)
#define ACPI_IAPC_MSI_NOT_SUPPORTED (1u << 3)
#define ACPI_IAPC_CMOS_RTC_NOT_PRESENT (1u << 5)

/* Generic Address Structure */
#define ACPI_GAS_SYSTEM_IO 1
#define ACPI_GAS_ACCESS_BYTE 1

/* The reset register: the i8042's "pulse reset line" command. */
#define ACPI_RESET_PORT 0x64
#define ACPI_RESET_VALUE 0xFE

/* MADT */
#define ACPI_MADT_PCAT_COMPAT (1u << 0) /* KVM's in-kernel irqchip has the 8259s */
#define ACPI_MADT_TYPE_LAPIC 0
#define ACPI_MADT_TYPE_IOAPIC 1
#define ACPI_MADT_TYPE_ISO 2
#define ACPI_MADT_TYPE_LAPIC_NMI 4
#define ACPI_MADT_LAPIC_ENABLED (1u << 0)
#define ACPI_MADT_ALL_PROCESSORS 0xFF
/* MPS INTI flags: polarity in bits 1:0, trigger mode in bits 3:2. */
#define ACPI_INTI_CONFORMS 0x0
#define ACPI_INTI_ACTIVE_HIGH 0x1
#define ACPI_INTI_EDGE (0x1 << 2)
#define ACPI_NMI_LINT 1

#define ACPI_COM1_UID 1

struct acpi_rsdp {
	char signature[8]; /* "RSD PTR " */
	uint8_t checksum;  /* over the first 20 bytes */
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length; /* 36 */
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* over all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));

struct acpi_header {
	char signature[4];
	uint32_t length; /* the whole table, header included */
	uint8_t revision;
	uint8_t checksum; /* the whole table sums to 0 */
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));

/* Fixed ACPI Description Table, revision 6 (276 bytes). */
struct acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl;
	uint32_t dsdt; /* 0: X_DSDT is used */
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	uint64_t hypervisor_vendor_id;
} __attribute__((packed));

/* Multiple APIC Description Table: this header, then the entries. */
struct acpi_madt {
	struct acpi_header h;
	uint32_t lapic_address;
	uint32_t flags;
} __attribute__((packed));

struct acpi_madt_lapic {
	uint8_t type; /* 0 */
	uint8_t length;
	uint8_t uid; /* ACPI Processor UID */
	uint8_t apic_id;
	uint32_t flags;
} __attribute__((packed));

struct acpi_madt_ioapic {
	uint8_t type; /* 1 */
	uint8_t length;
	uint8_t id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));

struct acpi_madt_iso {
	uint8_t type; /* 2 */
	uint8_t length;
	uint8_t bus;	/* 0: ISA */
	uint8_t source; /* ISA IRQ */
	uint32_t gsi;
	uint16_t flags; /* MPS INTI flags */
} __attribute__((packed));

struct acpi_madt_lapic_nmi {
	uint8_t type; /* 4 */
	uint8_t length;
	uint8_t uid; /* 0xFF: all processors */
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));

#define ACPI_BUF_SIZE 4096

/* The tables, built for guest address `base` (buf[0] lands there). */
struct acpi_tables {
	uint8_t buf[ACPI_BUF_SIZE];
	size_t len;
	/* Offsets into buf; guest address = base + offset. */
	size_t rsdp, rsdt, xsdt, fadt, madt, dsdt;
};


/* Build every table for ncpus (1..ACPI_MAX_CPUS) and ndevs (0..
 * ACPI_MAX_MMIO_DEVS) devices, to live at guest address `base` (16-byte
 * aligned, tables below 4 GiB). Pure. Returns 0, or -1 for bad arguments. */
int acpi_build(struct acpi_tables *t, uint64_t base, unsigned ncpus,
	       const struct boot_mmio_dev *devs, unsigned ndevs);

/* Build at BOOT_ACPI_ADDR and write to guest RAM. Returns the RSDP's guest
 * address (what the zero page and hvm_start_info point at), or 0. */
uint64_t acpi_write(struct guest_mem *m, unsigned ncpus, const struct boot_mmio_dev *devs,
		    unsigned ndevs);

#endif
