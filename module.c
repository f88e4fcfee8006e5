/*
 * The module registry: the "vmm_modules" linker section, walked in link
 * order. The section's bounds are weak so a build with no module at all
 * (make MODULES=) still links: both are then NULL.
 */
#include "module.h"

#include <string.h>

#include "api/router.h"
#include "log.h"
#include "vmm.h"

extern const struct vmm_module *const __start_vmm_modules[] __attribute__((weak));
extern const struct vmm_module *const __stop_vmm_modules[] __attribute__((weak));

const struct module_known_flag module_known_flags[] = {
	{"mem-hugepages", "hugepages", true},
	{"restore", "migration", true},
	{"incoming", "migration", true},
	{NULL, NULL, false},
};

const struct module_known_cpu_name module_known_cpu_names[] = {
	{"host", "nested"},
	{"vmx", "nested"},
	{"svm", "nested"},
	{NULL, NULL},
};

unsigned module_count(void)
{
	if (!__start_vmm_modules)
		return 0;
	return (unsigned)(__stop_vmm_modules - __start_vmm_modules);
}

const struct vmm_module *module_at(unsigned i)
{
	return i < module_count() ? __start_vmm_modules[i] : NULL;
}

const struct vmm_module *module_find(const char *name)
{
	for (unsigned i = 0; i < module_count(); i++)
		if (strcmp(module_at(i)->name, name) == 0)
			return module_at(i);
	return NULL;
}

const char *module_list(void)
{
	static char list[256];
	size_t used = 0;
	list[0] = '\0';
	for (unsigned i = 0; i < module_count(); i++) {
		int n = snprintf(list + used, sizeof(list) - used, "%s%s", i ? " " : "",
				 module_at(i)->name);
		if (n < 0 || (size_t)n >= sizeof(list) - used)
			break;
		used += (size_t)n;
	}
	return module_count() ? list : "none";
}

/* Configuration that only a module can carry out. The API and the config
 * file reach these fields without going through a module's flags, so the
 * refusal is made here, once, for every way in. */
struct module_need {
	const char *module;
	bool (*needed)(const struct vm_config *cfg);
	const char *what;
};

static bool needs_hugetlb(const struct vm_config *cfg)
{
	return cfg->huge_pages == HUGE_PAGES_2M || cfg->huge_pages == HUGE_PAGES_1G;
}

static bool needs_saved_state(const struct vm_config *cfg)
{
	return cfg->restore_snapshot || cfg->incoming;
}

/* A --cpu model or feature (+ or -) that the nested module provides. */
static bool needs_nested_cpu(const struct vm_config *cfg)
{
	for (const struct module_known_cpu_name *k = module_known_cpu_names; k->name; k++) {
		if (strcmp(k->module, "nested") != 0)
			continue;
		if (strcmp(cfg->cpu.model, k->name) == 0)
			return true;
		for (unsigned i = 0; i < cfg->cpu.nedits; i++)
			if (strcmp(cfg->cpu.edits[i].name, k->name) == 0)
				return true;
	}
	return false;
}

static const struct module_need module_needs[] = {
	{"hugepages", needs_hugetlb, "hugetlb-backed guest RAM (huge_pages 2M or 1G)"},
	{"migration", needs_saved_state, "starting from a snapshot or an incoming migration"},
	{"nested", needs_nested_cpu, "the CPU model 'host' and the features vmx and svm (--cpu)"},
};

int modules_check(const struct vm_config *cfg)
{
	for (unsigned i = 0; i < module_count(); i++) {
		const struct vmm_module *m = module_at(i);
		int rc = m->check ? m->check(cfg) : 0;
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < sizeof(module_needs) / sizeof(module_needs[0]); i++) {
		const struct module_need *n = &module_needs[i];
		if (n->needed(cfg) && !module_find(n->module)) {
			vmm_err("%s: not built in (module %s; build with make MODULES=\"... %s\")",
				n->what, n->module, n->module);
			return VMM_EXIT_USAGE;
		}
	}
	return 0;
}

int modules_mem_prepare(const struct vm_config *cfg, struct mem_request *req)
{
	for (unsigned i = 0; i < module_count(); i++) {
		const struct vmm_module *m = module_at(i);
		int rc = m->mem_prepare ? m->mem_prepare(cfg, req) : 0;
		if (rc)
			return rc;
	}
	return 0;
}

void modules_usage(FILE *out)
{
	for (unsigned i = 0; i < module_count(); i++)
		if (module_at(i)->usage)
			fputs(module_at(i)->usage, out);
}

int modules_configure(struct vm_config *cfg)
{
	for (unsigned i = 0; i < module_count(); i++) {
		const struct vmm_module *m = module_at(i);
		int rc = m->configure ? m->configure(cfg) : 0;
		if (rc)
			return rc;
	}
	return 0;
}

const struct vmm_module *modules_start_owner(const struct vm_config *cfg)
{
	for (unsigned i = 0; i < module_count(); i++) {
		const struct vmm_module *m = module_at(i);
		if (m->owns_start && m->owns_start(cfg))
			return m;
	}
	return NULL;
}

void modules_teardown(struct vm *vm)
{
	for (unsigned i = module_count(); i-- > 0;)
		if (module_at(i)->teardown)
			module_at(i)->teardown(vm);
}

const struct vmm_module *modules_command(const char *command)
{
	for (unsigned i = 0; i < module_count(); i++) {
		const struct vmm_module *m = module_at(i);
		if (m->command && m->command_main && strcmp(m->command, command) == 0)
			return m;
	}
	return NULL;
}

const struct module_known_route module_known_routes[] = {
	{"/snapshot/", "migration"},
	{"/migration", "migration"},
	{NULL, NULL},
};

static bool route_matches(const char *prefix, const char *path, size_t len)
{
	size_t n = strlen(prefix);
	if (len < n || memcmp(path, prefix, n) != 0)
		return false;
	return prefix[n - 1] == '/' || len == n || path[n] == '/';
}

module_api_handler modules_api_route(int method, const char *path, size_t len, bool has_query,
				     struct api_request *req, struct api_response *resp)
{
	for (unsigned i = 0; i < module_count(); i++) {
		const struct vmm_module *m = module_at(i);
		if (!m->api_route)
			continue;
		resp->status = 0;
		module_api_handler fn = m->api_route(method, path, len, has_query, req, resp);
		if (fn || resp->status)
			return fn;
	}
	resp->status = 0;
	for (const struct module_known_route *r = module_known_routes; r->prefix; r++) {
		if (!route_matches(r->prefix, path, len) || module_find(r->module))
			continue;
		api_fault(resp, 400, "%.*s: not built in (module %s; build with make MODULES=\"... %s\")",
			  (int)(len > 100 ? 100 : len), path, r->module, r->module);
		return NULL;
	}
	return NULL;
}

void **module_state(struct vm *vm, const struct vmm_module *m)
{
	for (unsigned i = 0; i < module_count() && i < VMM_MAX_MODULES; i++)
		if (module_at(i) == m)
			return &vm->module_state[i];
	return NULL;
}
