/*
 * The VM's life: build it from its configuration (KVM, RAM, devices,
 * kernel, vCPUs), start the vCPUs, run the event loop on the main thread
 * until something asks the VM to stop, and tear it down.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "boot/boot.h"
#include "boot/cpuid.h"
#include "boot/cpu_model.h"
#include "config.h"
#include "hw/devices.h"
#include "kvm.h"
#include "log.h"
#include "module.h"
#include "seccomp/sandbox.h"
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

/* The core's own memory options; the modules may then change the request
 * (hugetlb pages). */
static int memory_request(const struct vm_config *cfg, struct mem_request *req)
{
	mem_request_init(req);
	if (cfg->huge_pages == HUGE_PAGES_TRANSPARENT || cfg->mem_merge)
		req->backing = MEM_ANON_PRIVATE;
	req->thp = cfg->huge_pages == HUGE_PAGES_TRANSPARENT;
	req->merge = cfg->mem_merge;
	return modules_mem_prepare(cfg, req);
}

static int setup_memory(struct vm *vm)
{
	struct mem_request req;
	int rc = memory_request(vm->cfg, &req);
	/* Saved state brings its RAM along (a snapshot's file, a stream). */
	const struct vmm_module *owner = modules_start_owner(vm->cfg);
	if (!rc && owner && owner->restore_memory)
		rc = owner->restore_memory(vm, &req);
	if (rc)
		return rc;
	if (guest_mem_create(&vm->mem, vm->cfg->mem_mib * MIB, &req) < 0)
		return VMM_EXIT_RESOURCE;
	vm->mem.dirty_log = vm->cfg->track_dirty_pages;
	/* What KVM logs of the guest's writes, the VMM logs of its own. */
	if (vm->mem.dirty_log && guest_mem_track_vmm(&vm->mem) < 0)
		return VMM_EXIT_RESOURCE;
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
	int fd, rc = kvm_open_checked(vm->cfg->cpus, &fd); /* the checks, prewarmed or not */
	if (rc)
		return rc;
	if (vm->kvm_fd < 0)
		vm->kvm_fd = fd;
	else
		close(fd);
	/* A CPU model (--cpu) this host cannot give is refused before
	 * anything is built. */
	if ((rc = cpu_model_check(vm->kvm_fd, &vm->cfg->cpu)))
		return rc;
	struct boot_setup bs;
	if ((vm->vm_fd < 0 && (rc = kvm_create_vm(vm))) || (rc = setup_memory(vm)) ||
	    (rc = setup_devices(vm)))
		return rc;
	/* A VM started from saved state (a snapshot, a migration) gets its
	 * vCPUs and state from the module that owns the start, not a kernel. */
	const struct vmm_module *owner = modules_start_owner(vm->cfg);
	if (owner)
		return owner->restore(vm);
	if ((rc = boot_kernel(vm, &bs)) || (rc = setup_vcpus(vm, &bs)))
		return rc;
	return 0;
}

int vm_prewarm(struct vm *vm)
{
	const char *path = getenv("VMM_KVM_DEVICE");
	int fd = open(path && *path ? path : "/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* Quietly: whatever is wrong is reported when the VM is built. */
	if (ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION ||
	    kvm_missing_cap(fd, getenv("VMM_TEST_MISSING_CAP"))) {
		close(fd);
		return -1;
	}
	vm->kvm_fd = fd;
	if (kvm_create_vm(vm) == 0) {
		/* KVM's CPUID table too: every vCPU, a CPU model check and a
		 * snapshot's CPU check need it (boot/cpuid.c keeps it). */
		struct cpuid_buf *sup = malloc(sizeof(*sup));
		if (sup)
			cpuid_get_supported(fd, sup);
		free(sup);
		return 0;
	}
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	close(fd);
	vm->vm_fd = vm->kvm_fd = -1;
	return -1;
}

int vm_boot(struct vm *vm)
{
	int rc = vm_build(vm);
	for (unsigned i = 0; rc == 0 && i < vm->ncpus; i++)
		rc = vcpu_start(&vm->vcpus[i]);
	/* Set-up is over: the main thread, the last to enter its sandbox,
	 * does so before any vCPU is let into the guest. */
	if (rc == 0)
		rc = sandbox_enter(vm->sandbox, SANDBOX_MAIN);
	if (rc == 0) {
		vm->started = true;
		vcpu_release_all(vm);
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
	if (cfg->balloon.enabled && !virtio_kind_available("virtio-balloon")) {
		snprintf(why, n,
			 "a balloon is configured, but this VMM has no virtio-balloon device");
		return false;
	}
	if (cfg->balloon.enabled && !vm_config_balloon_fits(cfg, cfg->balloon.amount_mib, why, n))
		return false;
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
	modules_teardown(vm); /* their threads may still use the VM */
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
