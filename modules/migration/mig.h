/*
 * The migration module's insides: snapshot files, the VM's saved state,
 * dirty-page tracking, memory files, the page-fault (Uffd) backend, and
 * live migration. migration.c is the module itself (flags, hooks, API).
 *
 * The saved state of a VM is one list of sections (snapfmt.c), the same in
 * a snapshot file and in a migration stream:
 *
 *   section = { u32 type, u32 instance, u64 len } + len bytes + padding to 8
 *
 * KVM's structures are stored as the kernel's uapi lays them out (that
 * ABI is stable); the devices' as their plain state structs.
 */
#ifndef VMM_MIGRATION_MIG_H
#define VMM_MIGRATION_MIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "module.h"

struct vm;
struct vcpu;
struct vm_config;

/* ---- crc32c.c ---- */

/* CRC-32C of buf, continuing from crc (0 to start). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* ---- blob.c: a growable byte buffer ---- */

struct blob {
	uint8_t *data;
	size_t len, cap;
	bool oom; /* an append failed: the blob is incomplete */
};

void blob_init(struct blob *b);
void blob_free(struct blob *b);
/* Append n bytes (p NULL: zeroes). Returns where they went, or NULL (oom). */
void *blob_put(struct blob *b, const void *p, size_t n);

/* ---- cpu_ident.c: which CPU a snapshot was taken on ---- */

struct cpu_ident {
	char vendor[12];    /* CPUID.0 EBX EDX ECX */
	uint32_t signature; /* CPUID.1 EAX: family, model, stepping */
	uint64_t features;  /* hash of the feature leaves KVM supports */
	uint64_t reserved;
};

/* This host's identity (kvm_fd: KVM's supported CPUID; -1: open the KVM
 * device). 0, or -1 with a message. */
int cpu_ident_host(int kvm_fd, struct cpu_ident *out);
/* false with why ("a different CPU (GenuineIntel family 6 model 85; this
 * host: ...)") when a state from `saved` cannot run on `host`. */
bool cpu_ident_match(const struct cpu_ident *saved, const struct cpu_ident *host, char *why,
		     size_t n);

/* ---- snapfmt.c: the file format (pure; unit-tested against bad input) ---- */

#define SNAP_MAGIC "VMMSNAP" /* and a NUL: 8 bytes */
#define SNAP_VERSION 1
#define SNAP_F_DIFF 1u

struct snap_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size; /* sizeof(struct snap_header) */
	uint64_t payload_len; /* the sections, after the header */
	uint32_t payload_crc; /* CRC-32C of the payload */
	uint32_t flags;	      /* SNAP_F_* */
	struct cpu_ident cpu;
	uint64_t mem_size; /* guest RAM, bytes */
	uint32_t ncpus;
	uint32_t header_crc; /* CRC-32C of this header with header_crc 0 */
};
/* The layout is the file format: no padding anywhere (tests edit it). */
_Static_assert(sizeof(struct snap_header) == 80, "snapshot header layout");

enum snap_section_type {
	SEC_META = 1, /* struct snap_meta */
	SEC_CONFIG,   /* the VM configuration, GET /vm/config's JSON */
	SEC_CLOCK,    /* struct kvm_clock_data */
	SEC_IRQCHIP,  /* struct kvm_irqchip; instance = chip id */
	SEC_PIT,      /* struct kvm_pit_state2 */
	SEC_SERIAL,   /* struct serial_state */
	SEC_I8042,    /* struct i8042_state */
	SEC_VIRTIO,   /* struct snap_virtio + the device's state; instance = slot */
	SEC_LAYER,    /* a memory layer below this snapshot's: instance = depth, the path */
	SEC_DIRTY,    /* pages a Diff layer holds: bitmap; instance = depth */
	SEC_VCPU_REGS = 0x100, /* per vCPU, instance = index: */
	SEC_VCPU_SREGS,
	SEC_VCPU_XSAVE,
	SEC_VCPU_FPU,
	SEC_VCPU_XCRS,
	SEC_VCPU_MSRS, /* struct kvm_msr_entry[] */
	SEC_VCPU_LAPIC,
	SEC_VCPU_MP_STATE,
	SEC_VCPU_EVENTS,
	SEC_VCPU_DEBUGREGS,
	SEC_VCPU_CPUID,	 /* struct kvm_cpuid_entry2[] */
	SEC_VCPU_MODULE, /* a module's extra state: struct snap_module_hdr + bytes */
};

#define SNAP_MAX_SECTIONS 8192
#define SNAP_MAX_FILE (256ULL << 20) /* a state file larger than this is refused */

struct snap_meta {
	uint64_t mem_size;
	uint32_t ncpus;
	uint32_t nvirtio;
	uint32_t layers; /* memory layers: 1 for a Full snapshot, more for a Diff */
	uint32_t reserved;
};

