/*
 * Direct kernel boot. The image format is detected from the file itself:
 *   - ELF64 with a XEN_ELFNOTE_PHYS32_ENTRY note  -> PVH (32-bit entry,
 *     hvm_start_info in EBX)
 *   - ELF64 without it                           -> Linux 64-bit boot
 *     protocol (zero page in RSI), entered at e_entry
 *   - bzImage ("HdrS", protocol >= 2.06, XLF_KERNEL_64) -> 64-bit entry at
 *     the protected-mode code + 0x200
 *   - anything else: refused with a clear message.
 */
#ifndef VMM_BOOT_H
#define VMM_BOOT_H

#include <stdint.h>

#include "../vmm.h"

enum boot_protocol { BOOT_LINUX64, BOOT_PVH };

/* A memory-mapped device the guest's firmware tables must describe (a
 * virtio-mmio window): a hardware-reduced ACPI guest maps a device's GSI
 * only when the DSDT lists it. */
struct boot_mmio_dev {
	uint64_t base; /* must end at or below 4 GiB */
	uint64_t size;
	uint32_t gsi;
};

struct boot_request {
	const char *kernel_path;
	const char *initrd_path; /* NULL: none */
	const char *cmdline;     /* final command line, device announcements included */
	const struct boot_mmio_dev *mmio_devs;
	unsigned n_mmio_devs;
};

struct boot_setup {
	enum boot_protocol protocol;
	const char *format; /* "ELF vmlinux", "bzImage" or "PVH ELF", for messages */
	uint64_t entry;     /* guest-physical entry point */
	uint64_t info_gpa;  /* zero page (Linux) or hvm_start_info (PVH) */
};

/* Load kernel + initrd into vm->mem and write every boot structure (zero
 * page or start_info, e820/memmap, command line, MP table, ACPI tables,
 * page tables and GDT where the protocol needs them). Returns 0, or -1 with a one-line
 * message already printed that names the file and the problem. */
int boot_load(struct vm *vm, const struct boot_request *req, struct boot_setup *out);

/* Per-vCPU set-up, called for every vCPU before it first runs: CPUID
 * (normalised from KVM_GET_SUPPORTED_CPUID), boot MSRs, LAPIC LINT0/LINT1,
 * and for vCPU 0 the entry registers. APs stay in wait-for-SIPI.
 * Returns 0, or -1 with a message printed. */
int boot_setup_vcpu(struct vm *vm, struct vcpu *vcpu, const struct boot_setup *bs);

#endif
