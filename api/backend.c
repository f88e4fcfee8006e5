/*
 * The API's view of the VMM (struct api_vmm_ops over struct vm). Runs on
 * the event loop thread, like every handler.
 */
#include <fcntl.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../boot/bzimage.h"
#include "../boot/cpu_model.h"
#include "../boot/elf.h"
#include "../boot/kfile.h"
#include "../hw/devices.h"
#include "../log.h"
#include "../module.h"
#include "../vcpu.h"
#include "../virtio/balloon.h"
#include "../virtio/blk.h"
#include "../virtio/net.h"
#include "../virtio/tap.h"
#include "backend.h"

static enum api_vm_state be_state(void *vmm)
{
	struct vm *vm = vmm;
	if (!vm->started)
		return API_VM_NOT_STARTED;
	return vcpu_paused(vm) ? API_VM_PAUSED : API_VM_RUNNING;
}

/* The reason the last failed call logged, or `dflt`. */
static void last_error(char *why, size_t n, const char *dflt)
{
	const char *e = vmm_log_last_error();
	snprintf(why, n, "%s", *e ? e : dflt);
}

/* The kernel must be a readable file that starts like a kernel. */
static int check_kernel(const char *path)
{
	uint64_t size;
	uint8_t head[4096];
	int fd = kfile_open("kernel", path, &size);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, head, sizeof(head), 0);
	close(fd);
	if (n < 0 || (!elf_detect(head, (size_t)n) && !bzimage_detect(head, (size_t)n))) {
		vmm_err("kernel %s: not an ELF64 x86-64 image or a bzImage", path);
		return -1;
	}
	return 0;
}

/* A --cpu model this host's KVM cannot give. A KVM that does not open here
 * is left to the boot, which fails on it with its own status. */
static int check_cpu_model(const struct vm_config *cfg)
{
	const char *path = getenv("VMM_KVM_DEVICE");
	int fd = open(path ? path : "/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int rc = cpu_model_check(fd, &cfg->cpu);
	close(fd);
	return rc ? -1 : 0;
}

/* What a boot would trip over first, checked while nothing is built, so
 * a mistake there leaves the VMM waiting for a better configuration. */
static int preflight(const struct vm_config *cfg)
{
	uint64_t size;
	char why[256];
	if (!vm_devices_supported(cfg, why, sizeof(why))) {
		vmm_err("%s", why);
		return -1;
	}
	if (modules_check(cfg) || check_cpu_model(cfg) < 0)
		return -1;
	/* Started from saved state (a snapshot): no kernel is loaded. */
	bool saved = modules_start_owner(cfg) != NULL;
	if (!saved && check_kernel(cfg->kernel) < 0)
		return -1;
	if (!saved && cfg->initrd) {
		int fd = kfile_open("initrd", cfg->initrd, &size);
		if (fd < 0)
			return -1;
		close(fd);
	}
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		struct disk_image img;
		if (disk_image_open(&cfg->disks[i], &img))
			return -1;
		disk_image_close(&img);
	}
	/* Each tap opens (or can be created); fd=N taps are checked when
	 * the device is made. */
	for (unsigned i = 0; i < cfg->nnets; i++) {
		const struct net_config *n = &cfg->nets[i];
		char what[128];
		int fd;
		if (!n->tap[0])
			continue;
		snprintf(what, sizeof(what), "network interface %s (host_dev_name %s)", n->id, n->tap);
		if (tap_open(n->tap, what, &fd))
			return -1;
		close(fd);
	}
	return 0;
}

static int be_start(void *vmm, bool *fatal, char *why, size_t n)
{
	struct vm *vm = vmm;
	vmm_log_clear_error();
	if (preflight(vm->cfg) < 0) {
		last_error(why, n, "the configuration cannot boot");
		return -1;
	}
	int status = vm_boot(vm);
	if (status == 0)
		return 0;
	/* Part of the VM exists and cannot be taken apart here: exit with
	 * the status the command line would have given. */
	*fatal = true;
	last_error(why, n, "the VM could not be built");
	vm_request_exit(vm, status);
	return -1;
}

static int be_pause(void *vmm, char *why, size_t n)
{
	struct vm *vm = vmm;
	if (vcpu_pause_all(vm) == 0)
		return 0;
	snprintf(why, n, "the vCPUs did not stop within %d s", VCPU_PAUSE_TIMEOUT_S);
	return -1;
}

static int be_resume(void *vmm, char *why, size_t n)
{
	const char *held = vcpu_pause_held(vmm);
	if (held) {
		snprintf(why, n, "the microVM cannot be resumed now: %s", held);
		return -1;
	}
	vcpu_resume_all(vmm);
	return 0;
}

static int be_ctrl_alt_del(void *vmm, char *why, size_t n)
{
	struct vm *vm = vmm;
	if (i8042_send_ctrl_alt_del(vm->i8042))
		return 0;
	snprintf(why, n, "the guest has not yet read the previous key sequence");
	return -1;
}

