/*
 * virtio-net device: configuration, the tap on the event loop, the queue
 * notifications, reset. The frames themselves move in net_dp.c.
 *
 * The data path starts at the first queue notification after DRIVER_OK
 * (the transport kicks every ready queue then): the tap's offloads are
 * set from the features the driver accepted and the tap is polled.
 *
 * Receive back-pressure: when a frame waits for buffers the tap is no
 * longer polled and RX notifications are turned on; the driver's next
 * RX kick delivers the frame and polls the tap again. No busy loop, and
 * while buffers are plentiful the driver is not asked to kick at all.
 *
 * Transmit: a TX kick drains the ring with notifications off, one
 * writev() per frame, and tells the driver once per batch (EVENT_IDX
 * decides whether that is an interrupt).
 */
#include "net.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../log.h"
#include "net_config.h"
#include "tap.h"
#include "vhost_net.h"

#define CHUNK 32 /* frames between used-ring publications */

static const struct virtio_device_ops net_ops;

static void tap_poll(struct virtio_net *n, bool on)
{
	if (!n->tap_on_loop || n->tap_polled == on)
		return;
	if (loop_mod(&n->vdev.vm->loop, n->tap_fd, on ? EPOLLIN : 0) == 0)
		n->tap_polled = on;
}

static void tap_gone(struct virtio_net *n)
{
	if (n->tap_dead)
		return;
	vmm_warn("%s (%s): the tap went away; the link is down", n->vdev.name,
		 n->st.settings.ifname);
	n->tap_dead = true;
	if (n->tap_on_loop)
		loop_del(&n->vdev.vm->loop, n->tap_fd);
	n->tap_on_loop = false;
	n->tap_polled = false;
	n->st.config.status = 0;
	virtio_dev_config_changed(&n->vdev);
}

/* ---- the data path, on the loop thread with the lock held ---- */

/* Make what was pushed visible now: the driver may reuse those buffers
 * while the batch goes on. Interrupts are decided at the batch's end. */
static void publish(struct virtio_net *n, unsigned q)
{
	if (vq_publish(&n->vdev.vq[q]))
		n->unsignalled[q] = true;
}

/* End of a batch: publish the rest and interrupt once, if the driver
 * asks for it (EVENT_IDX's used_event, else VRING_AVAIL_F_NO_INTERRUPT). */
static void signal_used(struct virtio_net *n, unsigned q)
{
	struct virtqueue *vq = &n->vdev.vq[q];
	if (!vq_enabled(vq))
		return;
	publish(n, q);
	if (!n->unsignalled[q])
		return;
	n->unsignalled[q] = false;
	if (vq_need_interrupt(vq))
		virtio_dev_interrupt(&n->vdev);
}

static void rx_run(struct virtio_net *n)
{
	struct virtio_dev *d = &n->vdev;
	if (n->tap_dead || !virtio_dev_queue_live(d, VIRTIO_NET_RXQ)) {
		tap_poll(n, false);
		return;
	}
	struct virtqueue *vq = &d->vq[VIRTIO_NET_RXQ];
	vq_disable_notify(vq);
	bool poll = true;
	for (unsigned done = 0; done < VIRTIO_NET_RX_BUDGET; done += CHUNK) {
		enum net_rx_result r = net_rx_fill(n, CHUNK);
		publish(n, VIRTIO_NET_RXQ);
		if (r == NET_RX_BUDGET)
			continue;
		if (r == NET_RX_NO_BUFFERS) {
			/* Ask for a kick, then look once more: buffers added
			 * before the driver saw the request get no kick. */
			if (vq_enable_notify(vq)) {
				vq_disable_notify(vq);
				continue;
			}
			n->ctr.rx_stalls++;
			poll = false;
		} else if (r == NET_RX_BROKEN) {
			poll = false;
			virtio_dev_needs_reset(d, "receive ring corrupt");
		} else if (r == NET_RX_TAP_ERROR) {
			tap_gone(n);
			poll = false;
		}
		break;
	}
	/* Budget spent: the level-triggered tap brings us back after the
	 * rest of the loop had its turn. */
	tap_poll(n, poll);
	signal_used(n, VIRTIO_NET_RXQ);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* The ring ran dry while frames were flowing: watch it a little longer
 * before asking the driver for a kick, which costs it a VM exit. */
static bool tx_poll(struct virtqueue *vq)
{
	uint64_t end = now_ns() + VIRTIO_NET_TX_POLL_NS;
	for (unsigned i = 1;; i++) {
		if (vq_has_avail(vq))
			return true;
		cpu_relax();
		if (!(i & 63) && now_ns() > end)
			return false;
	}
}

static void tx_run(struct virtio_net *n)
{
	struct virtio_dev *d = &n->vdev;
	struct virtqueue *vq = &d->vq[VIRTIO_NET_TXQ];
	unsigned total = 0;
	for (;;) {
		vq_disable_notify(vq);
		bool broken = false;
		unsigned k;
		do {
			k = net_tx_drain(n, CHUNK, &broken);
			total += k;
			publish(n, VIRTIO_NET_TXQ);
		} while (k == CHUNK && !broken && total < VIRTIO_NET_TX_BUDGET);
		if (broken) {
			virtio_dev_needs_reset(d, "transmit ring corrupt");
			break;
		}
		if (total >= VIRTIO_NET_TX_BUDGET) {
			virtio_dev_kick(d, VIRTIO_NET_TXQ); /* notifications stay off */
			break;
		}
		if (total && tx_poll(vq))
			continue;
		if (!vq_enable_notify(vq))
			break;
	}
	signal_used(n, VIRTIO_NET_TXQ); /* one interrupt per batch */
}

/* First notification after DRIVER_OK: set the tap up for what the driver
 * accepted and start the data path (ours, or vhost-net's). */
static void activate(struct virtio_net *n)
{
	struct virtio_dev *d = &n->vdev;
	n->st.active = 1;
	n->st.offloads = net_offloads_for(d->st->driver_features);
	if (n->is_tap) {
		int rc = tap_set_offload(n->tap_fd, n->st.offloads);
		if (rc < 0) {
			vmm_warn_ratelimited(&n->rl, "%s: TUNSETOFFLOAD 0x%x: %s", d->name,
					     n->st.offloads, strerror(-rc));
			n->st.offloads = 0;
		}
	}
	if (n->vhost) {
		char why[160];
		if (vhost_net_start(n->vhost, d, n->tap_fd, why, sizeof(why)) == 0) {
			n->st.settings.vhost = 1;
			return;
		}
		vmm_warn("%s: vhost-net did not start (%s); using the userspace data path",
			 d->name, why);
		vhost_net_close(n->vhost, d);
		n->vhost = NULL;
	}
	tap_poll(n, true);
}

static void net_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_net *n = d->opaque;
	if (!n->st.active)
		activate(n);
	if (n->st.settings.vhost)
		return; /* vhost-net owns the rings */
	if (q == VIRTIO_NET_RXQ)
		rx_run(n);
	else if (q == VIRTIO_NET_TXQ)
		tx_run(n);
}

