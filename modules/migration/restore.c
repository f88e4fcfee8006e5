/*
 * Starting a VM from a snapshot (the module's restore_memory() and
 * restore() hooks, inside vm_boot()): RAM maps the memory file
 * copy-on-write (or is left empty for the page-fault handler to fill), the
 * devices are built from the saved configuration by the core, then the
 * vCPUs and every device get their saved state.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "mig.h"
#include "vcpu.h"
#include "vmm.h"

/* The Full memory file at the bottom of the snapshot's layers. */
static const char *bottom_layer(const struct snapshot *s, const char *top)
{
	if (s->meta.layers == 1)
		return top;
	return (const char *)snap_find(&s->view, SEC_LAYER, 0)->data;
}

int snapshot_restore_memory(struct vm *vm, struct mem_request *req)
{
	const struct vm_config *cfg = vm->cfg;
	struct mig_vm *mv = mig_vm_get(vm);
	char why[512];
	if (!mv)
		return VMM_EXIT_RESOURCE;
	struct snapshot *s = &mv->restore;
	/* PUT /snapshot/load opened it already; --restore did not keep it. */
	if (!mv->opened && snapshot_open(cfg->restore_snapshot, cfg->restore_mem, cfg->restore_uffd,
					 s, why, sizeof(why)) < 0) {
		vmm_err("%s", why);
		return VMM_EXIT_BOOT_IMAGE;
	}
	mv->opened = true;
	/* Plain 4 KiB pages: the memory file is what backs RAM now. */
	req->page_size = 4096;
	req->memfd_flags = 0;
	req->reserve = req->thp = req->merge = false;
	if (cfg->restore_uffd) {
		req->backing = MEM_SHARED_MEMFD; /* empty: the handler fills it */
		req->fd = -1;
		return 0;
	}
	const char *path = bottom_layer(s, cfg->restore_mem);
	mv->restore_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (mv->restore_fd < 0) {
		vmm_perr("memory file '%s'", path);
		return VMM_EXIT_BOOT_IMAGE;
	}
	req->backing = MEM_FILE_PRIVATE;
	req->fd = mv->restore_fd;
	return 0;
}

/* Copy each Diff layer's pages over RAM, oldest first. */
static int apply_diffs(struct vm *vm, const struct snapshot *s, const char *top, char *why,
		       size_t n)
{
	for (unsigned i = 1; i < s->meta.layers; i++) {
		const char *path = i + 1 == s->meta.layers
				       ? top
				       : (const char *)snap_find(&s->view, SEC_LAYER, i)->data;
		const uint64_t *bits = (const uint64_t *)snap_find(&s->view, SEC_DIRTY, i)->data;
		if (memfile_apply_diff(&vm->mem, bits, path, why, n) < 0)
			return -1;
	}
	return 0;
}

/* What the next Diff snapshot builds on: this snapshot's layers. */
static void keep_layers(struct mig_vm *mv, const struct snapshot *s, const char *top)
{
	size_t words = (size_t)((s->meta.mem_size / 4096 + 63) / 64);
	char *paths[MIG_MAX_LAYERS] = {0};
	uint64_t *bits[MIG_MAX_LAYERS] = {0};
	unsigned L = s->meta.layers;
	bool ok = true;
	for (unsigned i = 0; i < L && ok; i++) {
		const char *p =
		    i + 1 == L ? top : (const char *)snap_find(&s->view, SEC_LAYER, i)->data;
		paths[i] = realpath(p, NULL);
		ok = paths[i] != NULL;
		if (ok && i) {
			bits[i] = malloc(words * 8);
			ok = bits[i] != NULL;
			if (ok)
				memcpy(bits[i], snap_find(&s->view, SEC_DIRTY, i)->data, words * 8);
		}
	}
	mig_vm_set_layers(mv, ok ? L : 0, paths, bits);
	for (unsigned i = 0; !ok && i < L; i++)
		free(paths[i]), free(bits[i]);
}

static void end_restore(struct mig_vm *mv)
{
	snapshot_close(&mv->restore);
	if (mv->restore_fd >= 0)
		close(mv->restore_fd);
	mv->restore_fd = -1;
	mv->opened = false;
}

int snapshot_restore(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	struct mig_vm *mv = mig_vm_get(vm);
	struct snapshot *s = &mv->restore;
	char why[512];
	int rc = vm_state_check(vm, &s->view, why, sizeof(why));
	if (rc == 0 && cfg->restore_uffd)
		rc = uffd_attach(vm, cfg->restore_mem, mv->uffd, why, sizeof(why));
	if (rc == 0)
		rc = apply_diffs(vm, s, cfg->restore_mem, why, sizeof(why));
	if (rc == 0)
		rc = vm_state_create_vcpus(vm, s->meta.ncpus, why, sizeof(why));
	if (rc == 0)
		rc = vm_state_load(vm, &s->view, why, sizeof(why));
	if (rc < 0) {
		vmm_err("snapshot '%s': %s", cfg->restore_snapshot, why);
		end_restore(mv);
		return VMM_EXIT_BOOT_IMAGE;
	}
	if (!cfg->restore_uffd)
		keep_layers(mv, s, cfg->restore_mem);
	end_restore(mv);
	/* resume_vm false: the vCPUs park before they first run. */
	if (cfg->restore_paused)
		vcpu_pause_all(vm);
	vmm_info("restored from snapshot '%s'", cfg->restore_snapshot);
	return 0;
}
