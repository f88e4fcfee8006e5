/*
 * The VM's virtio devices. Each device kind (virtio-blk, ...) lists itself
 * once in registry.c and creates its own instances from the VM
 * configuration; the transport knows nothing about any of them.
 */
#ifndef VMM_VIRTIO_VIRTIO_H
#define VMM_VIRTIO_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct virtio_dev;

struct virtio_device_kind {
	const char *name;
	/* Create every device of this kind that vm->cfg asks for, each in
	 * the next free window (virtio_next_slot()) and handed to
	 * virtio_add_device(). Returns 0 or an exit status (message printed). */
	int (*create_all)(struct vm *vm);
};

/* Every kind, in window order. */
int virtio_devices_create(struct vm *vm);
/* Is a device kind of that name ("virtio-net") part of this VMM? */
bool virtio_kind_available(const char *name);
/* Tear every device down; the vCPUs must be stopped. */
void virtio_devices_destroy(struct vm *vm);

/* The window the next device gets, or -1 if all are taken (message printed). */
int virtio_next_slot(struct vm *vm, const char *what);
/* Record d (initialised in window virtio_next_slot()) and wire it to KVM.
 * Returns 0 or an exit status. Once added, the device is the VM's to
 * destroy. */
int virtio_add_device(struct vm *vm, struct virtio_dev *d);

/* Device i's MMIO window and GSI, for the firmware tables. */
void virtio_device_window(const struct vm *vm, unsigned i, uint64_t *base, uint64_t *size,
			  unsigned *gsi);

/* `base` followed by one " virtio_mmio.device=4K@0x...:IRQ" per device,
 * newly allocated; NULL when out of memory. */
char *virtio_cmdline(const struct vm *vm, const char *base);

#endif
