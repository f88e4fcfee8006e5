/*
 * Shared helpers for the legacy-device unit tests: a hand-built struct vm
 * with no KVM behind it (vm_fd = -1, so KVM_IRQ_LINE simply fails and the
 * tests look at the devices' saved state instead), port I/O through the
 * real bus, and one-iteration pumping of the real event loop.
 */
#ifndef VMM_TESTS_DEVTEST_H
#define VMM_TESTS_DEVTEST_H

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hw/devices.h"
#include "vmm.h"

static inline struct vm *devtest_vm_new(void)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		abort();
	vm->kvm_fd = -1;
	vm->vm_fd = -1;
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	if (loop_init(&vm->loop) < 0)
		abort();
	atomic_init(&vm->exit_status, -1);
	vm->exit_efd = eventfd(0, EFD_CLOEXEC);
	if (vm->exit_efd < 0)
		abort();
	return vm;
}

static inline void devtest_vm_free(struct vm *vm)
{
	loop_destroy(&vm->loop);
	close(vm->exit_efd);
	free(vm);
}

static inline uint8_t devtest_in8(struct vm *vm, uint16_t port)
{
	uint8_t v = 0;
	bus_access(&vm->pio, port, &v, 1, false);
	return v;
}

static inline void devtest_out8(struct vm *vm, uint16_t port, uint8_t v)
{
	bus_access(&vm->pio, port, &v, 1, true);
}

/* Run the handlers of whatever is ready within timeout_ms, once, the way
 * loop_run() does. Returns the number of events. */
static inline int devtest_pump(struct vm *vm, int timeout_ms)
{
	struct epoll_event evs[16];
	int n = epoll_wait(vm->loop.epfd, evs, 16, timeout_ms);
	for (int i = 0; i < n; i++) {
		struct loop_handler *h = evs[i].data.ptr;
		if (h->fd >= 0)
			h->fn(h->opaque, evs[i].events);
	}
	return n;
}

/* The exit eventfd was written (non-blocking check). */
static inline bool devtest_exit_signalled(struct vm *vm)
{
	struct pollfd pfd = {.fd = vm->exit_efd, .events = POLLIN};
	uint64_t v;
	if (poll(&pfd, 1, 0) == 1 && read(vm->exit_efd, &v, sizeof(v)) == sizeof(v))
		return v > 0;
	return false;
}

#endif
