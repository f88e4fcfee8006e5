/* vhost-net offload; see vhost_net.h (UNVERIFIED on a real /dev/vhost-net). */
#include "vhost_net.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../log.h"
#include "mmio.h"

struct vhost_net {
	int fd;
	uint64_t features; /* VHOST_GET_FEATURES */
	int started;
};

/* ---- pure helpers ---- */

unsigned vhost_mem_regions(const struct guest_mem *mem, struct vhost_memory_region *r,
			   unsigned max)
{
	unsigned n = 0;
	if (mem->low_size && n < max)
		r[n++] = (struct vhost_memory_region){
			.guest_phys_addr = 0,
			.memory_size = mem->low_size,
			.userspace_addr = (uint64_t)(uintptr_t)mem->host,
		};
	if (mem->high_size && n < max)
		r[n++] = (struct vhost_memory_region){
			.guest_phys_addr = MMIO_HOLE_END,
			.memory_size = mem->high_size,
			.userspace_addr = (uint64_t)(uintptr_t)(mem->host + mem->low_size),
		};
	return n;
}

int vhost_vring_addr(const struct guest_mem *mem, unsigned index, const struct vq_state *q,
		     struct vhost_vring_addr *out)
{
	void *desc = guest_ptr(mem, q->desc_addr, vq_desc_bytes(q->size));
	void *avail = guest_ptr(mem, q->avail_addr, vq_avail_bytes(q->size));
	void *used = guest_ptr(mem, q->used_addr, vq_used_bytes(q->size));
	if (!q->size || !desc || !avail || !used)
		return -1;
	*out = (struct vhost_vring_addr){
		.index = index,
		.flags = 0, /* no dirty logging */
		.desc_user_addr = (uint64_t)(uintptr_t)desc,
		.used_user_addr = (uint64_t)(uintptr_t)used,
		.avail_user_addr = (uint64_t)(uintptr_t)avail,
		.log_guest_addr = 0,
	};
	return 0;
}

uint64_t vhost_net_mask_features(uint64_t offered, uint64_t vhost_features)
{
	return offered & ~(VHOST_NET_RING_FEATURES & ~vhost_features);
}

uint64_t vhost_net_acked(uint64_t driver_features, uint64_t vhost_features)
{
	/* Only ring features: the tap does the offloads, and without
	 * VHOST_NET_F_VIRTIO_NET_HDR the tap (vnet header size 12) keeps
	 * the header. */
	return driver_features & vhost_features & VHOST_NET_RING_FEATURES;
}

/* ---- the device ---- */

static int set_mem_table(int fd, const struct guest_mem *mem)
{
	_Alignas(struct vhost_memory) uint8_t buf[sizeof(struct vhost_memory) +
						  VHOST_MAX_REGIONS * sizeof(struct vhost_memory_region)];
	memset(buf, 0, sizeof(buf));
	struct vhost_memory *m = (struct vhost_memory *)buf;
	m->nregions = vhost_mem_regions(mem, m->regions, VHOST_MAX_REGIONS);
	return ioctl(fd, VHOST_SET_MEM_TABLE, m);
}

struct vhost_net *vhost_net_open(const struct guest_mem *mem, char *why, size_t why_size)
{
	const char *path = getenv("VMM_VHOST_NET_DEVICE");
	if (!path || !*path)
		path = VHOST_NET_DEVICE;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_size, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	uint64_t features = 0;
	const char *step = NULL;
	if (ioctl(fd, VHOST_SET_OWNER) < 0)
		step = "VHOST_SET_OWNER";
	else if (ioctl(fd, VHOST_GET_FEATURES, &features) < 0)
		step = "VHOST_GET_FEATURES";
	else if (set_mem_table(fd, mem) < 0)
		step = "VHOST_SET_MEM_TABLE";
	if (step) {
		snprintf(why, why_size, "%s: %s: %s", path, step, strerror(errno));
		close(fd);
		return NULL;
	}
	if (!(features & (1ULL << 32))) {
		snprintf(why, why_size, "%s does not support VIRTIO_F_VERSION_1", path);
		close(fd);
		return NULL;
	}
	struct vhost_net *v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(why, why_size, "out of memory");
		close(fd);
		return NULL;
	}
	v->fd = fd;
	v->features = features;
	return v;
}

