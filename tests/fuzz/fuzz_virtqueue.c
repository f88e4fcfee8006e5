/*
 * libFuzzer target: virtqueue walking and virtio-blk request parsing over
 * a fuzzed guest memory and ring.
 *
 * Input: an 8-byte header, then guest RAM contents (zero-filled to 64 KiB).
 *   [0] flags: bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 read-only disk
 *   [1] log2 of the queue size (mod 9: 1..256 entries)
 *   [2..3] descriptor table address / 16, [4..5] avail ring / 2,
 *   [6..7] used ring / 4 (little-endian; may overlap anything)
 * Guest RAM lives on the heap, so ASan sees any access outside it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzvq.h"
#include "mem.h"
#include "virtio/blk.h"
#include "virtio/virtqueue.h"

#define CAPACITY 100 /* sectors */

/* Touch every byte the parser hands out, the way the engines would. */
static void use_request(const struct blk_parsed *p, int status)
{
	volatile uint8_t sink = 0;
	if (status == BLK_NO_STATUS)
		return;
	*p->status = (uint8_t)status;
	if (status != VIRTIO_BLK_S_OK)
		return;
	for (unsigned i = 0; i < p->ndata; i++) {
		uint8_t *b = p->data[i].iov_base;
		if (p->type == VIRTIO_BLK_T_IN || p->type == VIRTIO_BLK_T_GET_ID)
			memset(b, 0xa5, p->data[i].iov_len);
		else if (p->data[i].iov_len)
			sink ^= b[0] ^ b[p->data[i].iov_len - 1];
	}
	(void)sink;
}

static void drain(struct virtqueue *vq, bool ro)
{
	static struct iovec iov[VQ_MAX_SIZE];
	static struct blk_parsed p;
	struct vq_chain c = { .iov = iov, .max_iov = VQ_MAX_SIZE };
	struct blk_limits lim = { .capacity = CAPACITY, .ro = ro };
	vq_disable_notify(vq);
	for (unsigned n = 0; n < 2u * vq->st->size + 2; n++) {
		int rc = vq_pop(vq, &c);
		if (rc == VQ_EMPTY || rc == VQ_BROKEN)
			break;
		if (rc == VQ_BAD_CHAIN) {
			vq_push(vq, c.head, 0);
			continue;
		}
		int status = blk_parse(&c, &lim, &p);
		use_request(&p, status);
		vq_push(vq, c.head, status == VIRTIO_BLK_S_OK ? p.written : 1);
	}
	vq_enable_notify(vq);
	if (vq_publish(vq))
		vq_need_interrupt(vq);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 8)
		return 0;
	struct guest_mem mem;
	if (!fz_ram(&mem, data + 8, size - 8))
		return 0;
	struct vq_state st;
	struct virtqueue vq;
	if (fz_queue(&vq, &st, &mem, data + 1, data[0] & 1, data[0] & 2) == 0) {
		drain(&vq, data[0] & 4);
		drain(&vq, data[0] & 4); /* again: indices carried over */
	}
	free(mem.host);
	return 0;
}