struct snap_virtio {
	uint32_t device_id; /* VIRTIO_ID_* */
	uint32_t reserved;
};

struct snap_module_hdr {
	char module[32]; /* NUL-terminated module name */
};

struct snap_section {
	uint32_t type, instance;
	const uint8_t *data;
	uint64_t len;
};

/* A parsed state: the header and the sections (pointing into the buffer
 * it was parsed from, which must outlive it). */
struct snap_view {
	struct snap_header hdr;
	size_t nsec;
	struct snap_section *sec;
};

/* Append one section. false when out of memory. */
bool snap_add(struct blob *b, uint32_t type, uint32_t instance, const void *data, size_t len);
/* Prepend nothing: finish a state held in b (sections only) into a file
 * image: header + payload, checksums filled. */
bool snap_seal(const struct blob *sections, const struct snap_header *proto, struct blob *out);

/* Check a whole snapshot file image (header, version, sizes, checksums,
 * section framing) and index its sections; the CPU is checked apart
 * (cpu_ident_match). 0, or -1 with why. On success free with
 * snap_view_free(). */
int snap_parse(const uint8_t *buf, size_t len, struct snap_view *out, char *why, size_t n);
/* Index bare sections (a migration stream's state). */
int snap_parse_sections(const uint8_t *p, size_t len, struct snap_view *out, char *why, size_t n);
void snap_view_free(struct snap_view *v);
/* The section of that type and instance, or NULL. */
const struct snap_section *snap_find(const struct snap_view *v, uint32_t type, uint32_t instance);

/* Read a whole snapshot state file (at most SNAP_MAX_FILE). Returns the
 * buffer (free()) and its length, or NULL with why. */
uint8_t *snap_read_file(const char *path, size_t *len, char *why, size_t n);

/* ---- vcpu_state.c, vm_state.c: the VM's state but RAM ---- */

#define MIG_MAX_LAYERS 32 /* memory files under one Diff snapshot, itself included */

/* Bytes of the XSAVE area KVM gives out here (fd: the KVM device or a VM),
 * 0 when only KVM_GET_FPU works. */
size_t vcpu_xsave_size(int fd);
int vcpu_state_save(struct vcpu *v, struct blob *b);
/* Every section vCPU i needs is there and fits this host. 0, or -1 with why. */
int vcpu_state_check(const struct snap_view *s, unsigned i, size_t xsave_size, char *why, size_t n);
int vcpu_state_restore(struct vcpu *v, const struct snap_view *s);

/* Everything but RAM into b (vCPUs parked, devices quiet, event loop
 * thread). `layers`: the memory layers this state goes with. */
int vm_state_save(struct vm *vm, struct blob *b, uint32_t layers, char *why, size_t n);
/* The META section, checked against the header. */
int vm_state_check_meta(const struct snap_view *s, struct snap_meta *meta, char *why, size_t n);
/* Does the state fit the VM built from its configuration (devices built,
 * no vCPU yet)? Changes nothing. */
int vm_state_check(struct vm *vm, const struct snap_view *s, char *why, size_t n);
/* Create the vCPUs (no state yet). */
int vm_state_create_vcpus(struct vm *vm, unsigned ncpus, char *why, size_t n);
/* Load everything into the vCPUs and devices (the vCPUs out of KVM_RUN:
 * not started, or parked). */
int vm_state_load(struct vm *vm, const struct snap_view *s, char *why, size_t n);

/* ---- dirty.c: pages changed since the last look ---- */

/* 64-bit words of a bitmap of RAM's 4 KiB pages. */
size_t dirty_words(const struct guest_mem *m);
/* Log dirty pages from now on (KVM's slots and the VMM's accesses). */
int dirty_log_start(struct vm *vm);
/* Back to what the configuration asks for (track_dirty_pages). */
void dirty_log_stop(struct vm *vm);
/* OR the pages changed since the last call into bits, and clear the logs. */
int dirty_log_collect(struct vm *vm, uint64_t *bits);
uint64_t dirty_count(const uint64_t *bits, size_t words);
/* The next run of set bits at or after *p, among the first `pages` bits,
 * at most `max` long: true with the run in [*first, *first + *count) and
 * *p just past it; false when no bit is left. */
bool dirty_next_run(const uint64_t *bits, uint64_t pages, uint64_t max, uint64_t *p,
		    uint64_t *first, uint64_t *count);
/* Mark the pages of [gpa, gpa + len) (guest-physical) in bits. */
void dirty_mark_gpa(const struct guest_mem *m, uint64_t *bits, uint64_t gpa, uint64_t len);

/* ---- memfile.c: memory files ---- */

int memfile_write_full(const struct guest_mem *m, const char *path, char *why, size_t n);
int memfile_write_diff(const struct guest_mem *m, const uint64_t *bits, const char *path, char *why,
		       size_t n);
