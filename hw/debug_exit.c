/*
 * isa-debug-exit: a guest writes V to port 0xf4 and the VMM exits with
 * status (V << 1) | 1, truncated to 8 bits as any exit status is. The
 * status is always odd, so it cannot be mistaken for one of the VMM's own
 * (even) statuses. Only the low byte of a wider write counts; reads return
 * all-ones.
 */
#include <stdlib.h>

#include "../log.h"
#include "devices.h"

/* Claim 0xf4-0xf7 so 2- and 4-byte writes at 0xf4 work too (guests built
 * for QEMU's iosize=4 use outl). Only a write starting at 0xf4 acts. */
#define DEBUG_EXIT_LEN 4

struct debug_exit {
	struct vm *vm;
};

static void debug_exit_io(void *dev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct debug_exit *d = dev;
	if (!is_write) {
		for (uint32_t i = 0; i < len; i++)
			data[i] = 0xff;
		return;
	}
	if (offset != 0 || len == 0)
		return;
	vm_request_exit(d->vm, ((data[0] << 1) | 1) & 0xff);
}

struct debug_exit *debug_exit_create(struct vm *vm)
{
	struct debug_exit *d = calloc(1, sizeof(*d));
	if (!d) {
		vmm_err("debug-exit: out of memory");
		return NULL;
	}
	d->vm = vm;
	if (bus_register(&vm->pio, DEBUG_EXIT_PORT, DEBUG_EXIT_LEN, debug_exit_io, d,
			 "debug-exit") < 0) {
		free(d);
		return NULL;
	}
	return d;
}

void debug_exit_destroy(struct debug_exit *d)
{
	free(d);
}
