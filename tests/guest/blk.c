/*
 * virtio-blk tests: blk (read/write in every layout, batches, flush,
 * GET_ID, write zeroes, discard, unsupported type), blk_ro, blk_range,
 * blk_durable. See README.md.
 */
#include "blk.h"

#define BLOCK 4096
#define SECTORS_PER_BLOCK (BLOCK / 512)
/* Written last by `blk`; the host checks the image holds it. */
#define SIGNATURE_SECTOR 1024
#define SIGNATURE_SEED 0xB10C

static const char *layout_name[LAYOUT_COUNT] = {
	"simple", "split-data", "split-header", "indirect", "indirect-split", "status-in-data",
};

static bool expect(int got, int want, const char *what, char *why, size_t n)
{
	if (got == want)
		return true;
	snformat(why, n, "%s: status %d, expected %d", what, got, want);
	return false;
}

static bool open_disk(struct blkdev *b, uint64_t extra, char *why, size_t n)
{
	if (!blk_open(b, (unsigned)opt.blk_index, extra, why, n))
		return false;
	if (opt.blk_sectors && b->capacity != opt.blk_sectors) {
		snformat(why, n, "capacity %llu sectors, expected %llu",
			 (unsigned long long)b->capacity, (unsigned long long)opt.blk_sectors);
		return false;
	}
	return true;
}

/* Write in one layout, read back in every layout. */
static bool rw_layouts(struct blkdev *b, uint8_t *wbuf, uint8_t *rbuf, char *why, size_t n)
{
	for (unsigned w = 0; w < LAYOUT_COUNT; w++) {
		uint64_t sector = (uint64_t)w * SECTORS_PER_BLOCK;
		blk_pattern(wbuf, BLOCK, 100 + w);
		if (!expect(blk_request(b, VBLK_T_OUT, sector, wbuf, BLOCK, (enum blk_layout)w),
			    VBLK_S_OK, layout_name[w], why, n))
			return false;
		for (unsigned r = 0; r < LAYOUT_COUNT; r++) {
			memset(rbuf, 0, BLOCK);
			if (!expect(blk_request(b, VBLK_T_IN, sector, rbuf, BLOCK, (enum blk_layout)r),
				    VBLK_S_OK, layout_name[r], why, n))
				return false;
			if (memcmp(rbuf, wbuf, BLOCK)) {
				snformat(why, n, "written %s, read %s: data differs", layout_name[w],
					 layout_name[r]);
				return false;
			}
		}
	}
	print("BLK layouts ok\n");
	return true;
}

/* `count` requests posted together, one kick; all must complete OK. */
static bool batch(struct blkdev *b, uint32_t type, uint8_t *bufs, unsigned count, char *why,
		  size_t n)
{
	bool read = type == VBLK_T_IN;
	for (unsigned i = 0; i < count; i++) {
		struct blk_slot *sl = &b->slots[i];
		sl->hdr = (struct blk_hdr){ type, 0, 512 + (uint64_t)i * SECTORS_PER_BLOCK };
		sl->status = 0xff;
		struct bseg s[3] = {
			{ (uint64_t)(uintptr_t)&sl->hdr, 16, false },
			{ (uint64_t)(uintptr_t)(bufs + (uint64_t)i * BLOCK), BLOCK, read },
			{ (uint64_t)(uintptr_t)&sl->status, 1, true },
		};
		blk_post(b, i, s, 3, i & 1);
	}
	uint64_t kicks = b->q.kicks;
	vq_kick(&b->q);
	for (unsigned i = 0; i < count; i++) {
		int slot = blk_reap(b, BLK_TIMEOUT_NS);
		if (slot < 0 || (unsigned)slot >= count) {
			snformat(why, n, "batch: request %u never completed", i);
			return false;
		}
		if (b->slots[slot].status != VBLK_S_OK) {
			snformat(why, n, "batch: slot %d status %u", slot, b->slots[slot].status);
			return false;
		}
	}
	if (b->q.kicks - kicks > 1) {
		snformat(why, n, "batch of %u took %llu notifications", count,
			 (unsigned long long)(b->q.kicks - kicks));
		return false;
	}
	return true;
}

