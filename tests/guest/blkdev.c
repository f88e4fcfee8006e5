/* Polling virtio-blk driver: one queue, fixed request slots. */
#include "blk.h"

void blk_pattern(void *buf, uint32_t len, uint32_t seed)
{
	uint32_t *w = buf;
	for (uint32_t i = 0; i < len / 4; i++)
		w[i] = seed * 0x9E3779B1U + i;
}

static uint32_t cfg32(const struct vdev *d, unsigned off)
{
	return vread(d, VMMIO_CONFIG + off);
}

bool blk_open(struct blkdev *b, unsigned index, uint64_t extra, char *why, size_t n)
{
	time_init();
	memset(b, 0, sizeof(*b));
	if (!virtio_find(VIRTIO_ID_BLK, index, &b->dev)) {
		snformat(why, n, "no virtio-blk device #%u on the command line", index);
		return false;
	}
	uint64_t want = VF_VERSION_1 | VF_INDIRECT_DESC | VF_EVENT_IDX | VBLK_F_SEG_MAX |
			VBLK_F_BLK_SIZE | VBLK_F_FLUSH | VBLK_F_RO | extra;
	if (!virtio_init(&b->dev, want, why, n))
		return false;
	/* capacity is 64-bit: read it under an unchanged ConfigGeneration. */
	uint32_t gen;
	do {
		gen = vread(&b->dev, VMMIO_CONFIG_GENERATION);
		b->capacity = cfg32(&b->dev, 0) | (uint64_t)cfg32(&b->dev, 4) << 32;
	} while (gen != vread(&b->dev, VMMIO_CONFIG_GENERATION));
	b->seg_max = (b->dev.features & VBLK_F_SEG_MAX) ? cfg32(&b->dev, 12) : 1;
	if (!vq_setup(&b->dev, &b->q, 0, 256, why, n))
		return false;
	b->per_slot = b->q.size / BLK_SLOTS;
	b->slots = galloc(sizeof(struct blk_slot) * BLK_SLOTS, 4096);
	b->bounce = galloc(BLK_BOUNCE, 4096);
	if (b->per_slot < 6 || !b->slots || !b->bounce) {
		snformat(why, n, "queue too small (%u) or out of memory", b->q.size);
		return false;
	}
	virtio_driver_ok(&b->dev);
	if (vread(&b->dev, VMMIO_STATUS) & VSTATUS_NEEDS_RESET) {
		snformat(why, n, "device needs reset after DRIVER_OK");
		return false;
	}
	print("BLK base=0x%llx irq=%u capacity=%llu features=0x%llx seg_max=%u queue=%u\n",
	      (unsigned long long)b->dev.base, b->dev.irq, (unsigned long long)b->capacity,
	      (unsigned long long)b->dev.features, b->seg_max, b->q.size);
	return true;
}

void blk_post(struct blkdev *b, unsigned slot, const struct bseg *s, unsigned n, bool indirect)
{
	struct blk_slot *sl = &b->slots[slot];
	uint16_t head = (uint16_t)(slot * b->per_slot);
	volatile struct vdesc *d = indirect ? (volatile struct vdesc *)sl->table : b->q.desc + head;
	uint16_t base = indirect ? 0 : head;
	for (unsigned i = 0; i < n; i++) {
		d[i].addr = s[i].addr;
		d[i].len = s[i].len;
		d[i].flags = (uint16_t)((s[i].write ? VDESC_WRITE : 0) | (i + 1 < n ? VDESC_NEXT : 0));
		d[i].next = (uint16_t)(base + i + 1);
	}
	if (indirect) {
		b->q.desc[head].addr = (uint64_t)(uintptr_t)sl->table;
		b->q.desc[head].len = n * (uint32_t)sizeof(struct vdesc);
		b->q.desc[head].flags = VDESC_INDIRECT;
	}
	vq_add(&b->q, head);
}

int blk_reap(struct blkdev *b, uint64_t timeout_ns)
{
	uint64_t end = time_ns() + timeout_ns;
	for (;;) {
		uint32_t len;
		int id = vq_used(&b->q, &len);
		if (id >= 0)
			return id / b->per_slot;
		if (time_ns() > end)
			return -1;
		cpu_relax();
	}
}

/* Descriptors for one request in `layout`; returns how many. */
static unsigned lay_out(struct blkdev *b, struct bseg *s, bool read, void *buf, uint32_t len,
			enum blk_layout layout)
{
	struct blk_slot *sl = &b->slots[0];
	uint64_t h = (uint64_t)(uintptr_t)&sl->hdr, data = (uint64_t)(uintptr_t)buf;
	unsigned n = 0;
	bool split_hdr = layout == LAYOUT_SPLIT_HEADER || layout == LAYOUT_INDIRECT_SPLIT;
	bool split_data = layout == LAYOUT_SPLIT_DATA || layout == LAYOUT_INDIRECT_SPLIT;
	if (split_hdr) {
		s[n++] = (struct bseg){ h, 8, false };
		s[n++] = (struct bseg){ h + 8, 8, false };
	} else {
		s[n++] = (struct bseg){ h, 16, false };
	}
	if (layout == LAYOUT_STATUS_IN_DATA && read) {
		s[n++] = (struct bseg){ (uint64_t)(uintptr_t)b->bounce, len + 1, true };
		return n;
	}
	if (len && split_data && len >= 1024) {
		uint32_t a = 700, c = len / 2 - 700;
		s[n++] = (struct bseg){ data, a, read };
		s[n++] = (struct bseg){ data + a, c, read };
		s[n++] = (struct bseg){ data + a + c, len - a - c, read };
	} else if (len) {
		s[n++] = (struct bseg){ data, len, read };
	}
	s[n++] = (struct bseg){ (uint64_t)(uintptr_t)&sl->status, 1, true };
	return n;
}

int blk_request(struct blkdev *b, uint32_t type, uint64_t sector, void *buf, uint32_t len,
		enum blk_layout layout)
{
	bool read = type == VBLK_T_IN || type == VBLK_T_GET_ID;
	if (layout == LAYOUT_STATUS_IN_DATA && (!read || len + 1 > BLK_BOUNCE))
		layout = LAYOUT_SIMPLE;
	struct blk_slot *sl = &b->slots[0];
	sl->hdr = (struct blk_hdr){ type, 0, sector };
	sl->status = 0xff;
	struct bseg s[8];
	unsigned n = lay_out(b, s, read, buf, len, layout);
	if (layout == LAYOUT_STATUS_IN_DATA)
		b->bounce[len] = 0xff;
	blk_post(b, 0, s, n, layout == LAYOUT_INDIRECT || layout == LAYOUT_INDIRECT_SPLIT);
	vq_kick(&b->q);
	if (blk_reap(b, BLK_TIMEOUT_NS) != 0)
		return -1;
	if (layout == LAYOUT_STATUS_IN_DATA) {
		memcpy(buf, b->bounce, len);
		return b->bounce[len];
	}
	return sl->status;
}
