/*
 * Snapshots: create (a paused VM to a state file and a memory file) and
 * load (checks first, then a VM built from the saved configuration with
 * the saved state, RAM mapped lazily from the memory file).
 *
 * A Diff snapshot's memory file holds only the pages dirtied since the
 * previous snapshot (taken, or restored from); its state file names the
 * memory files below it, down to a Full one, and says which pages each
 * Diff holds. Loading maps the Full file copy-on-write and copies each
 * Diff's pages over it, oldest first.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/config_json.h"
#include "config.h"
#include "log.h"
#include "mig.h"
#include "vcpu.h"
#include "virtio/state.h"
#include "vmm.h"

#define QUIESCE_MS 5000

/* ---- create ---- */

static void mark_ring(void *opaque, uint64_t gpa, uint64_t len)
{
	void **a = opaque;
	dirty_mark_gpa(a[0], a[1], gpa, len);
}

/* Pages changed since the last snapshot (this also starts the next
 * Diff's count from now). The devices' rings are always included: they
 * are written through pointers the tracking does not see. */
static uint64_t *changed_pages(struct vm *vm)
{
	uint64_t *bits = calloc(dirty_words(&vm->mem), sizeof(uint64_t));
	if (!bits)
		return NULL;
	if (vm->mem.dirty_log && dirty_log_collect(vm, bits) < 0) {
		free(bits);
		return NULL;
	}
	void *args[2] = {&vm->mem, bits};
	virtio_state_rings(vm, mark_ring, args);
	return bits;
}

/* The layers below a new Diff, and its bitmap, as sections. */
static void add_layers(struct blob *b, const struct mig_vm *mv, const uint64_t *bits, size_t words)
{
	for (unsigned i = 0; i < mv->nlayers; i++) {
		snap_add(b, SEC_LAYER, i, mv->layer_path[i], strlen(mv->layer_path[i]) + 1);
		if (i)
			snap_add(b, SEC_DIRTY, i, mv->layer_bits[i], words * 8);
	}
	snap_add(b, SEC_DIRTY, mv->nlayers, bits, words * 8);
}

