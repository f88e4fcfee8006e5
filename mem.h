/*
 * Guest RAM: one memfd, mapped once into the VMM, exposed to KVM as up to
 * two slots around the 32-bit PCI/MMIO hole.
 *
 *   GPA [0, low_size)                 -> memfd offset 0
 *   GPA [4 GiB, 4 GiB + high_size)    -> memfd offset low_size
 *
 * Every guest-physical access from the VMM goes through guest_ptr(), the one
 * checked helper: it refuses overflow, ranges outside RAM, and ranges that
 * straddle the hole.
 */
#ifndef VMM_MEM_H
#define VMM_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

/* The hole below 4 GiB holds MMIO devices, the IOAPIC, the LAPIC and KVM's
 * TSS / identity-map pages. RAM stops at MMIO_HOLE_START. */
#define MMIO_HOLE_START 0xC0000000ULL
#define MMIO_HOLE_END 0x100000000ULL

/* Fixed addresses inside the hole. */
#define VIRTIO_MMIO_BASE 0xD0000000ULL /* virtio-mmio windows, 4 KiB each */
#define VIRTIO_MMIO_SIZE 0x1000ULL
#define IOAPIC_BASE 0xFEC00000ULL
#define LAPIC_BASE 0xFEE00000ULL
#define KVM_IDENTITY_MAP_ADDR 0xFFFBC000ULL /* one page */
#define KVM_TSS_ADDR 0xFFFBD000ULL          /* three pages */

struct guest_mem {
	int memfd;
	uint8_t *host;      /* whole memfd mapping, size bytes */
	uint64_t size;      /* total RAM */
	uint64_t low_size;  /* RAM below MMIO_HOLE_START */
	uint64_t high_size; /* RAM from 4 GiB up */
	bool dirty_log;	    /* register with KVM_MEM_LOG_DIRTY_PAGES (track_dirty_pages) */
};

/* Create and map RAM of `size` bytes (a multiple of 4 KiB). `memfd_flags`
 * is passed to memfd_create (modules add MFD_HUGETLB and friends).
 * Returns 0, or -errno with a message already printed. */
int guest_mem_init(struct guest_mem *m, uint64_t size, unsigned memfd_flags);
/* Register the RAM slots with a KVM VM fd (dirty logging if m->dirty_log). */
int guest_mem_register(const struct guest_mem *m, int vm_fd);
void guest_mem_destroy(struct guest_mem *m);

/* Host pointer for [gpa, gpa+len), or NULL if any byte of it is not RAM or
 * the range wraps. len may be 0 (then gpa must still be inside RAM or at
 * its end). */
void *guest_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* memfd offset of a guest-physical address, or -1 if not RAM. */
int64_t guest_mem_offset(const struct guest_mem *m, uint64_t gpa);

/* Copy helpers built on guest_ptr(); return false on a bad range. */
bool guest_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len);
bool guest_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len);

#endif