/* Drive `index` of the configuration is virtio device `index`: drives
 * come first, in configuration order (virtio/registry.c). */
static struct virtio_blk *blk_at(struct vm *vm, unsigned index)
{
	if (index >= vm->nvirtio || !vm->virtio[index] ||
	    vm->virtio[index]->ops->device_id != VIRTIO_ID_BLOCK)
		return NULL;
	return vm->virtio[index]->opaque;
}

static int be_swap_drive(void *vmm, unsigned index, const char *path, char *why, size_t n)
{
	struct virtio_blk *b = blk_at(vmm, index);
	if (!b) {
		snprintf(why, n, "no such virtio-blk device");
		return -1;
	}
	vmm_log_clear_error();
	return virtio_blk_swap_image(b, path, why, n);
}

static bool be_read_memory(void *vmm, uint64_t gpa, void *dst, size_t len)
{
	struct vm *vm = vmm;
	return vm->started && guest_read(&vm->mem, gpa, dst, len);
}

static const char *vcpu_state_name(int s)
{
	return s == VCPU_RUNNING ? "running" : s == VCPU_PAUSED ? "paused" : "stopped";
}

static json_t *vcpu_exits(const struct vcpu *v)
{
	const struct vcpu_stats *s = &v->stats;
	return json_pack("{s:I, s:I, s:I, s:I, s:I}", "total", (json_int_t)atomic_load(&s->exits),
			 "io", (json_int_t)atomic_load(&s->io), "mmio",
			 (json_int_t)atomic_load(&s->mmio), "hlt", (json_int_t)atomic_load(&s->hlt),
			 "other", (json_int_t)atomic_load(&s->other));
}

static json_t *be_info(void *vmm)
{
	struct vm *vm = vmm;
	json_t *vcpus = json_array(), *devs = json_array();
	for (unsigned i = 0; vcpus && i < vm->ncpus; i++) {
		const struct vcpu *v = &vm->vcpus[i];
		json_array_append_new(vcpus,
				      json_pack("{s:I, s:s, s:o*}", "index", (json_int_t)i, "state",
						vcpu_state_name(atomic_load(&v->state)), "exits",
						vcpu_exits(v)));
	}
	for (unsigned i = 0; devs && i < vm->nvirtio; i++) {
		const struct virtio_dev *d = vm->virtio[i];
		char base[24];
		snprintf(base, sizeof(base), "0x%llx", (unsigned long long)d->base);
		json_t *o = json_pack("{s:s, s:s, s:I}", "name", d->name, "mmio_base", base, "irq",
				      (json_int_t)d->irq);
		/* Disks come first, then network devices (virtio/registry.c). */
		unsigned net = i - vm->cfg->ndisks;
		if (o && d->ops->device_id == VIRTIO_ID_BLOCK && i < vm->cfg->ndisks)
			json_object_set_new(o, "drive_id", json_string(vm->cfg->disks[i].id));
		else if (o && d->ops->device_id == VIRTIO_ID_NET && net < vm->cfg->nnets)
			json_object_set_new(o, "iface_id", json_string(vm->cfg->nets[net].id));
		json_array_append_new(devs, o);
	}
	return json_pack("{s:o*, s:I, s:o*}", "vcpus", vcpus, "ram_bytes", (json_int_t)vm->mem.size,
			 "devices", devs);
}

/* ---- the balloon ---- */

static int be_balloon_set_target(void *vmm, uint32_t amount_mib, char *why, size_t n)
{
	struct virtio_balloon *b = virtio_balloon_find(vmm);
	if (!b) {
		snprintf(why, n, "no balloon device");
		return -1;
	}
	virtio_balloon_set_target(b, amount_mib * (uint32_t)BALLOON_PAGES_PER_MIB);
	return 0;
}

static int be_balloon_set_stats_interval(void *vmm, uint32_t secs, char *why, size_t n)
{
	struct virtio_balloon *b = virtio_balloon_find(vmm);
	if (!b) {
		snprintf(why, n, "no balloon device");
		return -1;
	}
	return virtio_balloon_set_stats_interval(b, secs, why, n);
}

/* Firecracker's BalloonStats: the sizes, then only what the guest reported. */
static json_t *be_balloon_stats(void *vmm)
{
	struct virtio_balloon *b = virtio_balloon_find(vmm);
	struct virtio_balloon_report r;
	if (!b)
		return NULL;
	virtio_balloon_get_report(b, &r);
	json_t *o = json_pack("{s:I, s:I, s:I, s:I}", "target_pages", (json_int_t)r.target_pages,
			      "actual_pages", (json_int_t)r.actual_pages, "target_mib",
			      (json_int_t)(r.target_pages / BALLOON_PAGES_PER_MIB), "actual_mib",
			      (json_int_t)(r.actual_pages / BALLOON_PAGES_PER_MIB));
	for (unsigned tag = 0; o && tag < BALLOON_STAT_TAGS; tag++)
		if (r.stats.valid & (1U << tag))
			json_object_set_new(o, balloon_stat_name(tag),
					    json_integer((json_int_t)r.stats.val[tag]));
	return o;
}