static int write_file(const char *path, const struct blob *b, char *why, size_t n)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		snprintf(why, n, "snapshot_path too long");
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t done = 0;
	while (fd >= 0 && done < b->len) {
		ssize_t w = write(fd, b->data + done, b->len - done);
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	/* A new name only for a whole file: a crash never leaves half of one. */
	if (fd < 0 || done < b->len || close(fd) < 0 || rename(tmp, path) < 0) {
		snprintf(why, n, "snapshot_path '%s': %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int check_create(struct vm *vm, struct mig_vm *mv, bool diff, char *why, size_t n)
{
	if (!diff)
		return 0;
	if (!vm->cfg->track_dirty_pages) {
		snprintf(why, n,
			 "a Diff snapshot needs dirty page tracking: set machine-config "
			 "track_dirty_pages before InstanceStart");
		return -1;
	}
	if (!mv->nlayers) {
		snprintf(why, n,
			 "a Diff snapshot builds on a previous snapshot of this microVM "
			 "(taken or loaded): create a Full one first");
		return -1;
	}
	if (mv->nlayers >= MIG_MAX_LAYERS) {
		snprintf(why, n, "%d memory layers already: create a Full snapshot",
			 MIG_MAX_LAYERS);
		return -1;
	}
	return 0;
}

/* The snapshot's memory file becomes the top layer of what the next Diff
 * builds on. */
static void push_layer(struct mig_vm *mv, const char *mem_path, uint64_t *bits, bool diff)
{
	char *abs = realpath(mem_path, NULL);
	if (!abs) {
		mig_vm_clear_layers(mv);
		free(bits);
		return;
	}
	if (!diff) {
		mig_vm_clear_layers(mv);
		free(bits);
		bits = NULL;
	}
	mv->layer_path[mv->nlayers] = abs;
	mv->layer_bits[mv->nlayers] = bits;
	mv->nlayers++;
}

static int write_snapshot(struct vm *vm, struct mig_vm *mv, const char *state_path,
			  const char *mem_path, bool diff, const uint64_t *bits, char *why,
			  size_t n)
{
	struct blob sec, file;
	struct snap_header h = {0};
	blob_init(&sec);
	blob_init(&file);
	uint32_t layers = diff ? mv->nlayers + 1 : 1;
	int rc = vm_state_save(vm, &sec, layers, why, n);
	if (rc == 0 && diff)
		add_layers(&sec, mv, bits, dirty_words(&vm->mem));
	if (rc == 0 && cpu_ident_host(vm->kvm_fd, &h.cpu) < 0) {
		snprintf(why, n, "%s", vmm_log_last_error());
		rc = -1;
	}
	h.flags = diff ? SNAP_F_DIFF : 0;
	h.mem_size = vm->mem.size;
	h.ncpus = vm->ncpus;
	if (rc == 0 && (!snap_seal(&sec, &h, &file) || sec.oom)) {
		snprintf(why, n, "out of memory");
		rc = -1;
	}
	if (rc == 0)
		rc = diff ? memfile_write_diff(&vm->mem, bits, mem_path, why, n)
			  : memfile_write_full(&vm->mem, mem_path, why, n);
	if (rc == 0)
		rc = write_file(state_path, &file, why, n);
	blob_free(&sec);
	blob_free(&file);
	return rc;
}

int snapshot_create(struct vm *vm, const char *state_path, const char *mem_path, bool diff,
		    char *why, size_t n)
{
	struct mig_vm *mv = mig_vm_get(vm);
	if (!mv) {
		snprintf(why, n, "out of memory");
		return -1;
	}
	if (check_create(vm, mv, diff, why, n) < 0)
		return -1;
	vmm_log_clear_error();
	if (virtio_state_quiesce(vm, QUIESCE_MS, why, n) < 0)
		return -1;
	uint64_t *bits = changed_pages(vm);
	if (!bits) {
		snprintf(why, n, "cannot read the dirty page log: %s", vmm_log_last_error());
		mig_vm_clear_layers(mv);
		return -1;
	}
	if (write_snapshot(vm, mv, state_path, mem_path, diff, bits, why, n) < 0) {
		/* The log was reset: a Diff now would miss pages. */
		mig_vm_clear_layers(mv);
		free(bits);
		return -1;
	}
	push_layer(mv, mem_path, bits, diff);
	return 0;
}

/* ---- open and check for loading ---- */

static int check_layers(const struct snapshot *s, const char *mem_path, bool uffd, size_t words,
			char *why, size_t n)
{
	unsigned L = s->meta.layers;
	uint64_t size = s->meta.mem_size;
	if (uffd && L > 1) {
		snprintf(why, n,
			 "a Diff snapshot cannot be served by a page-fault handler (Uffd): "
			 "load it with backend_type File");
		return -1;
	}
	for (unsigned i = 0; i + 1 < L; i++) {
		const struct snap_section *p = snap_find(&s->view, SEC_LAYER, i);
		if (!p || !p->len || p->len > PATH_MAX || p->data[p->len - 1] ||
		    strlen((const char *)p->data) + 1 != p->len) {
			snprintf(why, n, "memory layer %u: malformed path", i);
			return -1;
		}
		if (memfile_check((const char *)p->data, size, why, n) < 0)
			return -1;
	}
	for (unsigned i = 1; i < L; i++) {
		const struct snap_section *d = snap_find(&s->view, SEC_DIRTY, i);
		if (!d || d->len != words * 8) {
			snprintf(why, n, "memory layer %u: malformed page bitmap", i);
			return -1;
		}
	}
	if (uffd) {
		struct stat st;
		if (stat(mem_path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
			snprintf(why, n, "backend_path '%s': %s", mem_path,
				 access(mem_path, F_OK) < 0 ? strerror(errno)
							    : "not a page-fault handler's socket");
			return -1;
		}
		return 0;
	}
	return memfile_check(mem_path, size, why, n);
}

static int check_cpu_and_vcpus(const struct snapshot *s, char *why, size_t n)
{
	char inner[300];
	const char *dev = getenv("VMM_KVM_DEVICE");
	int kvm = open(dev && *dev ? dev : "/dev/kvm", O_RDWR | O_CLOEXEC);
	struct cpu_ident host;
	int rc = -1;
	if (kvm < 0)
		snprintf(why, n, "cannot open the KVM device: %s", strerror(errno));
	else if (cpu_ident_host(kvm, &host) < 0)
		snprintf(why, n, "%s", vmm_log_last_error());
	else if (cpu_ident_match(&s->view.hdr.cpu, &host, inner, sizeof(inner)))
		rc = 0;
	else
		snprintf(why, n, "taken on %s", inner);
	size_t xs = kvm >= 0 ? vcpu_xsave_size(kvm) : 0;
	for (unsigned i = 0; rc == 0 && i < s->meta.ncpus; i++)
		rc = vcpu_state_check(&s->view, i, xs, why, n);
	if (kvm >= 0)
		close(kvm);
	return rc;
}

static json_t *saved_config(const char *text, size_t len, char *why, size_t n)
{
	json_error_t je;
	json_t *all = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	json_t *out = json_object();
	if (!all || !json_is_object(all) || !out) {
		snprintf(why, n, "the saved configuration is not valid JSON");
		json_decref(all), json_decref(out);
		return NULL;
	}
	static const char *const keep[] = {"boot-source", "machine-config", "drives",
					   "network-interfaces", "balloon"};
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		json_t *v = json_object_get(all, keep[i]);
		if (v)
			json_object_set(out, keep[i], v);
	}
	json_t *opt = json_object_get(all, "vmm-options");
	json_t *dbg = json_is_object(opt) ? json_object_get(opt, "debug_exit") : NULL;
	if (dbg)
		json_object_set_new(out, "vmm-options", json_pack("{s:O}", "debug_exit", dbg));
	json_decref(all);
	return out;
}

int mig_apply_config(const char *text, size_t len, struct vm_config *cfg, char *why, size_t n)
{
	json_t *j = saved_config(text, len, why, n);
	if (!j)
		return -1;
	struct cfg_err err;
	bool ok = cfgjson_apply(j, cfg, &err);
	json_decref(j);
	if (!ok) {
		snprintf(why, n, "the saved configuration: %s", err.msg);
		return -1;
	}
	return 0;
}

int snapshot_apply_config(const struct snapshot *s, struct vm_config *cfg, char *why, size_t n)
{
	const struct snap_section *c = snap_find(&s->view, SEC_CONFIG, 0);
	if (mig_apply_config((const char *)c->data, c->len, cfg, why, n) < 0)
		return -1;
	if (cfg->mem_mib * MIB != s->meta.mem_size || cfg->cpus != s->meta.ncpus) {
		snprintf(why, n, "the saved configuration does not match the saved state");
		return -1;
	}
	return 0;
}

/* The configuration applies to a blank one: a check that changes nothing. */
static int check_config(const struct snapshot *s, char *why, size_t n)
{
	struct vm_config scratch;
	vm_config_init(&scratch);
	int rc = snapshot_apply_config(s, &scratch, why, n);
	vm_config_free(&scratch);
	return rc;
}

void snapshot_close(struct snapshot *s)
{
	snap_view_free(&s->view);
	free(s->buf);
	s->buf = NULL;
}

int snapshot_open(const char *state_path, const char *mem_path, bool uffd, struct snapshot *s,
		  char *why, size_t n)
{
	char inner[400];
	memset(s, 0, sizeof(*s));
	s->buf = snap_read_file(state_path, &s->len, why, n);
	if (!s->buf)
		return -1;
	int rc = snap_parse(s->buf, s->len, &s->view, inner, sizeof(inner));
	if (rc == 0)
		rc = vm_state_check_meta(&s->view, &s->meta, inner, sizeof(inner));
	if (rc == 0)
		rc = check_cpu_and_vcpus(s, inner, sizeof(inner));
	if (rc == 0)
		rc = check_config(s, inner, sizeof(inner));
	if (rc == 0)
		rc = check_layers(s, mem_path, uffd, (size_t)((s->meta.mem_size / 4096 + 63) / 64),
				  inner, sizeof(inner));
	if (rc < 0) {
		snprintf(why, n, "snapshot '%s' refused: %s", state_path, inner);
		snapshot_close(s);
	}
	return rc;
}
