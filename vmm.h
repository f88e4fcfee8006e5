/*
 * The VM as the core sees it. State is passed explicitly: everything a
 * device or loader needs hangs off struct vm.
 */
#ifndef VMM_VMM_H
#define VMM_VMM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "loop.h"
#include "mem.h"

#define VMM_VERSION "0.1.0"
#define VMM_MAX_CPUS 64

/*
 * Exit statuses. Odd values belong to the guest: a debug-exit write of V
 * gives (V << 1) | 1, as QEMU's isa-debug-exit. The VMM's own statuses are
 * even, so a script can always tell the two apart.
 */
enum vmm_exit {
	VMM_EXIT_OK = 0,           /* guest reset via i8042 (reboot) */
	VMM_EXIT_USAGE = 2,        /* bad command line */
	VMM_EXIT_NO_KVM = 4,       /* /dev/kvm does not exist */
	VMM_EXIT_KVM_PERM = 6,     /* /dev/kvm cannot be opened: permission */
	VMM_EXIT_KVM_CAP = 8,      /* KVM API version or a capability missing */
	VMM_EXIT_BOOT_IMAGE = 10,  /* kernel or initrd unreadable or invalid */
	VMM_EXIT_RESOURCE = 12,    /* memory, threads, files, devices */
	VMM_EXIT_GUEST_CRASH = 14, /* triple fault, failed entry, KVM internal error */
	VMM_EXIT_SIGNAL = 16,      /* stopped by SIGINT, SIGTERM or SIGHUP */
	VMM_EXIT_INTERNAL = 18,    /* a VMM bug or an unexpected KVM error */
	VMM_EXIT_DISK = 20,        /* a disk image is missing, unreadable or locked */
};

enum console_kind { CONSOLE_STDIO, CONSOLE_FILE, CONSOLE_NONE };

#define VMM_MAX_DISKS 8
#define VMM_DISK_PATH_MAX 4096
#define VMM_DISK_SERIAL_MAX 20 /* virtio-blk GET_ID returns 20 bytes */

enum disk_cache { DISK_CACHE_WRITEBACK, DISK_CACHE_UNSAFE };
/* AUTO: io_uring, or the sync engine where io_uring is unavailable. */
enum disk_engine { DISK_ENGINE_AUTO, DISK_ENGINE_SYNC, DISK_ENGINE_IO_URING };

/* One --disk: a raw image behind a virtio-blk device. */
struct disk_config {
	char path[VMM_DISK_PATH_MAX];
	char serial[VMM_DISK_SERIAL_MAX + 1];
	bool ro;
	enum disk_cache cache;
	enum disk_engine engine;
};

struct vm_config {
	const char *kernel;
	const char *initrd;  /* NULL: none */
	const char *cmdline; /* NULL: the default */
	uint64_t mem_mib;
	unsigned cpus;
	enum console_kind console;
	const char *console_path; /* CONSOLE_FILE */
	bool debug_exit;
	unsigned ndisks;
	struct disk_config disks[VMM_MAX_DISKS];
};

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
};

struct serial;
struct i8042;
struct debug_exit;
struct console;
struct virtio_dev;

/* virtio-mmio windows (and IRQs) available to devices. */
#define VMM_MAX_VIRTIO 9

struct vm {
	int kvm_fd;
	int vm_fd;
	int vcpu_mmap_size;
	const struct vm_config *cfg;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct event_loop loop;
	unsigned ncpus;
	struct vcpu vcpus[VMM_MAX_CPUS];

	/* -1 while running; the first vm_request_exit() wins. */
	atomic_int exit_status;
	int exit_efd;  /* eventfd: wakes the main loop when an exit is requested */
	int signal_fd; /* SIGINT/SIGTERM/SIGHUP, read on the main loop */

	struct console *console;
	struct serial *serial;
	struct i8042 *i8042;
	struct debug_exit *debug_exit;
	unsigned nvirtio;
	struct virtio_dev *virtio[VMM_MAX_VIRTIO]; /* slot n = window n */
};

/* Ask the VMM to stop with `status`; callable from any thread, any number
 * of times. Only the first status is kept. */
void vm_request_exit(struct vm *vm, int status);
/* Drive a GSI of the in-kernel irqchip (KVM_IRQ_LINE). */
int vm_irq_line(struct vm *vm, unsigned gsi, int level);

#endif