/* Copy the pages bits names from a Diff memory file into RAM. */
int memfile_apply_diff(const struct guest_mem *m, const uint64_t *bits, const char *path, char *why,
		       size_t n);
/* The file exists, is a regular file, and has exactly `size` bytes. */
int memfile_check(const char *path, uint64_t size, char *why, size_t n);

/* A snapshot read and checked for loading (file, CPU, sections, memory
 * files) without changing anything. Free with snapshot_close(). */
struct snapshot {
	uint8_t *buf;
	size_t len;
	struct snap_view view;
	struct snap_meta meta;
};

/* ---- per-VM state of the module (module_state()) ---- */

struct mig_out;
struct mig_in;

struct mig_vm {
	/* The memory layers of the last snapshot taken or restored: what a
	 * Diff snapshot builds on. Layer 0 is Full; each above it is a Diff
	 * with the bitmap of the pages it holds. */
	unsigned nlayers;
	char *layer_path[MIG_MAX_LAYERS];
	uint64_t *layer_bits[MIG_MAX_LAYERS];
	/* A restore in progress: the snapshot, opened and checked (by the
	 * load request, or by restore_memory()) until restore() is done. */
	struct snapshot restore;
	bool opened;
	int restore_fd;	     /* the Full memory file, until RAM maps it */
	int uffd[2];	     /* the Uffd backend's userfaultfd and handler socket; -1: none */
	struct mig_out *out; /* live migration, sending */
	struct mig_in *in;   /* live migration, receiving */
};

/* The VM's module state, created on first use (NULL: out of memory). */
struct mig_vm *mig_vm_get(struct vm *vm);
void mig_vm_free(struct vm *vm);
void mig_vm_set_layers(struct mig_vm *mv, unsigned n, char **paths, uint64_t **bits);
void mig_vm_clear_layers(struct mig_vm *mv);

/* ---- snapshot.c ---- */

/* PUT /snapshot/create: the VM is paused. 0, or -1 with why. */
int snapshot_create(struct vm *vm, const char *state_path, const char *mem_path, bool diff,
		    char *why, size_t n);
int snapshot_open(const char *state_path, const char *mem_path, bool uffd, struct snapshot *s,
		  char *why, size_t n);
void snapshot_close(struct snapshot *s);
/* The snapshot's VM configuration onto cfg: machine, drives, network
 * interfaces, balloon, boot source, debug-exit; what belongs to this
 * process (console, API socket, logger, metrics, id) stays. */
int snapshot_apply_config(const struct snapshot *s, struct vm_config *cfg, char *why, size_t n);
/* A saved configuration (GET /vm/config's JSON) onto cfg, the parts that
 * describe the VM (as snapshot_apply_config()). 0, or -1 with why. */
int mig_apply_config(const char *text, size_t len, struct vm_config *cfg, char *why, size_t n);
/* The module's restore_memory() and restore() for a snapshot. */
int snapshot_restore_memory(struct vm *vm, struct mem_request *req);
int snapshot_restore(struct vm *vm);

/* ---- uffd.c: the Uffd memory backend (VMM side) ---- */

/* Register RAM with a new userfaultfd and hand it to the page-fault
 * handler listening on `sock` (Firecracker's protocol): fds gets the
 * userfaultfd and the connection. 0, or -1 with why. */
int uffd_attach(struct vm *vm, const char *sock, int fds[2], char *why, size_t n);
/* `vmm uffd-handler`: serve a memory file to a VMM's page faults. */
int uffd_handler_main(int argc, char **argv);

/* ---- api.c ---- */

struct api_request;
struct api_response;
struct api_ctx;
module_api_handler mig_api_route(int method, const char *path, size_t len, bool has_query,
				 struct api_request *req, struct api_response *resp);

/* ---- live migration (stream.c, mig_out.c, mig_in.c) ---- */

/* tcp:HOST:PORT or unix:PATH. false with why. */
bool mig_uri_valid(const char *uri, char *why, size_t n);
/* Is a migration under way (sending)? */
bool mig_busy(struct vm *vm);
void h_migration_start(struct api_ctx *ctx, const struct api_request *req,
		       struct api_response *resp);
void h_migration_status(struct api_ctx *ctx, const struct api_request *req,
			struct api_response *resp);
void h_migration_cancel(struct api_ctx *ctx, const struct api_request *req,
			struct api_response *resp);
void mig_out_stop(struct vm *vm, struct mig_vm *mv);
/* --incoming: listen, receive, then build and run the VM. */
int mig_in_start(struct vm *vm, struct vm_config *cfg);
int mig_in_restore_memory(struct vm *vm, struct mem_request *req);
int mig_in_restore(struct vm *vm);
void mig_in_stop(struct vm *vm, struct mig_vm *mv);

#endif