static bool batches(struct blkdev *b, char *why, size_t n)
{
	enum { COUNT = 16 };
	uint8_t *w = galloc(COUNT * BLOCK, 4096), *r = galloc(COUNT * BLOCK, 4096);
	if (!w || !r) {
		snformat(why, n, "out of memory");
		return false;
	}
	for (unsigned i = 0; i < COUNT; i++)
		blk_pattern(w + i * BLOCK, BLOCK, 200 + i);
	if (!batch(b, VBLK_T_OUT, w, COUNT, why, n) || !batch(b, VBLK_T_IN, r, COUNT, why, n))
		return false;
	if (memcmp(w, r, COUNT * BLOCK)) {
		snformat(why, n, "batch: read data differs from written");
		return false;
	}
	print("BLK batch of %u ok\n", COUNT);
	return true;
}

static bool get_id(struct blkdev *b, char *why, size_t n)
{
	char id[VBLK_ID_BYTES + 1], want[VBLK_ID_BYTES];
	memset(id, 0x55, sizeof(id));
	memset(want, 0, sizeof(want));
	size_t len = opt.blk_serial ? strlen(opt.blk_serial) : 0;
	memcpy(want, opt.blk_serial ? opt.blk_serial : "", len < VBLK_ID_BYTES ? len : VBLK_ID_BYTES);
	if (!expect(blk_request(b, VBLK_T_GET_ID, 0, id, VBLK_ID_BYTES, LAYOUT_STATUS_IN_DATA),
		    VBLK_S_OK, "get-id", why, n))
		return false;
	/* The ID ends at the first NUL, if shorter than 20 bytes; what
	 * follows that NUL is unspecified (QEMU leaves it alone). */
	id[VBLK_ID_BYTES] = 0;
	print("BLK id=%s\n", id);
	if (strncmp(id, want, VBLK_ID_BYTES) || (len < VBLK_ID_BYTES && id[len])) {
		snformat(why, n, "get-id returned '%s', expected '%s'", id, want);
		return false;
	}
	return true;
}

static bool zero_ranges(struct blkdev *b, uint8_t *buf, char *why, size_t n)
{
	struct {
		uint64_t sector;
		uint32_t num, flags;
	} range = { 64, 2 * SECTORS_PER_BLOCK, 0 };
	if (!(b->dev.features & VBLK_F_WRITE_ZEROES) || !(b->dev.features & VBLK_F_DISCARD)) {
		snformat(why, n, "DISCARD / WRITE_ZEROES not offered");
		return false;
	}
	blk_pattern(buf, 2 * BLOCK, 77);
	if (!expect(blk_request(b, VBLK_T_OUT, 64, buf, 2 * BLOCK, LAYOUT_SIMPLE), VBLK_S_OK,
		    "write before write-zeroes", why, n) ||
	    !expect(blk_request(b, VBLK_T_WRITE_ZEROES, 0, &range, 16, LAYOUT_SIMPLE), VBLK_S_OK,
		    "write-zeroes", why, n) ||
	    !expect(blk_request(b, VBLK_T_IN, 64, buf, 2 * BLOCK, LAYOUT_SIMPLE), VBLK_S_OK,
		    "read after write-zeroes", why, n))
		return false;
	for (unsigned i = 0; i < 2 * BLOCK; i++)
		if (buf[i]) {
			snformat(why, n, "write-zeroes left byte %u = 0x%x", i, buf[i]);
			return false;
		}
	range.flags = 1; /* unmap: allowed for write zeroes, refused for discard */
	if (!expect(blk_request(b, VBLK_T_WRITE_ZEROES, 0, &range, 16, LAYOUT_SIMPLE), VBLK_S_OK,
		    "write-zeroes with unmap", why, n) ||
	    !expect(blk_request(b, VBLK_T_DISCARD, 0, &range, 16, LAYOUT_SIMPLE), VBLK_S_UNSUPP,
		    "discard with unmap flag", why, n))
		return false;
	range.flags = 0;
	if (!expect(blk_request(b, VBLK_T_DISCARD, 0, &range, 16, LAYOUT_SIMPLE), VBLK_S_OK,
		    "discard", why, n))
		return false;
	print("BLK write-zeroes and discard ok\n");
	return true;
}

