/*
 * virtio-balloon statistics (virtio 1.2, 5.5.6.3): the driver's buffer of
 * packed (u16 tag, u64 value) entries, little-endian, and the names the
 * API gives each tag (Firecracker's BalloonStats fields).
 */
#include <endian.h>
#include <string.h>

#include "balloon.h"

const char *balloon_stat_name(unsigned tag)
{
	static const char *const names[BALLOON_STAT_TAGS] = {
	    [VIRTIO_BALLOON_S_SWAP_IN] = "swap_in",
	    [VIRTIO_BALLOON_S_SWAP_OUT] = "swap_out",
	    [VIRTIO_BALLOON_S_MAJFLT] = "major_faults",
	    [VIRTIO_BALLOON_S_MINFLT] = "minor_faults",
	    [VIRTIO_BALLOON_S_MEMFREE] = "free_memory",
	    [VIRTIO_BALLOON_S_MEMTOT] = "total_memory",
	    [VIRTIO_BALLOON_S_AVAIL] = "available_memory",
	    [VIRTIO_BALLOON_S_CACHES] = "disk_caches",
	    [VIRTIO_BALLOON_S_HTLB_PGALLOC] = "hugetlb_allocations",
	    [VIRTIO_BALLOON_S_HTLB_PGFAIL] = "hugetlb_failures",
	    /* Tags 10..15, from newer Linux uapi headers than this one. */
	    [10] = "oom_kill",
	    [11] = "alloc_stall",
	    [12] = "async_scan",
	    [13] = "direct_scan",
	    [14] = "async_reclaim",
	    [15] = "direct_reclaim",
	};
	return tag < BALLOON_STAT_TAGS ? names[tag] : NULL;
}

int balloon_stats_parse(const struct vq_chain *c, struct virtio_balloon_guest_stats *s)
{
	if (c->nr_in || c->out_len % BALLOON_STAT_LEN ||
	    c->out_len / BALLOON_STAT_LEN > BALLOON_STATS_MAX_ENTRIES)
		return -1;
	struct virtio_balloon_guest_stats next = {.updates = s->updates + 1};
	struct balloon_cursor k;
	uint8_t e[BALLOON_STAT_LEN];
	int n = 0;
	balloon_cursor_init(&k, c);
	for (; balloon_cursor_take(&k, e, sizeof(e)); n++) {
		uint16_t tag;
		uint64_t val;
		memcpy(&tag, e, sizeof(tag));
		memcpy(&val, e + sizeof(tag), sizeof(val));
		tag = le16toh(tag);
		if (tag >= BALLOON_STAT_TAGS)
			continue; /* a tag newer than us: not an error */
		next.val[tag] = le64toh(val);
		next.valid |= 1U << tag;
	}
	*s = next;
	return n;
}
