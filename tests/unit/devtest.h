/*
 * Shared helpers for the legacy-device unit tests: a hand-built struct vm
 * with no KVM behind it (vm_fd = -1, so KVM_IRQ_LINE simply fails and the
 * tests look at the devices' saved state instead), port I/O through the
 * real bus, and one-iteration pumping of the real event loop.
 */
#ifndef VMM_TESTS_DEVTEST_H
#define VMM_TESTS_DEVTEST_H

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

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

/* 32-bit accesses to a register of the first virtio-mmio window (the
 * device a test created there), through the real MMIO bus. A read starts
 * from a poison value, so a register the device leaves unwritten shows. */
static inline uint32_t devtest_mmio_rd(struct vm *vm, uint64_t reg)
{
	uint32_t v = 0xdeadbeef;
	bus_access(&vm->mmio, VIRTIO_MMIO_BASE + reg, (uint8_t *)&v, 4, false);
	return v;
}

static inline void devtest_mmio_wr(struct vm *vm, uint64_t reg, uint32_t v)
{
	bus_access(&vm->mmio, VIRTIO_MMIO_BASE + reg, (uint8_t *)&v, 4, true);
}

/* The host's view of guest-physical address gpa (a test's rings and
 * buffers, inside guest RAM by construction). */
static inline void *devtest_gp(struct vm *vm, uint64_t gpa)
{
	return guest_ptr(&vm->mem, gpa, 1);
}

/*
 * The driver's part of virtio 1 initialisation (spec 3.1.1), through
 * those registers. devtest_virtio_features() sets ACKNOWLEDGE and DRIVER,
 * writes both halves of the features and sets FEATURES_OK; it returns the
 * status read back, so a test can check whether the device took them (it
 * leaves the reset before it to the caller: the transport's own tests
 * look at what happens without one).
 */
static inline uint32_t devtest_virtio_features(struct vm *vm, uint64_t features)
{
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS,
			VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	devtest_mmio_wr(vm, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	devtest_mmio_wr(vm, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	devtest_mmio_wr(vm, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	devtest_mmio_wr(vm, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS,
			VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			    VIRTIO_CONFIG_S_FEATURES_OK);
	return devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS);
}

/* Queue q of size entries at these guest addresses, made ready. */
static inline void devtest_virtio_queue(struct vm *vm, unsigned q, uint32_t size, uint64_t desc,
					uint64_t avail, uint64_t used)
{
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_SEL, q);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_NUM, size);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)avail);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(avail >> 32));
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)used);
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(used >> 32));
	devtest_mmio_wr(vm, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* Set DRIVER_OK after FEATURES_OK and the queues; the device must keep
 * every bit (no NEEDS_RESET). */
static inline void devtest_virtio_driver_ok(struct vm *vm)
{
	const uint32_t ok = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			    VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;
	devtest_mmio_wr(vm, VIRTIO_MMIO_STATUS, ok);
	assert_int_equal(devtest_mmio_rd(vm, VIRTIO_MMIO_STATUS), ok);
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
