/* The test guest's polling virtio-mmio driver; see virtio.h. */
#include "virtio.h"

/* ---- memory ---- */

static uint64_t pool_next, pool_end;

static void pool_init(void)
{
	uint64_t img_end = (uint64_t)(uintptr_t)_end;
	for (unsigned i = 0; i < boot.nmem; i++) {
		const struct mem_range *r = &boot.mem[i];
		if (r->type == E820_RAM && r->start <= img_end && img_end < r->end) {
			pool_next = (img_end + 0xffff) & ~0xffffULL;
			pool_end = r->end < mapped_limit ? r->end : mapped_limit;
			return;
		}
	}
	pool_next = pool_end = 1; /* no RAM found: every galloc fails */
}

void *galloc(uint64_t size, uint64_t align)
{
	if (!pool_next)
		pool_init();
	uint64_t a = (pool_next + align - 1) & ~(align - 1);
	if (a + size < a || a + size > pool_end)
		return NULL;
	pool_next = a + size;
	void *p = phys(a);
	memset(p, 0, size);
	return p;
}

/* ---- discovery: "virtio_mmio.device=<size>[KMG]@<addr>:<irq>[:<id>]" ---- */

static bool parse_device(const char *s, struct vdev *d)
{
	uint64_t size, addr, irq;
	if (!(s = parse_u64_prefix(s, &size)))
		return false;
	if (*s == 'K' || *s == 'k' || *s == 'M' || *s == 'm' || *s == 'G' || *s == 'g')
		s++;
	if (*s++ != '@')
		return false;
	if (!(s = parse_u64_prefix(s, &addr)) || *s++ != ':')
		return false;
	if (!parse_u64_prefix(s, &irq))
		return false;
	if (!addr || addr >= (4ULL << 30))
		return false;
	d->base = addr;
	d->irq = (unsigned)irq;
	return true;
}

bool virtio_find(uint32_t device_id, unsigned index, struct vdev *d)
{
	static const char key[] = "virtio_mmio.device=";
	const char *p = boot.cmdline;
	while (*p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, sizeof(key) - 1) && parse_device(p + sizeof(key) - 1, d) &&
		    vread(d, VMMIO_MAGIC) == 0x74726976 &&
		    vread(d, VMMIO_DEVICE_ID) == device_id) {
			d->device_id = device_id;
			if (index-- == 0)
				return true;
		}
		while (*p && *p != ' ')
			p++;
	}
	return false;
}

/* ---- initialisation (virtio 1.2, 3.1.1) ---- */