static void on_tap(void *opaque, uint32_t events)
{
	struct virtio_net *n = opaque;
	pthread_mutex_lock(&n->vdev.lock);
	if (events & (EPOLLERR | EPOLLHUP)) /* a tap says EPOLLERR once detached */
		tap_gone(n);
	else if (n->st.active && !n->st.settings.vhost)
		rx_run(n);
	else
		tap_poll(n, false);
	pthread_mutex_unlock(&n->vdev.lock);
}

static bool net_reset(struct virtio_dev *d)
{
	struct virtio_net *n = d->opaque;
	if (n->st.settings.vhost)
		vhost_net_stop(n->vhost, d);
	n->st.settings.vhost = 0;
	n->st.active = 0;
	n->unsignalled[0] = n->unsignalled[1] = false;
	tap_poll(n, false);
	net_rx_discard(n);
	if (n->is_tap && n->st.offloads)
		tap_set_offload(n->tap_fd, 0);
	n->st.offloads = 0;
	return true; /* nothing in flight: every frame is handled synchronously */
}

static void net_destroy_dev(struct virtio_dev *d)
{
	virtio_net_destroy(d->opaque);
}

static const struct virtio_device_ops net_ops = {
	.name = "virtio-net",
	.device_id = VIRTIO_ID_NET,
	.num_queues = 2,
	.queue_max = VIRTIO_NET_QUEUE_SIZE,
	.queue_notify = net_queue_notify,
	.reset = net_reset,
	.destroy = net_destroy_dev,
};

/* ---- creation ---- */

static void random_mac(uint8_t mac[6])
{
	if (getrandom(mac, 6, GRND_NONBLOCK) != 6) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t x = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid();
		memcpy(mac, &x, 6);
	}
	mac[0] = (uint8_t)((mac[0] & 0xfe) | 0x02); /* unicast, locally administered */
}

static void fill_state(struct virtio_net *n, const struct net_config *cfg, const char *ifname)
{
	struct virtio_net_state *st = &n->st;
	if (cfg->mac_set)
		memcpy(st->config.mac, cfg->mac, 6);
	else
		random_mac(st->config.mac);
	st->config.status = htole16(VIRTIO_NET_S_LINK_UP);
	st->config.max_virtqueue_pairs = htole16(1);
	snprintf(st->settings.ifname, sizeof(st->settings.ifname), "%s", ifname);
	snprintf(st->settings.id, sizeof(st->settings.id), "%s", cfg->id);
	st->transport.device_features = VIRTIO_TRANSPORT_FEATURES | VIRTIO_NET_DEVICE_FEATURES;
}

static void label(const struct net_config *cfg, char *buf, size_t size)
{
	if (cfg->tap[0])
		snprintf(buf, size, "--net tap=%s", cfg->tap);
	else
		snprintf(buf, size, "--net fd=%d", cfg->fd);
}

