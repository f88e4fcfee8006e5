/* The test guest's polling virtio-blk driver and its tests. */
#ifndef GUEST_BLK_H
#define GUEST_BLK_H

#include "virtio.h"

#define VIRTIO_ID_BLK 2
#define VBLK_T_IN 0
#define VBLK_T_OUT 1
#define VBLK_T_FLUSH 4
#define VBLK_T_GET_ID 8
#define VBLK_T_DISCARD 11
#define VBLK_T_WRITE_ZEROES 13
#define VBLK_S_OK 0
#define VBLK_S_IOERR 1
#define VBLK_S_UNSUPP 2
#define VBLK_F_SEG_MAX (1ULL << 2)
#define VBLK_F_RO (1ULL << 5)
#define VBLK_F_BLK_SIZE (1ULL << 6)
#define VBLK_F_FLUSH (1ULL << 9)
#define VBLK_F_DISCARD (1ULL << 13)
#define VBLK_F_WRITE_ZEROES (1ULL << 14)
#define VBLK_ID_BYTES 20

#define BLK_SLOTS 32     /* requests in flight at most */
#define BLK_TABLE 16     /* indirect table entries per slot */
#define BLK_TIMEOUT_NS (10ULL * 1000000000)

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_slot {
	struct blk_hdr hdr;
	volatile uint8_t status;
	uint8_t pad[47];
	struct vdesc table[BLK_TABLE]; /* indirect table */
};

struct blkdev {
	struct vdev dev;
	struct gvq q;
	uint64_t capacity; /* sectors */
	uint32_t seg_max;
	uint16_t per_slot; /* ring descriptors per slot */
	struct blk_slot *slots;
	uint8_t *bounce; /* BLK_BOUNCE bytes, for the status-in-data layout */
};
#define BLK_BOUNCE (64 * 1024 + 1)

/* A buffer of a chain, device-readable or -writable. */
struct bseg {
	uint64_t addr;
	uint32_t len;
	bool write;
};

/* How blk_request() lays a request out over descriptors. */
enum blk_layout {
	LAYOUT_SIMPLE,         /* header | data | status */
	LAYOUT_SPLIT_DATA,     /* data over three descriptors of odd sizes */
	LAYOUT_SPLIT_HEADER,   /* header over two descriptors */
	LAYOUT_INDIRECT,       /* one ring descriptor -> indirect table */
	LAYOUT_INDIRECT_SPLIT, /* indirect, with split header and data */
	LAYOUT_STATUS_IN_DATA, /* reads: data and status share a descriptor */
	LAYOUT_COUNT
};

bool blk_open(struct blkdev *b, unsigned index, uint64_t extra_features, char *why, size_t n);
/* Post slot's chain (the caller filled the slot's header); not published. */
void blk_post(struct blkdev *b, unsigned slot, const struct bseg *s, unsigned n, bool indirect);
/* Next completed slot, or -1 after timeout_ns. */
int blk_reap(struct blkdev *b, uint64_t timeout_ns);
/* One request, start to finish: the status byte, or -1 on timeout. */
int blk_request(struct blkdev *b, uint32_t type, uint64_t sector, void *buf, uint32_t len,
		enum blk_layout layout);

/* Address-dependent test data: 32-bit words seed * 0x9E3779B1 + i. */
void blk_pattern(void *buf, uint32_t len, uint32_t seed);

bool test_blk(char *why, size_t n);
bool test_blk_ro(char *why, size_t n);
bool test_blk_range(char *why, size_t n);
bool test_blk_durable(char *why, size_t n);
bool test_blk_bench(char *why, size_t n);
bool test_blk_evil(char *why, size_t n);

#endif
