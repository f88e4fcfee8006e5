/*
 * Which guest pages changed: KVM's dirty log (the guest's writes, per
 * memory slot) merged with guest_mem's record of the VMM's own accesses
 * (devices writing into guest buffers), as one bitmap of 4 KiB pages by
 * offset in guest RAM (slot 0 first, then slot 1: the memory file's
 * layout).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "log.h"
#include "mig.h"
#include "vmm.h"

size_t dirty_words(const struct guest_mem *m)
{
	return (size_t)((m->size / 4096 + 63) / 64);
}

int dirty_log_start(struct vm *vm)
{
	struct guest_mem *m = &vm->mem;
	if (guest_mem_track_vmm(m) < 0) {
		vmm_err("out of memory for the dirty-page bitmap");
		return -1;
	}
	/* Turning the slots' flag on write-protects what the guest mapped, so
	 * its next write to any page is logged. */
	if (!m->dirty_log) {
		m->dirty_log = true;
		if (guest_mem_register(m, vm->vm_fd) < 0)
			return -1;
	}
	/* Start from a clean log: what was dirty before is sent anyway. */
	uint64_t *scratch = calloc(dirty_words(m), sizeof(uint64_t));
	int rc = scratch ? dirty_log_collect(vm, scratch) : -1;
	free(scratch);
	return rc;
}

void dirty_log_stop(struct vm *vm)
{
	struct guest_mem *m = &vm->mem;
	if (m->dirty_log && !vm->cfg->track_dirty_pages) {
		m->dirty_log = false;
		guest_mem_register(m, vm->vm_fd);
	}
}

/* KVM's log of one slot, ORed into bits from page `first` on. */
static int collect_slot(struct vm *vm, uint32_t slot, uint64_t pages, uint64_t *bits,
			uint64_t first)
{
	size_t words = (size_t)((pages + 63) / 64);
	uint64_t *log = calloc(words, sizeof(uint64_t));
	if (!log)
		return -1;
	struct kvm_dirty_log d = {.slot = slot, .dirty_bitmap = log};
	int rc = ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &d);
	if (rc < 0) {
		vmm_perr("KVM_GET_DIRTY_LOG (slot %u)", slot);
	} else if (first % 64 == 0) {
		for (size_t i = 0; i < words; i++)
			bits[first / 64 + i] |= log[i];
	} else {
		for (uint64_t p = 0; p < pages; p++)
			if (log[p / 64] >> (p % 64) & 1)
				bits[(first + p) / 64] |= 1ULL << ((first + p) % 64);
	}
	free(log);
	return rc;
}

int dirty_log_collect(struct vm *vm, uint64_t *bits)
{
	struct guest_mem *m = &vm->mem;
	if (collect_slot(vm, 0, m->low_size / 4096, bits, 0) < 0)
		return -1;
	if (m->high_size && collect_slot(vm, 1, m->high_size / 4096, bits, m->low_size / 4096) < 0)
		return -1;
	_Atomic uint64_t *mine = atomic_load(&m->vmm_dirty);
	for (size_t i = 0; mine && i < dirty_words(m); i++)
		bits[i] |= atomic_exchange_explicit(&mine[i], 0, memory_order_relaxed);
	return 0;
}

uint64_t dirty_count(const uint64_t *bits, size_t words)
{
	uint64_t n = 0;
	for (size_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bits[i]);
	return n;
}

/* Mark [gpa, gpa+len) in bits (pages by memfd offset). */
void dirty_mark_gpa(const struct guest_mem *m, uint64_t *bits, uint64_t gpa, uint64_t len)
{
	for (uint64_t a = gpa & ~4095ULL; len && a < gpa + len; a += 4096) {
		int64_t off = guest_mem_offset(m, a);
		if (off >= 0)
			bits[(uint64_t)off / 4096 / 64] |= 1ULL << ((uint64_t)off / 4096 % 64);
	}
}

bool dirty_next_run(const uint64_t *bits, uint64_t pages, uint64_t max, uint64_t *p,
		    uint64_t *first, uint64_t *count)
{
	uint64_t at = *p;
	while (at < pages) {
		if (!bits[at / 64]) { /* skip empty words whole */
			at = (at / 64 + 1) * 64;
			continue;
		}
		if (!(bits[at / 64] >> (at % 64) & 1)) {
			at++;
			continue;
		}
		uint64_t end = at;
		while (end < pages && end - at < max && (bits[end / 64] >> (end % 64) & 1))
			end++;
		*first = at;
		*count = end - at;
		*p = end;
		return true;
	}
	*p = at;
	return false;
}
