#include "mem.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"

int guest_mem_init(struct guest_mem *m, uint64_t size, unsigned memfd_flags)
{
	memset(m, 0, sizeof(*m));
	m->memfd = -1;
	if (size == 0 || (size & 0xfff)) {
		vmm_err("guest memory size %llu is not a positive multiple of 4 KiB",
			(unsigned long long)size);
		return -EINVAL;
	}
	int fd = memfd_create("vmm-guest-ram", MFD_CLOEXEC | memfd_flags);
	if (fd < 0) {
		int err = errno;
		vmm_perr("memfd_create for guest RAM");
		return -err;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		int err = errno;
		vmm_perr("cannot size guest RAM to %llu MiB",
			 (unsigned long long)(size / MIB));
		close(fd);
		return -err;
	}
	/* MAP_NORESERVE: the host pays only for pages the guest touches. */
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED) {
		int err = errno;
		vmm_perr("cannot map %llu MiB of guest RAM", (unsigned long long)(size / MIB));
		close(fd);
		return -err;
	}
	m->memfd = fd;
	m->host = p;
	m->size = size;
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

void guest_mem_destroy(struct guest_mem *m)
{
	if (m->host)
		munmap(m->host, m->size);
	if (m->memfd >= 0)
		close(m->memfd);
	m->host = NULL;
	m->memfd = -1;
}

int64_t guest_mem_offset(const struct guest_mem *m, uint64_t gpa)
{
	if (gpa < m->low_size)
		return (int64_t)gpa;
	if (gpa >= MMIO_HOLE_END && gpa - MMIO_HOLE_END < m->high_size)
		return (int64_t)(m->low_size + (gpa - MMIO_HOLE_END));
	return -1;
}

void *guest_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	uint64_t end;
	if (__builtin_add_overflow(gpa, len, &end))
		return NULL;
	if (end <= m->low_size)
		return m->host + gpa;
	if (gpa >= MMIO_HOLE_END && end - MMIO_HOLE_END <= m->high_size)
		return m->host + m->low_size + (gpa - MMIO_HOLE_END);
	return NULL;
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