bool virtio_init(struct vdev *d, uint64_t want, char *why, size_t n)
{
	if (vread(d, VMMIO_VERSION) != 2) {
		snformat(why, n, "virtio-mmio version %u (need 2)", vread(d, VMMIO_VERSION));
		return false;
	}
	vwrite(d, VMMIO_STATUS, 0);
	for (unsigned i = 0; vread(d, VMMIO_STATUS) != 0; i++)
		if (i > 1000000) {
			snformat(why, n, "device does not finish its reset");
			return false;
		}
	vwrite(d, VMMIO_STATUS, VSTATUS_ACK);
	vwrite(d, VMMIO_STATUS, VSTATUS_ACK | VSTATUS_DRIVER);
	vwrite(d, VMMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t offered = vread(d, VMMIO_DEVICE_FEATURES);
	vwrite(d, VMMIO_DEVICE_FEATURES_SEL, 1);
	offered |= (uint64_t)vread(d, VMMIO_DEVICE_FEATURES) << 32;
	uint64_t f = offered & want;
	if (!(f & VF_VERSION_1)) {
		snformat(why, n, "device does not offer VERSION_1 (0x%llx)",
			 (unsigned long long)offered);
		return false;
	}
	vwrite(d, VMMIO_DRIVER_FEATURES_SEL, 0);
	vwrite(d, VMMIO_DRIVER_FEATURES, (uint32_t)f);
	vwrite(d, VMMIO_DRIVER_FEATURES_SEL, 1);
	vwrite(d, VMMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
	vwrite(d, VMMIO_STATUS, VSTATUS_ACK | VSTATUS_DRIVER | VSTATUS_FEATURES_OK);
	if (!(vread(d, VMMIO_STATUS) & VSTATUS_FEATURES_OK)) {
		snformat(why, n, "device refused features 0x%llx", (unsigned long long)f);
		return false;
	}
	d->features = f;
	return true;
}

bool vq_setup(struct vdev *d, struct gvq *q, unsigned index, uint16_t max_size, char *why,
	      size_t n)
{
	vwrite(d, VMMIO_QUEUE_SEL, index);
	uint32_t max = vread(d, VMMIO_QUEUE_NUM_MAX);
	if (max == 0 || vread(d, VMMIO_QUEUE_READY)) {
		snformat(why, n, "queue %u unavailable (max %u)", index, max);
		return false;
	}
	uint16_t size = 1;
	while (size * 2u <= max && size * 2u <= max_size)
		size = (uint16_t)(size * 2);
	memset(q, 0, sizeof(*q));
	q->dev = d;
	q->index = index;
	q->size = size;
	q->event_idx = d->features & VF_EVENT_IDX;
	q->desc = galloc(16ULL * size, 4096);
	q->avail = galloc(6 + 2ULL * size, 4096);
	q->used = galloc(6 + 8ULL * size, 4096);
	if (!q->desc || !q->avail || !q->used) {
		snformat(why, n, "out of guest memory for queue %u", index);
		return false;
	}
	if (!q->event_idx)
		q->avail[0] = VAVAIL_NO_INTERRUPT; /* we poll */
	else
		q->avail[2 + size] = 0xffff; /* used_event just behind used idx 0 */
	uint64_t da = (uint64_t)(uintptr_t)q->desc, aa = (uint64_t)(uintptr_t)q->avail,
		 ua = (uint64_t)(uintptr_t)q->used;
	vwrite(d, VMMIO_QUEUE_NUM, size);
	vwrite(d, VMMIO_QUEUE_DESC_LOW, (uint32_t)da);
	vwrite(d, VMMIO_QUEUE_DESC_HIGH, (uint32_t)(da >> 32));
	vwrite(d, VMMIO_QUEUE_AVAIL_LOW, (uint32_t)aa);
	vwrite(d, VMMIO_QUEUE_AVAIL_HIGH, (uint32_t)(aa >> 32));
	vwrite(d, VMMIO_QUEUE_USED_LOW, (uint32_t)ua);
	vwrite(d, VMMIO_QUEUE_USED_HIGH, (uint32_t)(ua >> 32));
	vwrite(d, VMMIO_QUEUE_READY, 1);
	return true;
}

void virtio_driver_ok(struct vdev *d)
{
	vwrite(d, VMMIO_STATUS,
	       VSTATUS_ACK | VSTATUS_DRIVER | VSTATUS_FEATURES_OK | VSTATUS_DRIVER_OK);
}

/* ---- rings ---- */

static inline void mfence(void)
{
	__asm__ volatile("mfence" : : : "memory");
}

void vq_add(struct gvq *q, uint16_t head)
{
	q->avail[2 + (q->avail_idx & (q->size - 1))] = head;
	q->avail_idx++;
}

void vq_kick(struct gvq *q)
{
	uint16_t now = q->avail_idx, old = q->kicked_idx;
	barrier(); /* ring entries and descriptors before the index (x86: in order) */
	q->avail[1] = now;
	/* The index store must be visible before we read avail_event/flags,
	 * or the device could stop looking without us kicking it. */
	mfence();
	bool need;
	if (q->event_idx) {
		uint16_t ev = *(volatile uint16_t *)(q->used + 4 + 8ULL * q->size);
		need = (uint16_t)(now - ev - 1) < (uint16_t)(now - old);
	} else {
		need = !(*(volatile uint16_t *)q->used & VUSED_NO_NOTIFY) && now != old;
	}
	q->kicked_idx = now;
	if (need) {
		vwrite(q->dev, VMMIO_QUEUE_NOTIFY, q->index);
		q->kicks++;
	}
}

int vq_used(struct gvq *q, uint32_t *len)
{
	uint16_t idx = *(volatile uint16_t *)(q->used + 2);
	if (idx == q->last_used)
		return -1;
	barrier(); /* entry after index (x86 keeps loads in order) */
	volatile uint32_t *e = (volatile uint32_t *)(q->used + 4 + 8ULL * (q->last_used & (q->size - 1)));
	int id = (int)e[0];
	*len = e[1];
	q->last_used++;
	if (q->event_idx)
		q->avail[2 + q->size] = (uint16_t)(q->last_used - 1); /* stay behind: no interrupts */
	return id;
}
