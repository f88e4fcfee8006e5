/*
 * virtio-blk request parsing (virtio 1.2, 5.2.6). Pure: no I/O, so unit
 * tests and the fuzzer can drive it over crafted chains.
 *
 * A request is a device-readable header (type, reserved, sector), data,
 * and a one-byte device-writable status at the very end. With VERSION_1
 * the framing is free (any layout): the header may span descriptors, and
 * the status byte may share a descriptor with read data. So the chain is
 * handled as two byte streams, readable then writable.
 */
#include <string.h>

#include "blk.h"

#define SECTOR_SHIFT 9
#define SECTOR_SIZE (1U << SECTOR_SHIFT)

/* Remove the last byte of the writable stream and return it. */
static uint8_t *take_status(struct vq_chain *c)
{
	if (c->in_len == 0)
		return NULL;
	/* Zero-length descriptors have no iov slot, so this one has bytes. */
	struct iovec *last = &c->iov[c->nr_out + c->nr_in - 1];
	last->iov_len--;
	uint8_t *status = (uint8_t *)last->iov_base + last->iov_len;
	if (last->iov_len == 0)
		c->nr_in--;
	c->in_len--;
	return status;
}

/* Copy the first len bytes of the readable stream, then drop them from it. */
static bool take_header(struct vq_chain *c, struct virtio_blk_outhdr *h)
{
	if (c->out_len < sizeof(*h))
		return false;
	uint8_t *dst = (uint8_t *)h;
	size_t need = sizeof(*h);
	unsigned i = 0;
	while (need) {
		struct iovec *v = &c->iov[i];
		size_t n = v->iov_len < need ? v->iov_len : need;
		memcpy(dst, v->iov_base, n);
		dst += n;
		need -= n;
		v->iov_base = (uint8_t *)v->iov_base + n;
		v->iov_len -= n;
		if (v->iov_len == 0)
			i++;
	}
	/* Slide the remaining readable segments down over the used ones. */
	memmove(&c->iov[0], &c->iov[i], (size_t)(c->nr_out + c->nr_in - i) * sizeof(c->iov[0]));
	c->nr_out -= (uint16_t)i;
	c->out_len -= sizeof(*h);
	return true;
}

static void use_readable(struct vq_chain *c, struct blk_parsed *p)
{
	p->data = c->iov;
	p->ndata = c->nr_out;
	p->len = c->out_len;
}

static void use_writable(struct vq_chain *c, struct blk_parsed *p)
{
	p->data = c->iov + c->nr_out;
	p->ndata = c->nr_in;
	p->len = c->in_len;
}

/* [sector, sector + len/512) must lie inside the disk. */
static bool in_range(uint64_t sector, uint64_t sectors, uint64_t capacity)
{
	return sector <= capacity && sectors <= capacity - sector;
}

static int parse_rw(struct vq_chain *c, const struct blk_limits *lim, struct blk_parsed *p)
{
	bool out = p->type == VIRTIO_BLK_T_OUT;
	if (out && lim->ro)
		return VIRTIO_BLK_S_IOERR;
	if (out)
		use_readable(c, p);
	else
		use_writable(c, p);
	if (p->len % SECTOR_SIZE || !in_range(p->sector, p->len >> SECTOR_SHIFT, lim->capacity))
		return VIRTIO_BLK_S_IOERR;
	p->offset = p->sector << SECTOR_SHIFT; /* sector <= capacity < 2^55: no overflow */
	if (!out)
		p->written = (uint32_t)p->len + 1;
	return VIRTIO_BLK_S_OK;
}

/* Copy the ranges out of guest memory once, then check the copy. */
static int parse_ranges(struct vq_chain *c, const struct blk_limits *lim, struct blk_parsed *p)
{
	bool discard = p->type == VIRTIO_BLK_T_DISCARD;
	uint32_t max_segs = discard ? VIRTIO_BLK_MAX_DISCARD_SEG : VIRTIO_BLK_MAX_WZ_SEG;
	uint32_t max_sectors = discard ? VIRTIO_BLK_MAX_DISCARD_SECTORS : VIRTIO_BLK_MAX_WZ_SECTORS;
	uint32_t allowed_flags = discard ? 0 : VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	if (lim->ro)
		return VIRTIO_BLK_S_IOERR;
	use_readable(c, p);
	if (p->len == 0 || p->len % sizeof(p->segs[0]) || p->len / sizeof(p->segs[0]) > max_segs)
		return VIRTIO_BLK_S_IOERR;
	p->nsegs = (unsigned)(p->len / sizeof(p->segs[0]));
	uint8_t *dst = (uint8_t *)p->segs;
	for (unsigned i = 0; i < p->ndata; i++) {
		memcpy(dst, p->data[i].iov_base, p->data[i].iov_len);
		dst += p->data[i].iov_len;
	}
	for (unsigned i = 0; i < p->nsegs; i++) {
		const struct virtio_blk_discard_write_zeroes *s = &p->segs[i];
		if (s->flags & ~allowed_flags) /* 5.2.6.2: unknown flags, or unmap on discard */
			return VIRTIO_BLK_S_UNSUPP;
		if (s->num_sectors > max_sectors || !in_range(s->sector, s->num_sectors, lim->capacity))
			return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

int blk_parse(struct vq_chain *c, const struct blk_limits *lim, struct blk_parsed *p)
{
	struct virtio_blk_outhdr h;
	memset(p, 0, offsetof(struct blk_parsed, segs));
	p->status = take_status(c);
	if (!p->status)
		return BLK_NO_STATUS;
	p->written = 1;
	if (!take_header(c, &h))
		return VIRTIO_BLK_S_IOERR;
	p->type = h.type;
	p->sector = h.sector;
	switch (p->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return parse_rw(c, lim, p);
	case VIRTIO_BLK_T_FLUSH:
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		use_writable(c, p);
		if (p->len > VIRTIO_BLK_ID_BYTES)
			p->len = VIRTIO_BLK_ID_BYTES;
		p->written = (uint32_t)p->len + 1;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return parse_ranges(c, lim, p);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}
