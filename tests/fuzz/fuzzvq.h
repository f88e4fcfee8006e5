/*
 * Shared by the virtio fuzz targets: guest RAM filled from the input, and
 * queues laid out where the input says, so every target reads the same
 * header fields the same way (and the seed generators can share a layout).
 */
#ifndef VMM_TESTS_FUZZVQ_H
#define VMM_TESTS_FUZZVQ_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "virtio/virtqueue.h"

#define FZ_RAM (64 * 1024)

static inline uint16_t fz_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/*
 * Guest RAM of FZ_RAM bytes: the len bytes at data, zero-filled past them.
 * On the heap, so ASan sees any access outside it; page-aligned, so pages
 * a device gives back (MADV_DONTNEED) stay inside it. Free mem->host.
 */
static inline bool fz_ram(struct guest_mem *mem, const uint8_t *data, size_t len)
{
	uint8_t *ram = aligned_alloc(4096, FZ_RAM);
	if (!ram)
		return false;
	memset(ram, 0, FZ_RAM);
	memcpy(ram, data, len < FZ_RAM ? len : FZ_RAM);
	*mem = (struct guest_mem){.memfd = -1,
				  .host = ram,
				  .size = FZ_RAM,
				  .low_size = FZ_RAM,
				  .page_size = 4096,
				  .map_size = FZ_RAM};
	return true;
}

/*
 * Enable vq on the layout in the 7 bytes at h: [0] log2 of the size (mod 9:
 * 1..256 entries), [1..2] descriptor table / 16, [3..4] avail ring / 2,
 * [5..6] used ring / 4 (little-endian; the rings may overlap anything).
 * Returns vq_enable()'s result.
 */
static inline int fz_queue(struct virtqueue *vq, struct vq_state *st, const struct guest_mem *mem,
			   const uint8_t *h, bool event_idx, bool indirect)
{
	*st = (struct vq_state){
	    .size = (uint16_t)(1u << (h[0] % 9)),
	    .desc_addr = 16ULL * fz_le16(h + 1),
	    .avail_addr = 2ULL * fz_le16(h + 3),
	    .used_addr = 4ULL * fz_le16(h + 5),
	    .ready = 1,
	};
	const char *why;
	return vq_enable(vq, st, mem, VQ_MAX_SIZE, event_idx, indirect, "fuzz", &why);
}

#endif
