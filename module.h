/*
 * Compile-time modules.
 *
 * A module is one `struct vmm_module`, placed in the "vmm_modules" linker
 * section with VMM_MODULE(). The core never names a module's code: it walks
 * the section (module.c) at the few points where a module may act. Which
 * modules exist is decided by the link alone (`make MODULES="..."`), so a
 * build without a module carries none of its code, and its flags are
 * refused with "not built in".
 *
 * Adding a module: its sources in modules/NAME/, one VMM_MODULE(struct)
 * among them,
 * and NAME in the Makefile's MODULES_ALL; its flags also go in
 * module_known_flags (module.c) so the minimal build can refuse them by
 * name.
 */
#ifndef VMM_MODULE_H
#define VMM_MODULE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mem.h"

struct vm;
struct vm_config;
struct vcpu;
struct cpu_model;
struct cpu_feature;
struct api_ctx;
struct api_request;
struct api_response;

/* An API handler (api/router.h's api_handler), runs on the event loop. */
typedef void (*module_api_handler)(struct api_ctx *ctx, const struct api_request *req,
				   struct api_response *resp);

/* A command-line flag a module owns: --name, with or without a value. */
struct vmm_module_flag {
	const char *name;
	bool has_arg;
};

/* Every hook is optional (NULL). Hooks returning int give 0 or a VMM exit
 * status, with the message already printed. */
struct vmm_module {
	const char *name;
	/* Help text for the module's flags, in --help's layout. */
	const char *usage;
	/* Its flags, ending with a {NULL} entry. */
	const struct vmm_module_flag *flags;
	/* One of its flags was given: update cfg. Returns false with a
	 * message naming the flag and the value printed on err. */
	bool (*parse_flag)(const char *flag, const char *arg, struct vm_config *cfg, FILE *err);
	/* The final configuration, before anything is built. */
	int (*check)(const struct vm_config *cfg);
	/* Guest RAM is about to be created. */
	int (*mem_prepare)(const struct vm_config *cfg, struct mem_request *req);
	/* CPU models and named CPUID features the module adds to --cpu
	 * (boot/cpu_model.h), each array ending with a {NULL} entry; their
	 * names also go in module_known_cpu_names. */
	const struct cpu_model *cpu_models;
	const struct cpu_feature *cpu_features;

	/* ---- starting from saved state (snapshots, incoming migration) ---- */
	/* The command line and config file are read, nothing is checked yet:
	 * fill in the configuration (a restore takes it from the snapshot). */
	int (*configure)(struct vm_config *cfg);
	/* Does this module start the VM itself, from saved state? The core
	 * then needs no kernel, calls start() instead of vm_boot() at
	 * start-up, and restore() instead of loading a kernel. */
	bool (*owns_start)(const struct vm_config *cfg);
	/* Start-up, instead of vm_boot() (cfg is vm->cfg, writable). */
	int (*start)(struct vm *vm, struct vm_config *cfg);
	/* Inside vm_boot(), before guest RAM is created (after mem_prepare):
	 * where the saved RAM comes from (req->backing, req->fd). */
	int (*restore_memory)(struct vm *vm, struct mem_request *req);
	/* Inside vm_boot(), with RAM and devices built from the configuration:
	 * create the vCPUs and load the saved state instead of a kernel (or
	 * hold them paused for state that comes later: an incoming migration). */
	int (*restore)(struct vm *vm);
	/* The VM is being torn down (vCPUs stopped): stop the module's
	 * threads, free its state (module_state()). */
	void (*teardown)(struct vm *vm);

	/* ---- per-vCPU state carried by snapshots and migration ---- */
	/* Append this module's extra state of vCPU v (e.g. nested
	 * virtualization's KVM_GET_NESTED_STATE) to buf: at most cap bytes.
	 * Returns the length (0: nothing to carry), or -1 with a message. The
	 * vCPU is out of KVM_RUN. */
	long (*vcpu_save)(struct vcpu *v, void *buf, size_t cap);
	/* Load what vcpu_save() gave, into a vCPU whose architectural state
	 * (CPUID, registers, MSRs) is already restored. 0, or -1 with a
	 * message. */
	int (*vcpu_restore)(struct vcpu *v, const void *data, size_t len);

	/* ---- control API ---- */
	/* A request no core route took: return the module's handler, or NULL
	 * with resp->status set (404, 405, 400) if the path is the module's
	 * but the request is refused, or NULL with resp->status 0 if the path
	 * is not the module's. Runs on the API thread: no side effects. */
	module_api_handler (*api_route)(int method, const char *path, size_t len, bool has_query,
					struct api_request *req, struct api_response *resp);

	/* ---- `vmm COMMAND ...`: a program of its own in the same binary ---- */
	const char *command;
	int (*command_main)(int argc, char **argv);
};

#define VMM_MODULE(mod)                                                                            \
	static const struct vmm_module *const vmm_module_entry_##mod                               \
	    __attribute__((used, section("vmm_modules"), aligned(sizeof(void *)))) = &(mod)

/* The modules built in, in link order: count, and the i-th. */
unsigned module_count(void);
const struct vmm_module *module_at(unsigned i);
/* The built-in module with that name, or NULL. */
const struct vmm_module *module_find(const char *name);
/* "hugepages nested" (the built-in modules), or "none". Static storage. */
const char *module_list(void);

/* A flag some module owns, whether built in or not. */
struct module_known_flag {
	const char *flag;   /* without the dashes */
	const char *module; /* the module that provides it */
	bool has_arg;
};
/* Every module flag of every module this source tree has; ends with a
 * {NULL} entry. */
extern const struct module_known_flag module_known_flags[];

/* A --cpu model or feature some module provides, whether built in or not
 * (so the minimal build refuses it as "not built in"); ends with {NULL}. */
struct module_known_cpu_name {
	const char *name;
	const char *module;
};
extern const struct module_known_cpu_name module_known_cpu_names[];

/* Run each built-in module's check, then refuse configuration that needs a
 * module not built in (the API and config file set such fields too). */
int modules_check(const struct vm_config *cfg);
/* Let the modules shape guest RAM (req starts as 4 KiB pages, no flags). */
int modules_mem_prepare(const struct vm_config *cfg, struct mem_request *req);
/* The modules' --help text. */
void modules_usage(FILE *out);

/* Each module's configure(). */
int modules_configure(struct vm_config *cfg);
/* The module that starts this VM from saved state, or NULL (a kernel boot). */
const struct vmm_module *modules_start_owner(const struct vm_config *cfg);
/* Each module's teardown(). */
void modules_teardown(struct vm *vm);
/* The module that runs `vmm COMMAND`, or NULL. */
const struct vmm_module *modules_command(const char *command);

/* API paths some module serves, whether built in or not, so the minimal
 * build can refuse them by name; ends with a {NULL} entry. A prefix ending
 * in '/' matches what lies under it; otherwise the path itself and what
 * lies under it. */
struct module_known_route {
	const char *prefix;
	const char *module;
};
extern const struct module_known_route module_known_routes[];
/* Route a request no core route took: the built-in module's handler, or
 * NULL with resp set (the module's refusal, or 400 "not built in" for a
 * known module path that no built-in module serves), or NULL with
 * resp->status 0 when no module knows the path. */
module_api_handler modules_api_route(int method, const char *path, size_t len, bool has_query,
				     struct api_request *req, struct api_response *resp);

/* Per-VM state of a built-in module: a slot in struct vm that only m uses
 * (NULL until it stores something there; freed by its teardown()). */
#define VMM_MAX_MODULES 16
void **module_state(struct vm *vm, const struct vmm_module *m);

#endif
