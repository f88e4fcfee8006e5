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

/* How guest RAM is backed. A shared memfd is the default: its pages can be
 * punched out (balloon) and it is one fd for the whole of RAM. Private
 * anonymous memory is used for KSM and THP: KSM merges only private
 * anonymous pages, and THP for shmem depends on the host's shmem_enabled
 * (often "never") where anonymous THP follows the usual "madvise" mode. */
enum mem_backing {
	MEM_SHARED_MEMFD,
	MEM_ANON_PRIVATE,
	/* A file mapped copy-on-write (a snapshot's memory file): pages load
	 * lazily on first touch; what the guest writes stays in this process. */
	MEM_FILE_PRIVATE,
};

/* What the core and the modules ask of guest RAM (modules.h mem_prepare). */
struct mem_request {
	enum mem_backing backing;
	unsigned memfd_flags; /* added to MFD_CLOEXEC (MFD_HUGETLB | MFD_HUGE_2MB ...) */
	uint64_t page_size;   /* RAM size must be a multiple of it; 4 KiB by default */
	bool reserve;	      /* take the pages at mmap (hugetlb: fail now, not SIGBUS later) */
	bool thp;	      /* MADV_HUGEPAGE */
	bool merge;	      /* MADV_MERGEABLE (KSM) */
	/* MEM_FILE_PRIVATE: the file (at least the RAM's size). MEM_SHARED_MEMFD:
	 * a memfd that already holds the RAM (an incoming migration), used
	 * instead of a new one. -1: none. Duplicated, the caller keeps its own. */
	int fd;
};

struct guest_mem {
	int memfd; /* -1 for MEM_ANON_PRIVATE */
	uint8_t *host;      /* whole memfd mapping, size bytes */
	uint64_t size;      /* total RAM */
	uint64_t low_size;  /* RAM below MMIO_HOLE_START */
	uint64_t high_size; /* RAM from 4 GiB up */
	bool dirty_log;	    /* register with KVM_MEM_LOG_DIRTY_PAGES (track_dirty_pages) */
	uint64_t page_size; /* backing page size: 4 KiB, or a hugetlb size */
	size_t map_size;    /* bytes mapped at host (size, rounded up to the alignment) */
	/* Pages (4 KiB, by memfd offset) the VMM itself reached through
	 * guest_ptr() since the bitmap was last read: KVM's dirty log sees only
	 * the guest's writes, and a snapshot or a migration needs the devices'
	 * too. NULL: not tracked (guest_mem_track_vmm()). */
	_Atomic uint64_t *_Atomic vmm_dirty;
};

/* Create and map RAM of `size` bytes (a multiple of 4 KiB). `memfd_flags`
 * is passed to memfd_create (modules add MFD_HUGETLB and friends).
 * Returns 0, or -errno with a message already printed. */
int guest_mem_init(struct guest_mem *m, uint64_t size, unsigned memfd_flags);
/* The same, with every backing choice. The host mapping is aligned to 2 MiB
 * (or the page size, if larger) so huge pages can back it. */
int guest_mem_create(struct guest_mem *m, uint64_t size, const struct mem_request *req);
/* The default request: shared memfd, 4 KiB pages, nothing reserved. */
void mem_request_init(struct mem_request *req);
/* Register the RAM slots with a KVM VM fd (dirty logging if m->dirty_log). */
int guest_mem_register(const struct guest_mem *m, int vm_fd);
/* Start tracking the VMM's own accesses in m->vmm_dirty (for good: the
 * bitmap stays until guest_mem_destroy(), as other threads may be marking
 * it). Returns 0 or -ENOMEM. */
int guest_mem_track_vmm(struct guest_mem *m);
void guest_mem_destroy(struct guest_mem *m);

/* Host pointer for [gpa, gpa+len), or NULL if any byte of it is not RAM or
 * the range wraps. len may be 0 (then gpa must still be inside RAM or at
 * its end). */
void *guest_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Give the host pages behind [gpa, gpa+len) back to the host: the guest
 * reads zeroes there afterwards. Punches a hole in the memfd, or drops
 * anonymous pages. Only whole backing pages inside the range are freed.
 * Returns 0, or -errno (a bad range: -EINVAL). */
int guest_mem_discard(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* memfd offset of a guest-physical address, or -1 if not RAM. */
int64_t guest_mem_offset(const struct guest_mem *m, uint64_t gpa);

/* Copy helpers built on guest_ptr(); return false on a bad range. */
bool guest_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len);
bool guest_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len);

#endif