uint64_t vhost_net_features(const struct vhost_net *v)
{
	return v->features;
}

static void set_backend(struct vhost_net *v, unsigned q, int fd)
{
	struct vhost_vring_file f = { .index = q, .fd = fd };
	if (ioctl(v->fd, VHOST_NET_SET_BACKEND, &f) < 0 && fd >= 0)
		vmm_warn("vhost-net: VHOST_NET_SET_BACKEND(%u, %d): %s", q, fd, strerror(errno));
}

/* Program one vring; the failing step, or NULL. */
static const char *setup_vring(struct vhost_net *v, struct virtio_dev *d, unsigned q)
{
	const struct vq_state *qs = &d->st->queues[q];
	struct vhost_vring_state num = { .index = q, .num = qs->size };
	struct vhost_vring_state base = { .index = q, .num = qs->last_avail };
	struct vhost_vring_addr addr;
	struct vhost_vring_file kick = { .index = q, .fd = d->notify_fd[q] };
	struct vhost_vring_file call = { .index = q, .fd = d->irq_fd };
	if (vhost_vring_addr(d->mem, q, qs, &addr) < 0) {
		errno = EINVAL;
		return "vring outside guest RAM";
	}
	if (ioctl(v->fd, VHOST_SET_VRING_NUM, &num) < 0)
		return "VHOST_SET_VRING_NUM";
	if (ioctl(v->fd, VHOST_SET_VRING_BASE, &base) < 0)
		return "VHOST_SET_VRING_BASE";
	if (ioctl(v->fd, VHOST_SET_VRING_ADDR, &addr) < 0)
		return "VHOST_SET_VRING_ADDR";
	if (ioctl(v->fd, VHOST_SET_VRING_KICK, &kick) < 0)
		return "VHOST_SET_VRING_KICK";
	if (ioctl(v->fd, VHOST_SET_VRING_CALL, &call) < 0)
		return "VHOST_SET_VRING_CALL";
	return NULL;
}

int vhost_net_start(struct vhost_net *v, struct virtio_dev *d, int tap_fd, char *why,
		    size_t why_size)
{
	uint64_t acked = vhost_net_acked(d->st->driver_features, v->features);
	const char *step = NULL;
	if (ioctl(v->fd, VHOST_SET_FEATURES, &acked) < 0)
		step = "VHOST_SET_FEATURES";
	for (unsigned q = 0; q < 2 && !step; q++)
		step = setup_vring(v, d, q);
	if (step) {
		snprintf(why, why_size, "%s: %s", step, strerror(errno));
		return -1;
	}
	/* From here the kernel reads the kicks and raises the interrupts. */
	virtio_mmio_set_external(d, true);
	for (unsigned q = 0; q < 2; q++) {
		struct vhost_vring_file b = { .index = q, .fd = tap_fd };
		if (ioctl(v->fd, VHOST_NET_SET_BACKEND, &b) < 0) {
			snprintf(why, why_size, "VHOST_NET_SET_BACKEND: %s", strerror(errno));
			for (unsigned i = 0; i < q; i++)
				set_backend(v, i, -1);
			virtio_mmio_set_external(d, false);
			return -1;
		}
	}
	v->started = 1;
	/* Buffers queued before now may have been kicked to us: look again. */
	for (unsigned q = 0; q < 2; q++)
		virtio_dev_kick(d, q);
	return 0;
}

void vhost_net_stop(struct vhost_net *v, struct virtio_dev *d)
{
	if (!v || !v->started)
		return;
	for (unsigned q = 0; q < 2; q++) {
		set_backend(v, q, -1);
		struct vhost_vring_state base = { .index = q };
		struct vq_state *qs = &d->st->queues[q];
		if (ioctl(v->fd, VHOST_GET_VRING_BASE, &base) == 0)
			qs->last_avail = (uint16_t)base.num;
		/* vhost wrote the used ring itself: take its index back. */
		const struct vring_used *u = guest_ptr(d->mem, qs->used_addr, 4);
		if (u)
			qs->used_idx = qs->published =
				__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
	}
	virtio_mmio_set_external(d, false);
	v->started = 0;
}

void vhost_net_close(struct vhost_net *v, struct virtio_dev *d)
{
	if (!v)
		return;
	vhost_net_stop(v, d);
	close(v->fd);
	free(v);
}
