/*
 * blk_evil: a misbehaving driver, from inside a real VM. Malformed chains
 * must come back unused (length 0, status untouched) while the device
 * keeps working; protocol violations and a runaway avail index must end
 * in DEVICE_NEEDS_RESET, and a reset must bring the device back. The VMM
 * must survive all of it.
 */
#include "blk.h"

static void raw(struct blkdev *b, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		uint16_t next)
{
	b->q.desc[i].addr = addr;
	b->q.desc[i].len = len;
	b->q.desc[i].flags = flags;
	b->q.desc[i].next = next;
}

/* Post the chain at descriptor 0 and wait for it: its used length. */
static int64_t run_chain(struct blkdev *b)
{
	vq_add(&b->q, 0);
	vq_kick(&b->q);
	uint64_t end = time_ns() + BLK_TIMEOUT_NS;
	uint32_t len;
	while (vq_used(&b->q, &len) < 0)
		if (time_ns() > end)
			return -1;
	return len;
}

/* Each case writes descriptors 0.. of slot 0 (the indirect tables sit in
 * slot 1's table). */
static void bad_chain(struct blkdev *b, unsigned c, uint64_t hdr, uint64_t st, uint64_t data)
{
	uint64_t table = (uint64_t)(uintptr_t)b->slots[1].table;
	volatile struct vdesc *t = b->slots[1].table;
	switch (c) {
	case 0: /* a loop */
		raw(b, 0, hdr, 16, VDESC_NEXT, 1);
		raw(b, 1, data, 512, VDESC_NEXT, 0);
		break;
	case 1: /* a buffer inside the device's own MMIO window */
		raw(b, 0, hdr, 16, VDESC_NEXT, 1);
		raw(b, 1, b->dev.base, 512, VDESC_NEXT | VDESC_WRITE, 2);
		raw(b, 2, st, 1, VDESC_WRITE, 0);
		break;
	case 2: /* a buffer far past RAM, and a huge one */
		raw(b, 0, hdr, 16, VDESC_NEXT, 1);
		raw(b, 1, 0x7fffffff0000ULL, 512, VDESC_NEXT | VDESC_WRITE, 2);
		raw(b, 2, data, 0xffffffffU, VDESC_WRITE, 0);
		break;
	case 3: /* next out of range */
		raw(b, 0, hdr, 16, VDESC_NEXT, 0xffff);
		break;
	case 4: /* readable after writable */
		raw(b, 0, st, 1, VDESC_NEXT | VDESC_WRITE, 1);
		raw(b, 1, hdr, 16, 0, 0);
		break;
	case 5: /* an indirect table inside an indirect table */
		t[0] = (struct vdesc){ hdr, 16, VDESC_NEXT, 1 };
		t[1] = (struct vdesc){ table, 32, VDESC_INDIRECT, 0 };
		raw(b, 0, table, 32, VDESC_INDIRECT, 0);
		break;
	case 6: /* an indirect table whose length is not a multiple of 16 */
		raw(b, 0, table, 24, VDESC_INDIRECT, 0);
		break;
	default: /* no status byte at all */
		raw(b, 0, hdr, 16, 0, 0);
		break;
	}
}

#define BAD_CHAINS 8

static bool bad_chains(struct blkdev *b, uint8_t *data, char *why, size_t n)
{
	struct blk_slot *sl = &b->slots[0];
	uint64_t hdr = (uint64_t)(uintptr_t)&sl->hdr, st = (uint64_t)(uintptr_t)&sl->status;
	for (unsigned c = 0; c < BAD_CHAINS; c++) {
		sl->hdr = (struct blk_hdr){ VBLK_T_IN, 0, 0 };
		sl->status = 0xee;
		bad_chain(b, c, hdr, st, (uint64_t)(uintptr_t)data);
		int64_t len = run_chain(b);
		if (len != 0 || sl->status != 0xee) {
			snformat(why, n, "bad chain %u: used length %lld, status 0x%x", c,
				 (long long)len, sl->status);
			return false;
		}
		if (blk_request(b, VBLK_T_IN, 0, data, 512, LAYOUT_SIMPLE) != VBLK_S_OK) {
			snformat(why, n, "device stopped working after bad chain %u", c);
			return false;
		}
	}
	print("BLK evil: %u malformed chains refused, device still works\n", BAD_CHAINS);
	return true;
}

static bool wait_needs_reset(struct blkdev *b)
{
	uint64_t end = time_ns() + BLK_TIMEOUT_NS;
	while (!(vread(&b->dev, VMMIO_STATUS) & VSTATUS_NEEDS_RESET))
		if (time_ns() > end)
			return false;
	return true;
}

static bool recovers(struct blkdev *b, uint8_t *data, const char *what, char *why, size_t n)
{
	if (!blk_open(b, (unsigned)opt.blk_index, 0, why, n))
		return false;
	if (blk_request(b, VBLK_T_IN, 0, data, 512, LAYOUT_INDIRECT) != VBLK_S_OK) {
		snformat(why, n, "no recovery after %s", what);
		return false;
	}
	print("BLK evil: %s -> NEEDS_RESET, reset recovers\n", what);
	return true;
}

static bool violations(struct blkdev *b, uint8_t *data, char *why, size_t n)
{
	/* DRIVER_OK without FEATURES_OK */
	vwrite(&b->dev, VMMIO_STATUS, 0);
	while (vread(&b->dev, VMMIO_STATUS))
		cpu_relax();
	vwrite(&b->dev, VMMIO_STATUS, VSTATUS_ACK | VSTATUS_DRIVER);
	vwrite(&b->dev, VMMIO_STATUS, VSTATUS_ACK | VSTATUS_DRIVER | VSTATUS_DRIVER_OK);
	if (!wait_needs_reset(b)) {
		snformat(why, n, "DRIVER_OK without FEATURES_OK accepted");
		return false;
	}
	if (!recovers(b, data, "DRIVER_OK without FEATURES_OK", why, n))
		return false;
	/* the avail index runs more than a queue ahead */
	b->q.avail[1] = (uint16_t)(b->q.avail_idx + b->q.size + 5);
	vwrite(&b->dev, VMMIO_QUEUE_NOTIFY, 0);
	if (!wait_needs_reset(b)) {
		snformat(why, n, "runaway avail index accepted");
		return false;
	}
	return recovers(b, data, "runaway avail index", why, n);
}

bool test_blk_evil(char *why, size_t n)
{
	struct blkdev b;
	uint8_t *data = galloc(4096, 4096);
	if (!data) {
		snformat(why, n, "out of memory");
		return false;
	}
	return blk_open(&b, (unsigned)opt.blk_index, 0, why, n) && bad_chains(&b, data, why, n) &&
	       violations(&b, data, why, n);
}
