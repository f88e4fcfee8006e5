/*
 * libFuzzer target: virtio-balloon chains (virtio/balloon_pages.c,
 * virtio/balloon_stats.c over virtio/virtqueue.c) on fuzzed guest memory
 * and a fuzzed ring: inflate / deflate page lists, free page reports and
 * statistics buffers.
 *
 * Input: an 8-byte header, then guest RAM contents (zero-filled to 64 KiB).
 *   [0] bits 0-1: the queue's role (inflate, deflate, statistics, report),
 *       bit 2 EVENT_IDX, bit 3 INDIRECT_DESC
 *   [1] log2 of the queue size (mod 9), [2..3] descriptors / 16,
 *   [4..5] avail / 2, [6..7] used / 4
 * Checked besides memory safety: every PFN of an accepted page list is
 * counted once, as inside RAM or not; a report counts each buffer; a
 * statistics buffer is refused or read whole. Guest RAM is on the heap,
 * page-aligned (pages given back are dropped with MADV_DONTNEED), so ASan
 * sees any access outside it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzvq.h"
#include "mem.h"
#include "virtio/balloon.h"

#define HDR 8
#define MAX_CHAINS 64

static void check(const struct guest_mem *m, unsigned role, struct vq_chain *c)
{
	struct balloon_pages_result r;
	struct virtio_balloon_guest_stats s = {0};
	switch (role) {
	case BALLOON_Q_INFLATE:
	case BALLOON_Q_DEFLATE:
		balloon_pfn_chain(m, c, role == BALLOON_Q_INFLATE, &r);
		if (!r.why && r.valid + r.bad != c->out_len / 4)
			abort();
		if (r.why && (r.valid || r.bad))
			abort();
		break;
	case BALLOON_Q_REPORTING:
		balloon_report_chain(m, c, &r);
		if (r.valid != (unsigned)c->nr_out + c->nr_in)
			abort();
		break;
	default: {
		int n = balloon_stats_parse(c, &s);
		if (n >= 0 && (uint64_t)n != c->out_len / BALLOON_STAT_LEN)
			abort();
		if (n < 0 && s.updates)
			abort();
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct iovec iov[VQ_MAX_SIZE];
	if (size < HDR)
		return 0;
	vmm_log_configure(-1, VMM_LOG_ERROR, false, false); /* guest-triggered warnings */
	struct guest_mem mem;
	if (!fz_ram(&mem, data + HDR, size - HDR))
		return 0;
	struct vq_state st;
	struct virtqueue vq;
	if (fz_queue(&vq, &st, &mem, data + 1, data[0] & 4, data[0] & 8) == 0) {
		struct vq_chain c = {.iov = iov, .max_iov = VQ_MAX_SIZE};
		for (int i = 0; i < MAX_CHAINS; i++) {
			int rc = vq_pop(&vq, &c);
			if (rc == VQ_EMPTY || rc == VQ_BROKEN)
				break;
			if (rc == VQ_CHAIN)
				check(&mem, data[0] & 3, &c);
			vq_push(&vq, c.head, 0);
		}
		if (vq_publish(&vq))
			vq_need_interrupt(&vq);
	}
	free(mem.host);
	return 0;
}
