#include "bus.h"

#include <string.h>

#include "log.h"

void bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
}

static bool overlaps(const struct bus_range *r, uint64_t base, uint64_t len)
{
	return base < r->base + r->len && r->base < base + len;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_io_fn fn, void *dev,
		 const char *name)
{
	if (len == 0 || base + len < base) {
		vmm_err("%s: bad range for %s", b->name, name);
		return -1;
	}
	if (b->count == BUS_MAX_RANGES) {
		vmm_err("%s: too many devices (adding %s)", b->name, name);
		return -1;
	}
	unsigned i = 0;
	for (; i < b->count; i++) {
		if (overlaps(&b->ranges[i], base, len)) {
			vmm_err("%s: %s at 0x%llx overlaps %s", b->name, name,
				(unsigned long long)base, b->ranges[i].name);
			return -1;
		}
		if (b->ranges[i].base > base)
			break;
	}
	memmove(&b->ranges[i + 1], &b->ranges[i], (b->count - i) * sizeof(b->ranges[0]));
	b->ranges[i] = (struct bus_range){ base, len, fn, dev, name };
	b->count++;
	return 0;
}

static const struct bus_range *find(const struct bus *b, uint64_t addr)
{
	unsigned lo = 0, hi = b->count;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &b->ranges[mid];
		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

bool bus_access(const struct bus *b, uint64_t addr, uint8_t *data, uint32_t len,
		bool is_write)
{
	const struct bus_range *r = find(b, addr);
	/* The whole access must sit inside one device's range. */
	if (!r || len > r->len - (addr - r->base)) {
		if (!is_write)
			memset(data, 0xff, len);
		return false;
	}
	r->fn(r->dev, addr - r->base, data, len, is_write);
	return true;
}