static json_t *balloon_metrics(struct virtio_balloon *b)
{
	struct virtio_balloon_counters c;
	virtio_balloon_get_counters(b, &c);
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			 "inflated_pages", (json_int_t)c.inflated_pages,
			 "deflated_pages", (json_int_t)c.deflated_pages,
			 "reported_bytes", (json_int_t)c.reported_bytes,
			 "bad_pfns", (json_int_t)c.bad_pfns,
			 "bad_chains", (json_int_t)c.bad_chains,
			 "discard_errors", (json_int_t)c.discard_errors,
			 "stats_updates", (json_int_t)c.stats_updates,
			 "stats_malformed", (json_int_t)c.stats_malformed);
}

static json_t *blk_metrics(struct vm *vm, unsigned i)
{
	struct virtio_blk_stats s;
	struct virtio_blk *b = blk_at(vm, i);
	if (!b)
		return NULL;
	virtio_blk_get_stats(b, &s);
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "drive_id",
			 vm->cfg->disks[i].id, "read_count", (json_int_t)s.reads, "write_count",
			 (json_int_t)s.writes, "flush_count", (json_int_t)s.flushes, "read_bytes",
			 (json_int_t)s.read_bytes, "write_bytes", (json_int_t)s.write_bytes,
			 "other_count", (json_int_t)s.other, "io_errors", (json_int_t)s.errors);
}

/* One network interface's counters (Firecracker's "net" metrics, by
 * iface_id; the names are the counters' own). */
static json_t *net_metrics(struct vm *vm, unsigned i)
{
	struct virtio_net_counters c;
	struct virtio_net *n = vm->started ? virtio_net_find(vm, vm->cfg->nets[i].id) : NULL;
	if (!n)
		return NULL;
	virtio_net_get_counters(n, &c);
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "iface_id",
			 vm->cfg->nets[i].id, "rx_packets", (json_int_t)c.rx_packets, "rx_bytes",
			 (json_int_t)c.rx_bytes, "tx_packets", (json_int_t)c.tx_packets, "tx_bytes",
			 (json_int_t)c.tx_bytes, "rx_dropped_too_big", (json_int_t)c.rx_dropped_too_big,
			 "rx_dropped_offload", (json_int_t)c.rx_dropped_offload, "rx_bad_buffers",
			 (json_int_t)c.rx_bad_buffers, "rx_errors", (json_int_t)c.rx_errors,
			 "tx_dropped_malformed", (json_int_t)c.tx_dropped_malformed, "tx_dropped_io",
			 (json_int_t)c.tx_dropped_io, "rx_stalls", (json_int_t)c.rx_stalls);
}

static json_t *be_device_metrics(void *vmm)
{
	struct vm *vm = vmm;
	json_t *vcpus = json_array(), *blocks = json_array();
	for (unsigned i = 0; vcpus && i < vm->ncpus; i++) {
		json_t *e = vcpu_exits(&vm->vcpus[i]);
		if (e)
			json_object_set_new(e, "index", json_integer(i));
		json_array_append_new(vcpus, e);
	}
	for (unsigned i = 0; blocks && vm->started && i < vm->cfg->ndisks; i++) {
		json_t *m = blk_metrics(vm, i);
		if (m)
			json_array_append_new(blocks, m);
	}
	json_t *nets = json_array();
	for (unsigned i = 0; nets && i < vm->cfg->nnets; i++) {
		json_t *n = net_metrics(vm, i);
		if (n)
			json_array_append_new(nets, n);
	}
	json_t *m = json_pack("{s:o*, s:o*, s:o*}", "vcpu", vcpus, "block", blocks, "net", nets);
	struct virtio_balloon *b = vm->started ? virtio_balloon_find(vm) : NULL;
	if (m && b)
		json_object_set_new(m, "balloon", balloon_metrics(b));
	return m;
}

static struct vm *be_vm(void *vmm)
{
	return vmm;
}

const struct api_vmm_ops vm_api_ops = {
    .vm = be_vm,
    .state = be_state,
    .start = be_start,
    .pause = be_pause,
    .resume = be_resume,
    .ctrl_alt_del = be_ctrl_alt_del,
    .swap_drive = be_swap_drive,
    .read_memory = be_read_memory,
    .info = be_info,
    .device_metrics = be_device_metrics,
    .balloon_set_target = be_balloon_set_target,
    .balloon_set_stats_interval = be_balloon_set_stats_interval,
    .balloon_stats = be_balloon_stats,
};
