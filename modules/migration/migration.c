/*
 * The migration module: snapshots (create, load, --restore) and live
 * migration (PUT /migration, --incoming). This file is the module itself:
 * its flags, the hooks the core calls, and its per-VM state; the work is
 * in the other files of this directory (mig.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mig.h"
#include "module.h"
#include "vmm.h"

static const struct vmm_module migration_module;

/* ---- per-VM state ---- */

struct mig_vm *mig_vm_get(struct vm *vm)
{
	void **slot = module_state(vm, &migration_module);
	if (!slot)
		return NULL;
	if (!*slot) {
		struct mig_vm *mv = calloc(1, sizeof(*mv));
		if (!mv)
			return NULL;
		mv->uffd[0] = mv->uffd[1] = mv->restore_fd = -1;
		*slot = mv;
	}
	return *slot;
}

void mig_vm_clear_layers(struct mig_vm *mv)
{
	for (unsigned i = 0; i < mv->nlayers; i++) {
		free(mv->layer_path[i]);
		free(mv->layer_bits[i]);
		mv->layer_path[i] = NULL;
		mv->layer_bits[i] = NULL;
	}
	mv->nlayers = 0;
}

void mig_vm_set_layers(struct mig_vm *mv, unsigned n, char **paths, uint64_t **bits)
{
	mig_vm_clear_layers(mv);
	for (unsigned i = 0; i < n; i++) {
		mv->layer_path[i] = paths[i];
		mv->layer_bits[i] = bits[i];
	}
	mv->nlayers = n;
}

static void mig_teardown(struct vm *vm)
{
	void **slot = module_state(vm, &migration_module);
	struct mig_vm *mv = slot ? *slot : NULL;
	if (!mv)
		return;
	mig_out_stop(vm, mv);
	mig_in_stop(vm, mv);
	mig_vm_clear_layers(mv);
	snapshot_close(&mv->restore);
	int fds[] = {mv->uffd[0], mv->uffd[1], mv->restore_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(mv);
	*slot = NULL;
}

/* ---- flags ---- */

/* --restore SNAPSHOT,MEMFILE[,paused] or SNAPSHOT,uffd:SOCKET[,paused] */
static bool parse_restore(const char *arg, struct vm_config *cfg, FILE *err)
{
	char *copy = strdup(arg);
	char *comma = copy ? strchr(copy, ',') : NULL;
	bool ok = comma && comma != copy && comma[1];
	if (ok) {
		*comma = 0;
		char *mem = comma + 1, *opt = strchr(mem, ',');
		if (opt) {
			*opt++ = 0;
			ok = !strcmp(opt, "paused");
			cfg->restore_paused = ok;
		}
		cfg->restore_uffd = !strncmp(mem, "uffd:", 5);
		if (cfg->restore_uffd)
			mem += 5;
		ok = ok && *mem && vm_config_set_str(&cfg->restore_snapshot, copy) == 0 &&
		     vm_config_set_str(&cfg->restore_mem, mem) == 0;
	}
	free(copy);
	if (!ok)
		fprintf(err,
			"vmm: --restore: invalid value '%s' (expected SNAPSHOT,MEMFILE[,paused] or "
			"SNAPSHOT,uffd:SOCKET[,paused])\n",
			arg);
	return ok;
}

static bool mig_parse_flag(const char *flag, const char *arg, struct vm_config *cfg, FILE *err)
{
	if (!strcmp(flag, "restore"))
		return parse_restore(arg, cfg, err);
	char why[200];
	if (!mig_uri_valid(arg, why, sizeof(why))) {
		fprintf(err, "vmm: --incoming: invalid value '%s' (%s)\n", arg, why);
		return false;
	}
	return vm_config_set_str(&cfg->incoming, arg) == 0;
}

/* ---- hooks ---- */

static bool mig_owns_start(const struct vm_config *cfg)
{
	return cfg->restore_snapshot || cfg->incoming;
}

/* --restore: the configuration is the snapshot's. */
static int mig_configure(struct vm_config *cfg)
{
	if (!cfg->restore_snapshot && !cfg->incoming)
		return 0;
	if (cfg->kernel || (cfg->restore_snapshot && cfg->incoming)) {
		vmm_err("%s cannot be combined with %s: the VM comes with its own state",
			cfg->incoming ? "--incoming" : "--restore",
			cfg->kernel ? "--kernel (or a boot-source)" : "--restore");
		return VMM_EXIT_USAGE;
	}
	if (cfg->incoming)
		return 0;
	char why[600];
	struct snapshot s;
	if (snapshot_open(cfg->restore_snapshot, cfg->restore_mem, cfg->restore_uffd, &s, why,
			  sizeof(why)) < 0) {
		vmm_err("--restore: %s", why);
		return VMM_EXIT_BOOT_IMAGE;
	}
	int rc = snapshot_apply_config(&s, cfg, why, sizeof(why));
	snapshot_close(&s);
	if (rc < 0) {
		vmm_err("--restore: %s", why);
		return VMM_EXIT_BOOT_IMAGE;
	}
	return 0;
}

static int mig_start(struct vm *vm, struct vm_config *cfg)
{
	return cfg->incoming ? mig_in_start(vm, cfg) : vm_boot(vm);
}

static int mig_restore_memory(struct vm *vm, struct mem_request *req)
{
	return vm->cfg->incoming ? mig_in_restore_memory(vm, req)
				 : snapshot_restore_memory(vm, req);
}

static int mig_restore(struct vm *vm)
{
	return vm->cfg->incoming ? mig_in_restore(vm) : snapshot_restore(vm);
}

static const struct vmm_module_flag mig_flags[] = {
    {"restore", true},
    {"incoming", true},
    {NULL, false},
};

static const struct vmm_module migration_module = {
    .name = "migration",
    .usage = "  --restore SNAPSHOT,MEMFILE[,paused]\n"
	     "                       start from a snapshot (PUT /snapshot/create) instead of a\n"
	     "                       kernel; MEMFILE may be uffd:SOCKET, a page-fault handler\n"
	     "                       (vmm uffd-handler) (module migration)\n"
	     "  --incoming tcp:HOST:PORT|unix:PATH\n"
	     "                       wait there for a live migration (PUT /migration on the\n"
	     "                       source) and run the VM it brings (module migration)\n",
    .flags = mig_flags,
    .parse_flag = mig_parse_flag,
    .configure = mig_configure,
    .owns_start = mig_owns_start,
    .start = mig_start,
    .restore_memory = mig_restore_memory,
    .restore = mig_restore,
    .teardown = mig_teardown,
    .api_route = mig_api_route,
    .command = "uffd-handler",
    .command_main = uffd_handler_main,
};

VMM_MODULE(migration_module);