bool test_blk(char *why, size_t n)
{
	struct blkdev b;
	if (!open_disk(&b, VBLK_F_DISCARD | VBLK_F_WRITE_ZEROES, why, n))
		return false;
	if (b.dev.features & VBLK_F_RO) {
		snformat(why, n, "disk is read-only");
		return false;
	}
	if (b.capacity < SIGNATURE_SECTOR + SECTORS_PER_BLOCK) {
		snformat(why, n, "disk too small: %llu sectors", (unsigned long long)b.capacity);
		return false;
	}
	uint8_t *wbuf = galloc(2 * BLOCK, 4096), *rbuf = galloc(2 * BLOCK, 4096);
	if (!wbuf || !rbuf) {
		snformat(why, n, "out of memory");
		return false;
	}
	if (!rw_layouts(&b, wbuf, rbuf, why, n) || !batches(&b, why, n) ||
	    !expect(blk_request(&b, VBLK_T_FLUSH, 0, NULL, 0, LAYOUT_SIMPLE), VBLK_S_OK, "flush",
		    why, n) ||
	    !get_id(&b, why, n) || !zero_ranges(&b, wbuf, why, n) ||
	    !expect(blk_request(&b, 0x1234, 0, NULL, 0, LAYOUT_SIMPLE), VBLK_S_UNSUPP,
		    "unknown request type", why, n))
		return false;
	blk_pattern(wbuf, BLOCK, SIGNATURE_SEED);
	if (!expect(blk_request(&b, VBLK_T_OUT, SIGNATURE_SECTOR, wbuf, BLOCK, LAYOUT_INDIRECT),
		    VBLK_S_OK, "signature write", why, n) ||
	    !expect(blk_request(&b, VBLK_T_FLUSH, 0, NULL, 0, LAYOUT_SIMPLE), VBLK_S_OK, "flush",
		    why, n))
		return false;
	print("BLK signature sector=%u seed=%u\n", SIGNATURE_SECTOR, SIGNATURE_SEED);
	return true;
}

bool test_blk_ro(char *why, size_t n)
{
	struct blkdev b;
	struct {
		uint64_t sector;
		uint32_t num, flags;
	} range = { 0, 8, 0 };
	if (!open_disk(&b, VBLK_F_DISCARD | VBLK_F_WRITE_ZEROES, why, n))
		return false;
	if (!(b.dev.features & VBLK_F_RO)) {
		snformat(why, n, "VIRTIO_BLK_F_RO not offered");
		return false;
	}
	uint8_t *before = galloc(BLOCK, 4096), *after = galloc(BLOCK, 4096), *w = galloc(BLOCK, 4096);
	if (!before || !after || !w) {
		snformat(why, n, "out of memory");
		return false;
	}
	blk_pattern(w, BLOCK, 5);
	if (!expect(blk_request(&b, VBLK_T_IN, 0, before, BLOCK, LAYOUT_SIMPLE), VBLK_S_OK, "read",
		    why, n) ||
	    !expect(blk_request(&b, VBLK_T_OUT, 0, w, BLOCK, LAYOUT_SIMPLE), VBLK_S_IOERR,
		    "write to a read-only disk", why, n) ||
	    !expect(blk_request(&b, VBLK_T_WRITE_ZEROES, 0, &range, 16, LAYOUT_SIMPLE),
		    VBLK_S_IOERR, "write-zeroes on a read-only disk", why, n) ||
	    !expect(blk_request(&b, VBLK_T_DISCARD, 0, &range, 16, LAYOUT_SIMPLE), VBLK_S_IOERR,
		    "discard on a read-only disk", why, n) ||
	    !expect(blk_request(&b, VBLK_T_FLUSH, 0, NULL, 0, LAYOUT_SIMPLE), VBLK_S_OK, "flush",
		    why, n) ||
	    !expect(blk_request(&b, VBLK_T_IN, 0, after, BLOCK, LAYOUT_INDIRECT), VBLK_S_OK,
		    "read again", why, n))
		return false;
	if (memcmp(before, after, BLOCK)) {
		snformat(why, n, "a refused write changed the disk");
		return false;
	}
	print("BLK ro: writes refused, reads ok\n");
	return true;
}

