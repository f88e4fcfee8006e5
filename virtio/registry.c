/*
 * The list of virtio device kinds, and the bookkeeping every kind shares:
 * windows, KVM wiring, teardown, kernel command-line announcements.
 * Adding a device kind means adding one line to `kinds`.
 */
#include "virtio.h"

#include <stdlib.h>
#include <string.h>

#include "../log.h"
#include "../vmm.h"
#include "balloon.h"
#include "blk.h"
#include "mmio.h"
#include "net.h"

static const struct virtio_device_kind *const kinds[] = {
	&virtio_blk_kind,
	&virtio_net_kind,
	&virtio_balloon_kind,
};

int virtio_devices_create(struct vm *vm)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		int rc = kinds[i]->create_all(vm);
		if (rc)
			return rc;
	}
	return 0;
}

bool virtio_kind_available(const char *name)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i]->name, name) == 0)
			return true;
	return false;
}

void virtio_devices_destroy(struct vm *vm)
{
	for (unsigned i = vm->nvirtio; i-- > 0;) {
		struct virtio_dev *d = vm->virtio[i];
		vm->virtio[i] = NULL;
		d->ops->destroy(d);
	}
	vm->nvirtio = 0;
}

int virtio_next_slot(struct vm *vm, const char *what)
{
	if (vm->nvirtio >= VMM_MAX_VIRTIO || vm->nvirtio >= VIRTIO_MMIO_SLOTS) {
		vmm_err("%s: no free virtio-mmio window (at most %d devices)", what,
			VIRTIO_MMIO_SLOTS);
		return -1;
	}
	return (int)vm->nvirtio;
}

int virtio_add_device(struct vm *vm, struct virtio_dev *d)
{
	vm->virtio[vm->nvirtio++] = d;
	return virtio_mmio_attach_kvm(d) < 0 ? VMM_EXIT_RESOURCE : 0;
}

void virtio_device_window(const struct vm *vm, unsigned i, uint64_t *base, uint64_t *size,
			  unsigned *gsi)
{
	*base = vm->virtio[i]->base;
	*size = VIRTIO_MMIO_SIZE;
	*gsi = vm->virtio[i]->irq;
}

char *virtio_cmdline(const struct vm *vm, const char *base)
{
	size_t len = strlen(base), size = len + 1 + (size_t)vm->nvirtio * 64;
	char *s = malloc(size);
	if (!s)
		return NULL;
	memcpy(s, base, len + 1);
	for (unsigned i = 0; i < vm->nvirtio; i++) {
		int n = virtio_mmio_announce(vm->virtio[i], s + len, size - len);
		if (n < 0) {
			free(s);
			return NULL;
		}
		len += (size_t)n;
	}
	return s;
}
