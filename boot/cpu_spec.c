/*
 * --cpu MODEL[,+FEATURE][,-FEATURE]...: parsed into struct cpu_config.
 *
 * Every name is checked here, when the command line is read, so a typo or
 * a name whose module is not built in stops the VMM before anything
 * starts. What the host can do is checked later, against its KVM
 * (cpu_model_check).
 */
#include <string.h>

#include "cpu_model.h"

/* `item` (a model, or +/- and a feature) names nothing built in. */
static int unknown(const char *item, const char *name, const char *what, char *why, size_t n)
{
	const char *module = cpu_name_module(name);
	if (!module) {
		snprintf(why, n, "unknown %s '%s'; see vmm --cpu help", what, name);
		return CPU_SPEC_INVALID;
	}
	snprintf(why, n, "%s: not built in (module %s; build with make MODULES=\"... %s\")", item,
		 module, module);
	return CPU_SPEC_NOT_BUILT_IN;
}

static int set_model(const char *name, struct cpu_config *cfg, char *why, size_t n)
{
	const struct cpu_model *m = cpu_model_find(name);
	if (!m)
		return unknown(name, name, "model", why, n);
	snprintf(cfg->model, sizeof(cfg->model), "%s", m->name);
	return CPU_SPEC_OK;
}

static bool already_given(const struct cpu_config *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->nedits; i++)
		if (strcmp(cfg->edits[i].name, name) == 0)
			return true;
	return false;
}

/* "+name" or "-name". */
static int add_edit(const char *item, struct cpu_config *cfg, char *why, size_t n)
{
	if (item[0] != '+' && item[0] != '-') {
		snprintf(why, n, "expected +FEATURE or -FEATURE, got '%s'", item);
		return CPU_SPEC_INVALID;
	}
	const struct cpu_feature *f = cpu_feature_find(item + 1);
	if (!f)
		return unknown(item, item + 1, "feature", why, n);
	if (already_given(cfg, f->name)) {
		snprintf(why, n, "feature '%s' given twice", f->name);
		return CPU_SPEC_INVALID;
	}
	if (cfg->nedits == VMM_CPU_EDITS_MAX) {
		snprintf(why, n, "more than %d features", VMM_CPU_EDITS_MAX);
		return CPU_SPEC_INVALID;
	}
	struct cpu_feature_edit *e = &cfg->edits[cfg->nedits++];
	snprintf(e->name, sizeof(e->name), "%s", f->name);
	e->on = item[0] == '+';
	return CPU_SPEC_OK;
}

int cpu_config_parse(const char *spec, struct cpu_config *cfg, char *why, size_t n)
{
	struct cpu_config out;
	memset(&out, 0, sizeof(out));
	char item[VMM_CPU_NAME_MAX + 2]; /* sign, name, NUL */
	const char *p = spec;
	bool first = true;
	do {
		size_t len = strcspn(p, ",");
		if (len == 0 || len >= sizeof(item)) {
			snprintf(why, n, len ? "a name is too long" : "empty item");
			return CPU_SPEC_INVALID;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		bool is_model = first && item[0] != '+' && item[0] != '-';
		int rc = is_model ? set_model(item, &out, why, n) : add_edit(item, &out, why, n);
		if (rc != CPU_SPEC_OK)
			return rc;
		first = false;
		p += len;
	} while (*p++ == ',');
	*cfg = out;
	return CPU_SPEC_OK;
}

void cpu_config_format(const struct cpu_config *cfg, char *buf, size_t n)
{
	int used = snprintf(buf, n, "%s", cfg->model[0] ? cfg->model : CPU_MODEL_DEFAULT);
	for (unsigned i = 0; i < cfg->nedits && used >= 0 && (size_t)used < n; i++)
		used += snprintf(buf + used, n - (size_t)used, ",%c%s", cfg->edits[i].on ? '+' : '-',
				 cfg->edits[i].name);
}

bool cpu_config_shows(const struct cpu_config *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->nedits; i++)
		if (cfg->edits[i].on && strcmp(cfg->edits[i].name, name) == 0)
			return true;
	return false;
}
