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

#define VMM_ID_MAX 64	    /* drive_id: [A-Za-z0-9_-], 1..64 */
#define VMM_PARTUUID_MAX 36 /* a GPT partition UUID, 8-4-4-4-12 */

/* One --disk (or PUT /drives/{drive_id}): a raw image behind a virtio-blk
 * device. */
struct disk_config {
	char id[VMM_ID_MAX + 1]; /* the API's drive_id; --disk: "disk0", ... */
	char path[VMM_DISK_PATH_MAX];
	char serial[VMM_DISK_SERIAL_MAX + 1];
	bool ro;
	bool root; /* is_root_device: first device, "root=" on the command line */
	char partuuid[VMM_PARTUUID_MAX + 1]; /* root=PARTUUID=... if set */
	enum disk_cache cache;
	enum disk_engine engine;
};

#define VMM_MAX_NETS 8
#define VMM_NET_IFNAME_MAX 15 /* IFNAMSIZ - 1 */
#define VMM_NET_ID_MAX 63
/* vhost-net: AUTO uses /dev/vhost-net when it opens, else the userspace
 * backend (one warning); ON requires it; OFF never uses it. */
enum net_vhost { NET_VHOST_OFF, NET_VHOST_AUTO, NET_VHOST_ON };

/* One --net (or API network interface): a tap behind a virtio-net device. */
struct net_config {
	char id[VMM_NET_ID_MAX + 1];      /* the API's iface_id; "" from the CLI */
	char tap[VMM_NET_IFNAME_MAX + 1]; /* tap=NAME; "" when fd >= 0 */
	int fd;                           /* fd=N: an open tap, or -1 */
	uint8_t mac[6];
	bool mac_set; /* false: a random locally administered MAC */
	enum net_vhost vhost;
};

/* PUT /logger: where diagnostics go (log.h). */
struct logger_config {
	char *path; /* NULL: stderr */
	int level;  /* enum vmm_log_level */
	bool show_level;
	bool show_origin;
};

enum huge_pages { HUGE_PAGES_NONE };

/*
 * Everything that describes a VM, from the command line, a config file or
 * the API. The strings are owned (config.c: vm_config_free()).
 */
struct vm_config {
	char *id; /* instance id (GET /); NULL: the default */
	char *kernel;
	char *initrd;  /* NULL: none */
	char *cmdline; /* NULL: the default */
	uint64_t mem_mib;
	unsigned cpus;
	bool track_dirty_pages; /* RAM registered with KVM_MEM_LOG_DIRTY_PAGES */
	enum huge_pages huge_pages;
	enum console_kind console;
	char *console_path; /* CONSOLE_FILE */
	bool debug_exit;
	unsigned ndisks;
	struct disk_config disks[VMM_MAX_DISKS];
	unsigned nnets;
	struct net_config nets[VMM_MAX_NETS];
	bool has_logger;
	struct logger_config logger;
	char *metrics_path; /* NULL: no metrics */
	/* How this process is driven: command line only, not in the JSON. */
	char *api_sock;	   /* --api-sock */
	char *config_file; /* --config-file */
};

struct vm;

enum vcpu_state { VCPU_STOPPED, VCPU_RUNNING, VCPU_PAUSED };

/* KVM exits by kind, counted by the vCPU's thread (metrics). */
struct vcpu_stats {
	atomic_uint_fast64_t exits, io, mmio, hlt, other;
};

struct vcpu {
	struct vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	atomic_int state; /* enum vcpu_state */
	struct vcpu_stats stats;
};

/* Pausing (PATCH /vm): vCPU threads park on `cond` while `paused`. */
struct vcpu_pause {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_bool requested; /* read by every vCPU on each loop, lock-free */
	bool paused;
	unsigned parked; /* threads waiting in park() */
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
	struct vcpu_pause pause;
	bool started; /* built and the vCPUs started (InstanceStart) */

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

/* The VM's life (machine.c). Each returning int gives 0 or an exit status
 * with a message printed. */
void vm_init_struct(struct vm *vm, const struct vm_config *cfg);
/* Event loop, exit eventfd, signal handling: before any thread starts. */
int vm_prepare(struct vm *vm);
/* Build the VM from vm->cfg and start its vCPUs. */
int vm_boot(struct vm *vm);
/* Run the event loop until an exit is requested; stop the vCPUs; return
 * the exit status. */
int vm_run(struct vm *vm);
/* Does this VMM have a device for everything cfg asks for? (A network
 * interface needs virtio-net.) false with the reason in why. */
bool vm_devices_supported(const struct vm_config *cfg, char *why, size_t n);
void vm_teardown(struct vm *vm);

/* Ask the VMM to stop with `status`; callable from any thread, any number
 * of times. Only the first status is kept. */
void vm_request_exit(struct vm *vm, int status);
/* Drive a GSI of the in-kernel irqchip (KVM_IRQ_LINE). */
int vm_irq_line(struct vm *vm, unsigned gsi, int level);

#endif
