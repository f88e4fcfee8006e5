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
#define VMM_MAX_HOST_CPUS 1024 /* CPU_SETSIZE: host CPU numbers for --cpu-affinity */

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
	VMM_EXIT_SECCOMP = 22,     /* a thread made a system call its seccomp filter forbids */
};

enum console_kind { CONSOLE_STDIO, CONSOLE_FILE, CONSOLE_NONE };

/* --seccomp (seccomp/sandbox.h): what a forbidden system call does. KILL:
 * the VMM reports it and exits with VMM_EXIT_SECCOMP; LOG: the kernel logs
 * it and lets it run; OFF: no filters. */
enum sandbox_mode { SANDBOX_KILL, SANDBOX_LOG, SANDBOX_OFF };

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

/* --balloon (or PUT /balloon): the virtio-balloon device, at most one.
 * amount_mib is the host's target; it changes while the VM runs. */
#define VMM_BALLOON_STATS_MAX_S 65535 /* stats_polling_interval_s, as Firecracker's u16 */
struct balloon_config {
	bool enabled;
	bool deflate_on_oom;	  /* offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
	bool free_page_reporting; /* offer VIRTIO_BALLOON_F_REPORTING */
	uint32_t amount_mib;
	uint32_t stats_interval_s; /* 0: no statistics queue */
};

/* PUT /logger: where diagnostics go (log.h). */
struct logger_config {
	char *path; /* NULL: stderr */
	int level;  /* enum vmm_log_level */
	bool show_level;
	bool show_origin;
};

/* --cpu MODEL[,+FEATURE][,-FEATURE]...: the guest's CPU model and the named
 * features shown (+) or hidden (-) on top of it (boot/cpu_model.h). Names
 * are kept as given, resolved when the vCPUs are built: plain data that a
 * snapshot or a migration can carry. */
#define VMM_CPU_NAME_MAX 31
#define VMM_CPU_EDITS_MAX 32
struct cpu_feature_edit {
	char name[VMM_CPU_NAME_MAX + 1]; /* the table's spelling */
	bool on;
};
struct cpu_config {
	char model[VMM_CPU_NAME_MAX + 1]; /* "": the default model */
	unsigned nedits;
	struct cpu_feature_edit edits[VMM_CPU_EDITS_MAX];
};

/* Backing of guest RAM: 4 KiB pages, transparent huge pages (madvise), or
 * hugetlb pages of 2 MiB or 1 GiB (the hugepages module). */
enum huge_pages { HUGE_PAGES_NONE, HUGE_PAGES_TRANSPARENT, HUGE_PAGES_2M, HUGE_PAGES_1G };

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
	struct cpu_config cpu; /* --cpu */
	bool track_dirty_pages; /* RAM registered with KVM_MEM_LOG_DIRTY_PAGES */
	enum huge_pages huge_pages;
	bool mem_merge; /* KSM: guest RAM is MADV_MERGEABLE */
	/* vCPU n runs only on host CPU cpu_affinity[n]; ncpu_affinity 0: anywhere */
	unsigned ncpu_affinity;
	unsigned cpu_affinity[VMM_MAX_CPUS];
	enum console_kind console;
	char *console_path; /* CONSOLE_FILE */
	bool debug_exit;
	unsigned ndisks;
	struct disk_config disks[VMM_MAX_DISKS];
	unsigned nnets;
	struct net_config nets[VMM_MAX_NETS];
	struct balloon_config balloon;
	bool has_logger;
	struct logger_config logger;
	char *metrics_path; /* NULL: no metrics */
	/* How this process is driven: command line only, not in the JSON. */
	char *api_sock;	   /* --api-sock */
	char *config_file; /* --config-file */
	enum sandbox_mode seccomp; /* --seccomp; default kill */
	char *chroot;		   /* --chroot DIR; NULL: none */
	long long uid, gid;	   /* --uid/--gid; -1: unchanged */
	/* Start from saved state instead of a kernel (module migration):
	 * --restore SNAPSHOT,MEMFILE (or PUT /snapshot/load), --incoming URI. */
	char *restore_snapshot, *restore_mem;
	bool restore_uffd;   /* restore_mem is a page-fault handler's socket */
	bool restore_paused; /* stay paused after the restore (resume_vm false) */
	char *incoming;
};

struct vm;
struct sandbox;

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
	const char *hold; /* non-NULL: held paused, resuming refused; says why */
	/* vCPU threads wait for this before their first KVM_RUN: set once every
	 * thread has its seccomp filter (vcpu_release_all). */
	bool released;
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
	const struct sandbox *sandbox; /* seccomp/: NULL when not sandboxed (unit tests) */
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
	void *module_state[16]; /* module.h: module_state(), VMM_MAX_MODULES */
};

/* The VM's life (machine.c). Each returning int gives 0 or an exit status
 * with a message printed. */
void vm_init_struct(struct vm *vm, const struct vm_config *cfg);
/* Event loop, exit eventfd, signal handling: before any thread starts. */
int vm_prepare(struct vm *vm);
/* Create KVM's VM (irqchip, PIT) ahead, while the VMM waits for its
 * configuration through the API: it needs none, and creating the PIT takes
 * milliseconds on some hosts. Quiet; -1 leaves vm_boot() to do it (and
 * report what is wrong). */
int vm_prewarm(struct vm *vm);
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