bool test_blk_range(char *why, size_t n)
{
	struct blkdev b;
	if (!open_disk(&b, 0, why, n))
		return false;
	uint8_t *buf = galloc(2 * 512, 4096);
	uint64_t c = b.capacity;
	if (!buf || c == 0) {
		snformat(why, n, "no memory or empty disk");
		return false;
	}
	const struct {
		uint32_t type;
		uint64_t sector;
		uint32_t len;
		int status;
		const char *what;
	} cases[] = {
		{ VBLK_T_IN, c - 1, 512, VBLK_S_OK, "read of the last sector" },
		{ VBLK_T_IN, c, 512, VBLK_S_IOERR, "read at capacity" },
		{ VBLK_T_IN, c - 1, 1024, VBLK_S_IOERR, "read across the end" },
		{ VBLK_T_OUT, c, 512, VBLK_S_IOERR, "write at capacity" },
		{ VBLK_T_OUT, c - 1, 1024, VBLK_S_IOERR, "write across the end" },
		{ VBLK_T_IN, 1ULL << 63, 512, VBLK_S_IOERR, "read at sector 2^63" },
		{ VBLK_T_IN, ~0ULL, 512, VBLK_S_IOERR, "read at sector 2^64-1" },
		{ VBLK_T_IN, (~0ULL >> 9) + 1, 512, VBLK_S_IOERR, "read where sector*512 wraps" },
		{ VBLK_T_IN, 0, 100, VBLK_S_IOERR, "read of 100 bytes" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (!expect(blk_request(&b, cases[i].type, cases[i].sector, buf, cases[i].len,
					LAYOUT_SIMPLE),
			    cases[i].status, cases[i].what, why, n))
			return false;
	print("BLK range checks ok (capacity %llu)\n", (unsigned long long)c);
	return true;
}

bool test_blk_durable(char *why, size_t n)
{
	struct blkdev b;
	if (!open_disk(&b, 0, why, n))
		return false;
	uint64_t count = opt.blk_n ? opt.blk_n : 1024;
	uint8_t *buf = galloc(BLOCK, 4096);
	if (!buf || b.capacity < count * SECTORS_PER_BLOCK) {
		snformat(why, n, "disk too small for %llu blocks", (unsigned long long)count);
		return false;
	}
	for (uint64_t i = 0; i < count; i++) {
		blk_pattern(buf, BLOCK, (uint32_t)i);
		if (!expect(blk_request(&b, VBLK_T_OUT, i * SECTORS_PER_BLOCK, buf, BLOCK,
					LAYOUT_SIMPLE),
			    VBLK_S_OK, "write", why, n) ||
		    !expect(blk_request(&b, VBLK_T_FLUSH, 0, NULL, 0, LAYOUT_SIMPLE), VBLK_S_OK,
			    "flush", why, n))
			return false;
		print("FLUSHED %llu\n", (unsigned long long)(i + 1));
	}
	return true;
}
