/*
 * Saving and restoring a virtio device's state, for snapshots and
 * migration. A device's state is its plain state struct (struct
 * virtio_blk_state, ...): the transport registers and queues, the config
 * space, the backend settings. A restore loads it into a device built
 * anew from the same configuration (same image, same tap), re-enables
 * the queues the driver had set up, and kicks them once, so requests the
 * driver queued before the save are served.
 *
 * Every function runs on the event loop thread with the vCPUs paused.
 */
#ifndef VMM_VIRTIO_STATE_H
#define VMM_VIRTIO_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct virtio_dev;

/* Bytes of d's saved state (its state struct), or 0 if this kind of
 * device cannot be saved yet. */
size_t virtio_state_size(const struct virtio_dev *d);
/* Copy d's state into buf (virtio_state_size() bytes). A virtio-net device
 * first gives back receive buffers it holds (used, length 0) and drops a
 * frame it read ahead: the state then owes the driver nothing. Returns 0,
 * or -1 with why. */
int virtio_state_save(struct virtio_dev *d, void *buf, size_t len, char *why, size_t n);
/* Can `buf` be loaded into d (same kind, features, queue limits, disk
 * size)? 0, or -1 with why. Changes nothing. */
int virtio_state_check(const struct virtio_dev *d, const void *buf, size_t len, char *why,
		       size_t n);
/* Load a state virtio_state_check() accepted. 0, or -1 with why (a queue's
 * rings are not in RAM). */
int virtio_state_restore(struct virtio_dev *d, const void *buf, size_t len, char *why, size_t n);

/* Wait (at most timeout_ms) until no device has I/O in flight, so the state
 * saved next is whole. 0, or -1 with why. */
int virtio_state_quiesce(struct vm *vm, unsigned timeout_ms, char *why, size_t n);

/* Call fn for every ring (descriptor table, driver area, device area) of
 * every enabled queue: memory the devices write through pointers set up
 * once, which guest_mem's tracking of the VMM's accesses does not see. */
void virtio_state_rings(struct vm *vm, void (*fn)(void *opaque, uint64_t gpa, uint64_t len),
			void *opaque);

#endif
