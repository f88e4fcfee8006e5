/*
 * The VM's life: build it from its configuration (KVM, RAM, devices,
 * kernel, vCPUs), start the vCPUs, run the event loop on the main thread
 * until something asks the VM to stop, and tear it down.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "boot/boot.h"
#include "config.h"
#include "hw/devices.h"
#include "kvm.h"
#include "log.h"
#include "vcpu.h"
#include "virtio/virtio.h"
#include "vmm.h"

static void on_exit_request(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	(void)events;
	loop_stop(&vm->loop);
}

static void on_signal(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	int sfd = vm->signal_fd;
	struct signalfd_siginfo si;
	(void)events;
	if (read(sfd, &si, sizeof(si)) == sizeof(si))
		vmm_err("stopped by signal %u (%s)", si.ssi_signo, strsignal((int)si.ssi_signo));
	vm_request_exit(vm, VMM_EXIT_SIGNAL);
}

/* SIGINT/SIGTERM/SIGHUP are read from a signalfd on the loop, so a stop
 * request tears the VM down in order (and the console's tty is restored).
 * They are blocked before any thread starts, so every thread inherits the
 * mask and only the signalfd sees them. */
static int setup_signals(struct vm *vm)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigdelset(&set, VCPU_KICK_SIGNAL);
	signal(SIGPIPE, SIG_IGN); /* a closed console pipe must not kill us */
	vm->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (vm->signal_fd < 0) {
		vmm_perr("signalfd");
		return VMM_EXIT_RESOURCE;
	}
	if (loop_add(&vm->loop, vm->signal_fd, EPOLLIN, on_signal, vm) < 0)
		return VMM_EXIT_RESOURCE;
	return vcpu_install_kick_handler();
}

static int setup_exit_path(struct vm *vm)
{
	vm->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->exit_efd < 0) {
		vmm_perr("eventfd");
		return VMM_EXIT_RESOURCE;
	}
	if (loop_add(&vm->loop, vm->exit_efd, EPOLLIN, on_exit_request, vm) < 0)
		return VMM_EXIT_RESOURCE;
	return 0;
}

static int setup_memory(struct vm *vm)
{
	if (guest_mem_init(&vm->mem, vm->cfg->mem_mib * MIB, 0) < 0)
		return VMM_EXIT_RESOURCE;
	vm->mem.dirty_log = vm->cfg->track_dirty_pages;
	if (guest_mem_register(&vm->mem, vm->vm_fd) < 0)
		return VMM_EXIT_RESOURCE;
	return 0;
}

static int setup_devices(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	vm->console = console_open(cfg);
	if (!vm->console)
		return VMM_EXIT_RESOURCE;
	vm->serial = serial_create(vm, vm->console);
	vm->i8042 = i8042_create(vm);
	if (!vm->serial || !vm->i8042)
		return VMM_EXIT_RESOURCE;
	if (cfg->debug_exit) {
		vm->debug_exit = debug_exit_create(vm);
		if (!vm->debug_exit)
			return VMM_EXIT_RESOURCE;
	}
	return virtio_devices_create(vm);
}

static int setup_vcpus(struct vm *vm, const struct boot_setup *bs)
{
	vm->ncpus = vm->cfg->cpus;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		int rc = vcpu_create(vm, i);
		if (rc)
			return rc;
		if (boot_setup_vcpu(vm, &vm->vcpus[i], bs) < 0)
			return VMM_EXIT_INTERNAL;
	}
	return 0;
}

static int boot_kernel(struct vm *vm, struct boot_setup *bs)
{
	const struct vm_config *cfg = vm->cfg;
	/* The guest finds its virtio-mmio devices on the command line; an ACPI
	 * guest also needs them in the DSDT to get their interrupts. */
	char *base = vm_config_cmdline(cfg);
	char *cmdline = base ? virtio_cmdline(vm, base) : NULL;
	free(base);
	if (!cmdline) {
		vmm_err("out of memory building the kernel command line");
		return VMM_EXIT_RESOURCE;
	}
	struct boot_mmio_dev windows[VMM_MAX_VIRTIO];
	for (unsigned i = 0; i < vm->nvirtio; i++) {
		unsigned gsi;
		virtio_device_window(vm, i, &windows[i].base, &windows[i].size, &gsi);
		windows[i].gsi = gsi;
	}
	struct boot_request req = {
		.kernel_path = cfg->kernel,
		.initrd_path = cfg->initrd,
		.cmdline = cmdline,
		.mmio_devs = windows,
		.n_mmio_devs = vm->nvirtio,
	};
	int rc = boot_load(vm, &req, bs) < 0 ? VMM_EXIT_BOOT_IMAGE : 0;
	free(cmdline);
	return rc;
}

int vm_prepare(struct vm *vm)
{
	int rc;
	if (loop_init(&vm->loop) < 0)
		return VMM_EXIT_RESOURCE;
	if ((rc = setup_exit_path(vm)) || (rc = setup_signals(vm)))
		return rc;
	return 0;
}

/* Build everything; returns 0 or the status to exit with. */
static int vm_build(struct vm *vm)
{
	int rc = kvm_open_checked(vm->cfg->cpus, &vm->kvm_fd);
	if (rc)
		return rc;
	struct boot_setup bs;
	if ((rc = kvm_create_vm(vm)) || (rc = setup_memory(vm)) || (rc = setup_devices(vm)) ||
	    (rc = boot_kernel(vm, &bs)) || (rc = setup_vcpus(vm, &bs)))
		return rc;
	return 0;
}

int vm_boot(struct vm *vm)
{
	int rc = vm_build(vm);
	for (unsigned i = 0; rc == 0 && i < vm->ncpus; i++)
		rc = vcpu_start(&vm->vcpus[i]);
	if (rc == 0) {
		vm->started = true;
		return 0;
	}
	vm_request_exit(vm, rc);
	vcpu_stop_all(vm); /* those that did start */
	return rc;
}

bool vm_devices_supported(const struct vm_config *cfg, char *why, size_t n)
{
	if (cfg->nnets && !virtio_kind_available("virtio-net")) {
		snprintf(why, n,
			 "network interface '%s' is configured, but this VMM has no virtio-net "
			 "device: remove the network interfaces to start",
			 cfg->nets[0].id);
		return false;
	}
	return true;
}

int vm_run(struct vm *vm)
{
	if (atomic_load(&vm->exit_status) == -1 && loop_run(&vm->loop) < 0)
		vm_request_exit(vm, VMM_EXIT_INTERNAL);
	vcpu_stop_all(vm);
	return atomic_load(&vm->exit_status);
}

void vm_teardown(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	virtio_devices_destroy(vm); /* before RAM goes: I/O may be in flight */
	if (vm->debug_exit)
		debug_exit_destroy(vm->debug_exit);
	if (vm->i8042)
		i8042_destroy(vm->i8042);
	if (vm->serial)
		serial_destroy(vm->serial);
	if (vm->console)
		console_close(vm->console);
	guest_mem_destroy(&vm->mem);
	loop_destroy(&vm->loop);
	int fds[] = {vm->exit_efd, vm->signal_fd, vm->vm_fd, vm->kvm_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	vcpu_pause_destroy(vm);
}

void vm_init_struct(struct vm *vm, const struct vm_config *cfg)
{
	memset(vm, 0, sizeof(*vm));
	vm->cfg = cfg;
	vm->kvm_fd = vm->vm_fd = vm->exit_efd = vm->signal_fd = -1;
	vm->mem.memfd = -1;
	atomic_init(&vm->exit_status, -1);
	vcpu_pause_init(vm);
}