/* vhost-net as cfg->vhost asks: 0, or an exit status (message printed). */
static int open_vhost(struct virtio_net *n, struct vm *vm, const struct net_config *cfg,
		      const char *what)
{
	if (cfg->vhost == NET_VHOST_OFF || !n->is_tap)
		return 0;
	char why[160];
	n->vhost = vhost_net_open(&vm->mem, why, sizeof(why));
	if (n->vhost) {
		n->st.transport.device_features =
			vhost_net_mask_features(n->st.transport.device_features,
						vhost_net_features(n->vhost));
		return 0;
	}
	if (cfg->vhost == NET_VHOST_ON) {
		vmm_err("%s,vhost=on: %s", what, why);
		return VMM_EXIT_RESOURCE;
	}
	vmm_warn("%s: vhost-net unavailable (%s); using the userspace data path", what, why);
	return 0;
}

static int setup(struct virtio_net *n, struct vm *vm, const struct net_config *cfg,
		 unsigned slot)
{
	char what[48];
	label(cfg, what, sizeof(what));
	char ifname[IFNAMSIZ] = "";
	if (n->is_tap) {
		struct ifreq ifr;
		memset(&ifr, 0, sizeof(ifr));
		if (ioctl(n->tap_fd, TUNGETIFF, &ifr) == 0)
			memcpy(ifname, ifr.ifr_name, IFNAMSIZ - 1);
	} else {
		snprintf(ifname, sizeof(ifname), "socket");
	}
	fill_state(n, cfg, ifname);
	n->rx_buf = malloc(VIRTIO_NET_RX_BUF);
	if (!n->rx_buf) {
		vmm_err("%s: out of memory", what);
		return VMM_EXIT_RESOURCE;
	}
	int rc = open_vhost(n, vm, cfg, what);
	if (rc)
		return rc;
	if (virtio_mmio_init(&n->vdev, vm, &net_ops, n, &n->st.transport, &n->st.config,
			     sizeof(n->st.config), slot) < 0)
		return VMM_EXIT_RESOURCE;
	if (loop_add(&vm->loop, n->tap_fd, 0, on_tap, n) < 0)
		return VMM_EXIT_RESOURCE;
	n->tap_on_loop = true;
	return 0;
}

struct virtio_net *virtio_net_create_fd(struct vm *vm, const struct net_config *cfg,
					unsigned slot, int fd, bool is_tap, int *status)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	if (!n) {
		vmm_err("virtio-net: out of memory");
		close(fd);
		*status = VMM_EXIT_RESOURCE;
		return NULL;
	}
	n->tap_fd = fd;
	n->is_tap = is_tap;
	*status = setup(n, vm, cfg, slot);
	if (*status) {
		virtio_net_destroy(n);
		return NULL;
	}
	return n;
}

struct virtio_net *virtio_net_create(struct vm *vm, const struct net_config *cfg, unsigned slot,
				     int *status)
{
	char what[48], ifname[IFNAMSIZ];
	label(cfg, what, sizeof(what));
	int fd = cfg->fd;
	*status = cfg->tap[0] ? tap_open(cfg->tap, what, &fd) : tap_adopt(fd, what, ifname);
	if (*status)
		return NULL;
	return virtio_net_create_fd(vm, cfg, slot, fd, true, status);
}

void virtio_net_destroy(struct virtio_net *n)
{
	if (n->tap_on_loop)
		loop_del(&n->vdev.vm->loop, n->tap_fd);
	if (n->vhost)
		vhost_net_close(n->vhost, &n->vdev);
	if (n->vdev.ops)
		virtio_mmio_destroy(&n->vdev);
	if (n->tap_fd >= 0)
		close(n->tap_fd);
	free(n->rx_buf);
	free(n);
}

void virtio_net_get_counters(struct virtio_net *n, struct virtio_net_counters *out)
{
	pthread_mutex_lock(&n->vdev.lock);
	*out = n->ctr;
	pthread_mutex_unlock(&n->vdev.lock);
}

struct virtio_net *virtio_net_find(struct vm *vm, const char *id)
{
	for (unsigned i = 0; i < vm->nvirtio; i++) {
		struct virtio_dev *d = vm->virtio[i];
		if (d && d->ops == &net_ops) {
			struct virtio_net *n = d->opaque;
			if (strcmp(n->st.settings.id, id) == 0)
				return n;
		}
	}
	return NULL;
}

static int net_create_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->cfg->nnets; i++) {
		int slot = virtio_next_slot(vm, "virtio-net"), rc;
		if (slot < 0)
			return VMM_EXIT_RESOURCE;
		struct virtio_net *n = virtio_net_create(vm, &vm->cfg->nets[i], (unsigned)slot, &rc);
		if (!n)
			return rc;
		if ((rc = virtio_add_device(vm, &n->vdev)))
			return rc;
	}
	return 0;
}

const struct virtio_device_kind virtio_net_kind = {
	.name = "virtio-net",
	.create_all = net_create_all,
};
