/*
 * virtio-balloon page lists: the PFNs of inflate / deflate chains and the
 * ranges of free page reporting, checked against guest RAM and given back
 * to the host.
 *
 * Everything here comes from the driver, so nothing is trusted: every
 * value is copied out once and then checked; a PFN outside RAM (past its
 * end, in the MMIO hole) is counted and skipped; a chain that is not a
 * whole number of PFNs, carries device-writable buffers or more than
 * BALLOON_MAX_PFNS is refused whole.
 *
 * Giving memory back means guest_mem_discard(): a hole punched in the
 * memfd (MADV_DONTNEED alone would leave shared pages in the page cache),
 * or dropped anonymous pages. The guest reads zeroes there afterwards.
 */
#include <endian.h>
#include <string.h>

#include "balloon.h"

void balloon_cursor_init(struct balloon_cursor *k, const struct vq_chain *c)
{
	*k = (struct balloon_cursor){.iov = c->iov, .n = c->nr_out};
}

bool balloon_cursor_take(struct balloon_cursor *k, void *dst, size_t len)
{
	uint8_t *d = dst;
	while (len) {
		if (k->i >= k->n)
			return false;
		const struct iovec *v = &k->iov[k->i];
		size_t left = v->iov_len - k->off, step = left < len ? left : len;
		memcpy(d, (const uint8_t *)v->iov_base + k->off, step);
		d += step;
		len -= step;
		k->off += step;
		if (k->off == v->iov_len) {
			k->i++;
			k->off = 0;
		}
	}
	return true;
}

/* Consecutive pages seen so far, given back in one call. */
struct run {
	uint64_t gpa, len;
};

static void flush(const struct guest_mem *m, struct run *run, bool discard,
		  struct balloon_pages_result *r)
{
	if (!run->len)
		return;
	if (discard) {
		int rc = guest_mem_discard(m, run->gpa, run->len);
		if (rc < 0) {
			r->errors++;
			r->err = rc;
		} else {
			r->bytes += run->len;
		}
	}
	run->len = 0;
}

static const char *refuse(const struct vq_chain *c)
{
	if (c->nr_in)
		return "device-writable buffer in a page list";
	if (c->out_len % sizeof(uint32_t))
		return "page list length not a multiple of 4";
	if (c->out_len / sizeof(uint32_t) > BALLOON_MAX_PFNS)
		return "page list longer than 65536 PFNs";
	return NULL;
}

void balloon_pfn_chain(const struct guest_mem *m, const struct vq_chain *c, bool discard,
		       struct balloon_pages_result *r)
{
	*r = (struct balloon_pages_result){.why = refuse(c)};
	if (r->why)
		return;
	struct balloon_cursor k;
	struct run run = {0, 0};
	uint32_t pfn;
	balloon_cursor_init(&k, c);
	while (balloon_cursor_take(&k, &pfn, sizeof(pfn))) {
		uint64_t gpa = (uint64_t)le32toh(pfn) << VIRTIO_BALLOON_PFN_SHIFT;
		if (!guest_ptr(m, gpa, BALLOON_PAGE_SIZE)) {
			r->bad++;
			continue;
		}
		r->valid++;
		/* Pages of one run are all RAM and adjacent, so never span the
		 * hole: one region, one discard. */
		if (run.len && gpa == run.gpa + run.len) {
			run.len += BALLOON_PAGE_SIZE;
			continue;
		}
		flush(m, &run, discard, r);
		run = (struct run){gpa, BALLOON_PAGE_SIZE};
	}
	flush(m, &run, discard, r);
}

/* The guest-physical address behind a host pointer into guest RAM (every
 * chain buffer is one: vq_pop() got it from guest_ptr()). */
static uint64_t gpa_of(const struct guest_mem *m, const void *p)
{
	uint64_t off = (uint64_t)((const uint8_t *)p - m->host);
	return off < m->low_size ? off : MMIO_HOLE_END + (off - m->low_size);
}

void balloon_report_chain(const struct guest_mem *m, const struct vq_chain *c,
			  struct balloon_pages_result *r)
{
	*r = (struct balloon_pages_result){0};
	/* Linux reports through device-writable buffers; either kind is a
	 * range here. Only whole pages inside a range are given back, so a
	 * misaligned report never clears bytes the driver still uses. */
	for (unsigned i = 0; i < (unsigned)c->nr_out + c->nr_in; i++) {
		const struct iovec *v = &c->iov[i];
		struct run run = {gpa_of(m, v->iov_base), v->iov_len};
		r->valid++;
		flush(m, &run, true, r);
	}
}
