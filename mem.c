#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"

void mem_request_init(struct mem_request *req)
{
	*req = (struct mem_request){.backing = MEM_SHARED_MEMFD, .page_size = 4096, .fd = -1};
}

int guest_mem_init(struct guest_mem *m, uint64_t size, unsigned memfd_flags)
{
	struct mem_request req;
	mem_request_init(&req);
	req.memfd_flags = memfd_flags;
	return guest_mem_create(m, size, &req);
}

static int ram_memfd(uint64_t size, unsigned memfd_flags)
{
	int fd = memfd_create("vmm-guest-ram", MFD_CLOEXEC | memfd_flags);
	if (fd < 0) {
		int err = errno;
		vmm_perr("memfd_create for guest RAM");
		return -err;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		int err = errno;
		vmm_perr("cannot size guest RAM to %llu MiB", (unsigned long long)(size / MIB));
		close(fd);
		return -err;
	}
	return fd;
}

/* An address range of `len` bytes aligned to `align`, reserved with no
 * access, so RAM can be mapped over it at an aligned address (huge pages
 * need the host address and the guest address equally aligned). */
static void *aligned_window(size_t len, size_t align)
{
	uint8_t *p = mmap(NULL, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			  -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	uint8_t *start = (uint8_t *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	if (start > p)
		munmap(p, (size_t)(start - p));
	size_t tail = (size_t)((p + len + align) - (start + len));
	if (tail)
		munmap(start + len, tail);
	return start;
}

static void *map_ram(const struct mem_request *req, int fd, size_t len)
{
	size_t align = req->page_size > 2 * MIB ? req->page_size : 2 * MIB;
	void *at = aligned_window(len, align);
	if (!at)
		return MAP_FAILED;
	/* MAP_NORESERVE: the host pays only for pages the guest touches. */
	int flags = MAP_FIXED | (req->reserve ? 0 : MAP_NORESERVE);
	if (req->backing == MEM_ANON_PRIVATE)
		flags |= MAP_PRIVATE | MAP_ANONYMOUS;
	else if (req->backing == MEM_FILE_PRIVATE)
		flags |= MAP_PRIVATE;
	else
		flags |= MAP_SHARED;
	void *p = mmap(at, len, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (p == MAP_FAILED) {
		int err = errno;
		munmap(at, len);
		errno = err;
	}
	return p;
}

/* THP and KSM are hints: a host that refuses them still runs the guest. */
static void advise_ram(const struct mem_request *req, void *p, size_t len)
{
	if (req->thp && madvise(p, len, MADV_HUGEPAGE) < 0)
		vmm_warn("MADV_HUGEPAGE on guest RAM: %s (transparent huge pages off?)",
			 strerror(errno));
	if (req->merge && madvise(p, len, MADV_MERGEABLE) < 0)
		vmm_warn("MADV_MERGEABLE on guest RAM: %s (kernel without KSM?)", strerror(errno));
}

int guest_mem_create(struct guest_mem *m, uint64_t size, const struct mem_request *req)
{
	memset(m, 0, sizeof(*m));
	m->memfd = -1;
	uint64_t page = req->page_size ? req->page_size : 4096;
	if (size == 0 || (size & (page - 1))) {
		vmm_err("guest memory size %llu MiB is not a positive multiple of the %llu KiB page",
			(unsigned long long)(size / MIB), (unsigned long long)(page / 1024));
		return -EINVAL;
	}
	int fd = -1;
	if (req->fd >= 0 && req->backing != MEM_ANON_PRIVATE) {
		fd = fcntl(req->fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			int err = errno;
			vmm_perr("guest RAM: cannot use the file given");
			return -err;
		}
	} else if (req->backing == MEM_FILE_PRIVATE) {
		vmm_err("guest RAM: a private file mapping needs a file");
		return -EINVAL;
	} else if (req->backing == MEM_SHARED_MEMFD && (fd = ram_memfd(size, req->memfd_flags)) < 0) {
		return fd;
	}
	void *p = map_ram(req, fd, size);
	if (p == MAP_FAILED) {
		int err = errno;
		vmm_perr("cannot map %llu MiB of guest RAM", (unsigned long long)(size / MIB));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	advise_ram(req, p, size);
	/* A privately mapped file is not RAM's fd: nothing may write to it
	 * (discarding a page must not punch a hole in a snapshot). */
	if (req->backing == MEM_FILE_PRIVATE) {
		close(fd);
		fd = -1;
	}
	m->memfd = fd;
	m->host = p;
	m->size = size;
	m->map_size = size;
	m->page_size = page;
	m->low_size = size < MMIO_HOLE_START ? size : MMIO_HOLE_START;
	m->high_size = size - m->low_size;
	return 0;
}

static int set_slot(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t len, void *host,
		    bool dirty_log)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = dirty_log ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		.guest_phys_addr = gpa,
		.memory_size = len,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		int err = errno;
		vmm_perr("KVM_SET_USER_MEMORY_REGION (slot %u)", slot);
		return -err;
	}
	return 0;
}

int guest_mem_register(const struct guest_mem *m, int vm_fd)
{
	int rc = set_slot(vm_fd, 0, 0, m->low_size, m->host, m->dirty_log);
	if (rc == 0 && m->high_size)
		rc = set_slot(vm_fd, 1, MMIO_HOLE_END, m->high_size, m->host + m->low_size,
			      m->dirty_log);
	return rc;
}

int guest_mem_track_vmm(struct guest_mem *m)
{
	if (m->vmm_dirty)
		return 0;
	size_t words = (size_t)((m->size / 4096 + 63) / 64);
	_Atomic uint64_t *bm = calloc(words, sizeof(*bm));
	if (!bm)
		return -ENOMEM;
	atomic_store_explicit(&m->vmm_dirty, bm, memory_order_release);
	return 0;
}

void guest_mem_destroy(struct guest_mem *m)
{
	free((void *)atomic_load(&m->vmm_dirty));
	atomic_store(&m->vmm_dirty, NULL);
	if (m->host)
		munmap(m->host, m->map_size);
	if (m->memfd >= 0)
		close(m->memfd);
	m->host = NULL;
	m->memfd = -1;
}

int guest_mem_discard(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	uint8_t *p = guest_ptr(m, gpa, len);
	if (!p || !len)
		return -EINVAL;
	/* Whole backing pages only: a partial hugetlb page would be zeroed,
	 * not freed, and the guest still owns the rest of it. */
	uint64_t off = (uint64_t)(p - m->host);
	uint64_t start = (off + m->page_size - 1) & ~(m->page_size - 1);
	uint64_t end = (off + len) & ~(m->page_size - 1);
	if (end <= start)
		return 0;
	int rc;
	if (m->memfd >= 0)
		rc = fallocate(m->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)start,
			       (off_t)(end - start));
	else
		rc = madvise(m->host + start, end - start, MADV_DONTNEED);
	return rc < 0 ? -errno : 0;
}

int64_t guest_mem_offset(const struct guest_mem *m, uint64_t gpa)
{
	if (gpa < m->low_size)
		return (int64_t)gpa;
	if (gpa >= MMIO_HOLE_END && gpa - MMIO_HOLE_END < m->high_size)
		return (int64_t)(m->low_size + (gpa - MMIO_HOLE_END));
	return -1;
}

/* Pages [off, off+len) were reached by the VMM; len > 0. */
static void mark_vmm_dirty(_Atomic uint64_t *bm, uint64_t off, uint64_t len)
{
	uint64_t first = off / 4096, last = (off + len - 1) / 4096;
	for (uint64_t p = first; p <= last; p++)
		atomic_fetch_or_explicit(&bm[p / 64], 1ULL << (p % 64), memory_order_relaxed);
}

void *guest_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	uint64_t end;
	if (__builtin_add_overflow(gpa, len, &end))
		return NULL;
	uint64_t off;
	if (end <= m->low_size)
		off = gpa;
	else if (gpa >= MMIO_HOLE_END && end - MMIO_HOLE_END <= m->high_size)
		off = m->low_size + (gpa - MMIO_HOLE_END);
	else
		return NULL;
	_Atomic uint64_t *dirty = atomic_load_explicit(&m->vmm_dirty, memory_order_acquire);
	if (dirty && len)
		mark_vmm_dirty(dirty, off, len);
	return m->host + off;
}

bool guest_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len)
{
	void *p = guest_ptr(m, gpa, len);
	if (!p)
		return false;
	memcpy(dst, p, len);
	return true;
}

bool guest_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = guest_ptr(m, gpa, len);
	if (!p)
		return false;
	memcpy(p, src, len);
	return true;
}
