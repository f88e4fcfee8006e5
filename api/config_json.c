#include "config_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../boot/cpu_model.h"
#include "../cli.h"
#include "../config.h"
#include "../log.h"
#include "../module.h"

#define BOOT_ARGS_MAX 4096

/* ---- errors and the field table ---- */

__attribute__((format(printf, 2, 3))) static void set_msg(struct cfg_err *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 4, 5))) static bool fail(struct cfg_err *err, const char *where,
						       const char *field, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	const char *dot = *where && field ? "." : "";
	set_msg(err, "%s%s%s%s%s", where, dot, field ? field : "", *where || field ? ": " : "",
		what);
	return false;
}

enum ftype { F_STRING, F_INT, F_BOOL, F_OBJECT, F_ARRAY };

struct field {
	const char *name;
	enum ftype type;
	bool required;
};

static const char *type_word(enum ftype t)
{
	static const char *const words[] = {"a string", "an integer", "a boolean", "an object",
					    "an array"};
	return words[t];
}

static bool type_ok(const json_t *v, enum ftype t)
{
	switch (t) {
	case F_STRING:
		return json_is_string(v);
	case F_INT:
		return json_is_integer(v);
	case F_BOOL:
		return json_is_boolean(v);
	case F_OBJECT:
		return json_is_object(v);
	case F_ARRAY:
		return json_is_array(v);
	}
	return false;
}

/* v is an object whose keys are all in f[], of the right types, with
 * every required one present and not null. */
static bool check_fields(const json_t *v, const char *where, const struct field *f, size_t nf,
			 struct cfg_err *err)
{
	if (!json_is_object(v))
		return fail(err, where, NULL, "expected an object");
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)v, key, val)
	{
		size_t i = 0;
		while (i < nf && strcmp(f[i].name, key) != 0)
			i++;
		if (i == nf)
			return fail(err, where, key, "unknown field");
		if (json_is_null(val) && f[i].required)
			return fail(err, where, key, "missing (required)");
		if (json_is_null(val))
			continue;
		if (!type_ok(val, f[i].type))
			return fail(err, where, key, "expected %s", type_word(f[i].type));
	}
	for (size_t i = 0; i < nf; i++) {
		json_t *x = json_object_get(v, f[i].name);
		if (f[i].required && (!x || json_is_null(x)))
			return fail(err, where, f[i].name, "missing (required)");
	}
	return true;
}

/* The field's string, or NULL when absent or null. */
static const char *get_str(const json_t *v, const char *key)
{
	return json_string_value(json_object_get(v, key));
}

/* true when present and not null. */
static bool has(const json_t *v, const char *key)
{
	json_t *x = json_object_get(v, key);
	return x && !json_is_null(x);
}

static bool get_bool(const json_t *v, const char *key, bool dflt)
{
	return has(v, key) ? json_is_true(json_object_get(v, key)) : dflt;
}

/* A string field copied into dst[size]: 1..max bytes (the caller checks
 * the content). */
static bool copy_str(const json_t *v, const char *key, char *dst, size_t size, const char *where,
		     struct cfg_err *err)
{
	const char *s = get_str(v, key);
	size_t len = s ? strlen(s) : 0;
	if (!s || len == 0)
		return fail(err, where, key, "must not be empty");
	if (len >= size)
		return fail(err, where, key, "too long (at most %zu bytes)", size - 1);
	memcpy(dst, s, len + 1);
	return true;
}

/* A path: non-empty, at most 4095 bytes. */
static bool check_path(const char *s, const char *where, const char *key, struct cfg_err *err)
{
	if (!*s)
		return fail(err, where, key, "must not be empty");
	if (strlen(s) >= VMM_DISK_PATH_MAX)
		return fail(err, where, key, "too long (at most %d bytes)", VMM_DISK_PATH_MAX - 1);
	return true;
}

/* The id in the body must be valid and match the one in the URL. */
static bool check_id(const char *id, size_t max, const char *path_id, const char *where,
		     const char *key, struct cfg_err *err)
{
	if (!vm_config_valid_id(id, max))
		return fail(err, where, key,
			    "'%.80s' is not a valid id (1..%zu characters of A-Z a-z 0-9 _ -)", id,
			    max);
	if (path_id && strcmp(id, path_id) != 0)
		return fail(err, where, key, "'%s' does not match the id in the path ('%s')", id,
			    path_id);
	return true;
}

/* ---- boot-source ---- */

bool cfgjson_boot_source(const json_t *v, const char *where, struct boot_source_cfg *out,
			 struct cfg_err *err)
{
	static const struct field f[] = {
	    {"kernel_image_path", F_STRING, true},
	    {"boot_args", F_STRING, false},
	    {"initrd_path", F_STRING, false},
	};
	if (!check_fields(v, where, f, 3, err))
		return false;
	out->kernel = get_str(v, "kernel_image_path");
	out->initrd = get_str(v, "initrd_path");
	out->cmdline = get_str(v, "boot_args");
	if (!check_path(out->kernel, where, "kernel_image_path", err))
		return false;
	if (out->initrd && !check_path(out->initrd, where, "initrd_path", err))
		return false;
	if (out->cmdline && strlen(out->cmdline) >= BOOT_ARGS_MAX)
		return fail(err, where, "boot_args", "too long (at most %d bytes)",
			    BOOT_ARGS_MAX - 1);
	return true;
}

bool cfgjson_commit_boot_source(struct vm_config *cfg, const struct boot_source_cfg *bs)
{
	char *k = strdup(bs->kernel);
	char *i = bs->initrd ? strdup(bs->initrd) : NULL;
	char *c = bs->cmdline ? strdup(bs->cmdline) : NULL;
	if (!k || (bs->initrd && !i) || (bs->cmdline && !c)) {
		free(k), free(i), free(c);
		return false;
	}
	free(cfg->kernel), free(cfg->initrd), free(cfg->cmdline);
	cfg->kernel = k;
	cfg->initrd = i;
	cfg->cmdline = c;
	return true;
}

/* ---- machine-config ---- */

/* Firecracker's "None" and "2M"; "1G" and "Transparent" are ours. */
static bool parse_huge_pages(const char *s, enum huge_pages *out)
{
	static const char *const names[] = {
	    [HUGE_PAGES_NONE] = "None",
	    [HUGE_PAGES_TRANSPARENT] = "Transparent",
	    [HUGE_PAGES_2M] = "2M",
	    [HUGE_PAGES_1G] = "1G",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum huge_pages)i;
			return true;
		}
	return false;
}

const char *cfgjson_huge_pages_name(enum huge_pages hp)
{
	switch (hp) {
	case HUGE_PAGES_TRANSPARENT:
		return "Transparent";
	case HUGE_PAGES_2M:
		return "2M";
	case HUGE_PAGES_1G:
		return "1G";
	case HUGE_PAGES_NONE:
		break;
	}
	return "None";
}

static bool machine_values(const json_t *v, const char *where, struct machine_cfg *out,
			   struct cfg_err *err)
{
	if (has(v, "vcpu_count")) {
		json_int_t n = json_integer_value(json_object_get(v, "vcpu_count"));
		if (n < 1 || n > VMM_MAX_CPUS)
			return fail(err, where, "vcpu_count", "%lld is out of range (1..%d)", n,
				    VMM_MAX_CPUS);
		out->cpus = (unsigned)n;
	}
	if (has(v, "mem_size_mib")) {
		json_int_t n = json_integer_value(json_object_get(v, "mem_size_mib"));
		if (n < MIN_MEM_MIB || n > MAX_MEM_MIB)
			return fail(err, where, "mem_size_mib", "%lld is out of range (%d..%d)", n,
				    MIN_MEM_MIB, MAX_MEM_MIB);
		out->mem_mib = (uint64_t)n;
	}
	if (get_bool(v, "smt", false))
		return fail(err, where, "smt",
			    "simultaneous multithreading is not supported: every vCPU is a "
			    "core of its own");
	out->track_dirty_pages = get_bool(v, "track_dirty_pages", out->track_dirty_pages);
	const char *hp = get_str(v, "huge_pages");
	if (hp && !parse_huge_pages(hp, &out->huge_pages))
		return fail(err, where, "huge_pages", "'%.40s' is not one of None, 2M, 1G, Transparent",
			    hp);
	if ((out->huge_pages == HUGE_PAGES_2M || out->huge_pages == HUGE_PAGES_1G) &&
	    !module_find("hugepages"))
		return fail(err, where, "huge_pages",
			    "'%s' needs hugetlb pages: not built in (module hugepages)", hp);
	return true;
}

bool cfgjson_machine(const json_t *v, const char *where, bool partial, const struct vm_config *cfg,
		     struct machine_cfg *out, struct cfg_err *err)
{
	const struct field f[] = {
	    {"vcpu_count", F_INT, !partial}, {"mem_size_mib", F_INT, !partial},
	    {"smt", F_BOOL, false},	     {"track_dirty_pages", F_BOOL, false},
	    {"huge_pages", F_STRING, false},
	};
	if (!check_fields(v, where, f, 5, err))
		return false;
	if (partial && json_object_size(v) == 0)
		return fail(err, where, NULL, "nothing to update: give at least one field");
	*out = (struct machine_cfg){
	    .mem_mib = cfg->mem_mib,
	    .cpus = cfg->cpus,
	    .track_dirty_pages = partial ? cfg->track_dirty_pages : false,
	    .huge_pages = partial ? cfg->huge_pages : HUGE_PAGES_NONE,
	};
	return machine_values(v, where, out, err);
}

void cfgjson_commit_machine(struct vm_config *cfg, const struct machine_cfg *m)
{
	cfg->mem_mib = m->mem_mib;
	cfg->cpus = m->cpus;
	cfg->track_dirty_pages = m->track_dirty_pages;
	cfg->huge_pages = m->huge_pages;
}

/* ---- drives ---- */

static bool drive_enums(const json_t *v, const char *where, struct disk_config *d,
			struct cfg_err *err)
{
	const char *cache = get_str(v, "cache_type");
	d->cache = DISK_CACHE_WRITEBACK;
	if (cache && !strcmp(cache, "Unsafe"))
		d->cache = DISK_CACHE_UNSAFE;
	else if (cache && strcmp(cache, "Writeback"))
		return fail(err, where, "cache_type", "'%.40s' is not one of Unsafe, Writeback",
			    cache);
	const char *engine = get_str(v, "io_engine");
	d->engine = DISK_ENGINE_AUTO;
	if (engine && !strcmp(engine, "Sync"))
		d->engine = DISK_ENGINE_SYNC;
	else if (engine && strcmp(engine, "Async"))
		return fail(err, where, "io_engine", "'%.40s' is not one of Sync, Async", engine);
	return true;
}

static bool drive_unsupported(const json_t *v, const char *where, struct cfg_err *err)
{
	if (has(v, "rate_limiter"))
		return fail(err, where, "rate_limiter", "rate limiters are not supported yet");
	if (has(v, "socket"))
		return fail(err, where, "socket", "vhost-user-block is not supported");
	return true;
}

bool cfgjson_drive(const json_t *v, const char *where, const char *path_id, struct disk_config *out,
		   struct cfg_err *err)
{
	static const struct field f[] = {
	    {"drive_id", F_STRING, true},      {"path_on_host", F_STRING, true},
	    {"is_root_device", F_BOOL, true},  {"is_read_only", F_BOOL, false},
	    {"cache_type", F_STRING, false},   {"io_engine", F_STRING, false},
	    {"partuuid", F_STRING, false},     {"serial", F_STRING, false},
	    {"rate_limiter", F_OBJECT, false}, {"socket", F_STRING, false},
	};
	if (!check_fields(v, where, f, sizeof(f) / sizeof(f[0]), err) ||
	    !drive_unsupported(v, where, err))
		return false;
	memset(out, 0, sizeof(*out));
	const char *id = get_str(v, "drive_id");
	if (!check_id(id, VMM_ID_MAX, path_id, where, "drive_id", err))
		return false;
	memcpy(out->id, id, strlen(id) + 1);
	if (!copy_str(v, "path_on_host", out->path, sizeof(out->path), where, err))
		return false;
	out->root = get_bool(v, "is_root_device", false);
	out->ro = get_bool(v, "is_read_only", false);
	const char *uuid = get_str(v, "partuuid");
	if (uuid && !vm_config_valid_partuuid(uuid))
		return fail(err, where, "partuuid",
			    "'%.40s' is not a partition UUID "
			    "(8-4-4-4-12 hex digits)",
			    uuid);
	if (uuid)
		memcpy(out->partuuid, uuid, VMM_PARTUUID_MAX + 1);
	const char *serial = get_str(v, "serial");
	if (serial && !vm_config_valid_serial(serial, strlen(serial)))
		return fail(err, where, "serial",
			    "must be 1..%d printable ASCII characters without a comma",
			    VMM_DISK_SERIAL_MAX);
	if (serial)
		memcpy(out->serial, serial, strlen(serial) + 1);
	return drive_enums(v, where, out, err);
}

bool cfgjson_drive_patch(const json_t *v, const char *path_id, const char **path,
			 struct cfg_err *err)
{
	static const struct field f[] = {
	    {"drive_id", F_STRING, true},
	    {"path_on_host", F_STRING, false},
	    {"rate_limiter", F_OBJECT, false},
	};
	if (!check_fields(v, "", f, 3, err) || !drive_unsupported(v, "", err) ||
	    !check_id(get_str(v, "drive_id"), VMM_ID_MAX, path_id, "", "drive_id", err))
		return false;
	*path = get_str(v, "path_on_host");
	if (!*path)
		return fail(err, "", NULL, "nothing to update: give path_on_host");
	return check_path(*path, "", "path_on_host", err);
}

/* ---- network interfaces ---- */

bool cfgjson_net(const json_t *v, const char *where, const char *path_id, struct net_config *out,
		 struct cfg_err *err)
{
	static const struct field f[] = {
	    {"iface_id", F_STRING, true},	  {"host_dev_name", F_STRING, true},
	    {"guest_mac", F_STRING, false},	  {"rx_rate_limiter", F_OBJECT, false},
	    {"tx_rate_limiter", F_OBJECT, false}, {"mtu", F_INT, false},
	};
	if (!check_fields(v, where, f, sizeof(f) / sizeof(f[0]), err))
		return false;
	if (has(v, "rx_rate_limiter") || has(v, "tx_rate_limiter"))
		return fail(err, where,
			    has(v, "rx_rate_limiter") ? "rx_rate_limiter" : "tx_rate_limiter",
			    "rate limiters are not supported yet");
	if (has(v, "mtu"))
		return fail(err, where, "mtu", "not supported yet");
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	out->vhost = NET_VHOST_OFF;
	const char *id = get_str(v, "iface_id");
	if (!check_id(id, VMM_NET_ID_MAX, path_id, where, "iface_id", err))
		return false;
	memcpy(out->id, id, strlen(id) + 1);
	if (!copy_str(v, "host_dev_name", out->tap, sizeof(out->tap), where, err))
		return false;
	if (!vm_config_valid_ifname(out->tap))
		return fail(err, where, "host_dev_name", "'%s' is not a valid interface name",
			    out->tap);
	const char *mac = get_str(v, "guest_mac");
	if (mac && !vm_config_parse_mac(mac, out->mac))
		return fail(err, where, "guest_mac",
			    "'%.40s' is not a unicast MAC address (xx:xx:xx:xx:xx:xx, not all "
			    "zero)",
			    mac);
	out->mac_set = mac != NULL;
	return true;
}

bool cfgjson_net_patch(const json_t *v, const char *path_id, struct cfg_err *err)
{
	static const struct field f[] = {
	    {"iface_id", F_STRING, true},
	    {"rx_rate_limiter", F_OBJECT, false},
	    {"tx_rate_limiter", F_OBJECT, false},
	};
	if (!check_fields(v, "", f, 3, err) ||
	    !check_id(get_str(v, "iface_id"), VMM_NET_ID_MAX, path_id, "", "iface_id", err))
		return false;
	if (has(v, "rx_rate_limiter") || has(v, "tx_rate_limiter"))
		return fail(err, "", NULL, "rate limiters are not supported yet");
	return fail(err, "", NULL, "nothing to update: give rx_rate_limiter or tx_rate_limiter");
}

/* ---- balloon ---- */

/* An integer field in 0..max into *out (left alone when absent or null). */
static bool get_u32(const json_t *v, const char *key, uint32_t max, uint32_t *out,
		    const char *where, struct cfg_err *err)
{
	if (!has(v, key))
		return true;
	json_int_t n = json_integer_value(json_object_get(v, key));
	if (n < 0 || n > max)
		return fail(err, where, key, "%lld is out of range (0..%u)", n, max);
	*out = (uint32_t)n;
	return true;
}

bool cfgjson_balloon(const json_t *v, const char *where, struct balloon_config *out,
		     struct cfg_err *err)
{
	static const struct field f[] = {
	    {"amount_mib", F_INT, true},
	    {"deflate_on_oom", F_BOOL, true},
	    {"stats_polling_interval_s", F_INT, false},
	    {"free_page_reporting", F_BOOL, false},
	    {"free_page_hinting", F_BOOL, false},
	};
	if (!check_fields(v, where, f, sizeof(f) / sizeof(f[0]), err))
		return false;
	if (get_bool(v, "free_page_hinting", false))
		return fail(err, where, "free_page_hinting",
			    "free page hinting is not supported (free_page_reporting is)");
	struct balloon_config b = {
	    .enabled = true,
	    .deflate_on_oom = get_bool(v, "deflate_on_oom", false),
	    .free_page_reporting = get_bool(v, "free_page_reporting", false),
	};
	if (!get_u32(v, "amount_mib", MAX_MEM_MIB, &b.amount_mib, where, err) ||
	    !get_u32(v, "stats_polling_interval_s", VMM_BALLOON_STATS_MAX_S, &b.stats_interval_s,
		     where, err))
		return false;
	*out = b;
	return true;
}

bool cfgjson_balloon_update(const json_t *v, uint32_t *amount_mib, struct cfg_err *err)
{
	static const struct field f[] = {{"amount_mib", F_INT, true}};
	return check_fields(v, "", f, 1, err) &&
	       get_u32(v, "amount_mib", MAX_MEM_MIB, amount_mib, "", err);
}

bool cfgjson_balloon_stats_update(const json_t *v, uint32_t *secs, struct cfg_err *err)
{
	static const struct field f[] = {{"stats_polling_interval_s", F_INT, true}};
	return check_fields(v, "", f, 1, err) &&
	       get_u32(v, "stats_polling_interval_s", VMM_BALLOON_STATS_MAX_S, secs, "", err);
}

/* ---- logger and metrics ---- */

bool cfgjson_logger(const json_t *v, const char *where, struct logger_config *out,
		    const char **path, struct cfg_err *err)
{
	static const struct field f[] = {
	    {"log_path", F_STRING, false}, {"level", F_STRING, false},
	    {"show_level", F_BOOL, false}, {"show_log_origin", F_BOOL, false},
	    {"module", F_STRING, false},
	};
	if (!check_fields(v, where, f, sizeof(f) / sizeof(f[0]), err))
		return false;
	if (has(v, "module"))
		return fail(err, where, "module", "filtering by module is not supported");
	*path = get_str(v, "log_path");
	if (*path && !check_path(*path, where, "log_path", err))
		return false;
	const char *level = get_str(v, "level");
	int lv = level ? vmm_log_level_parse(level) : VMM_LOG_INFO;
	if (lv < 0)
		return fail(err, where, "level",
			    "'%.40s' is not one of Error, Warning, Info, Debug, Trace, Off", level);
	*out = (struct logger_config){
	    .level = lv,
	    .show_level = get_bool(v, "show_level", false),
	    .show_origin = get_bool(v, "show_log_origin", false),
	};
	return true;
}

bool cfgjson_metrics(const json_t *v, const char *where, const char **path, struct cfg_err *err)
{
	static const struct field f[] = {{"metrics_path", F_STRING, true}};
	if (!check_fields(v, where, f, 1, err))
		return false;
	*path = get_str(v, "metrics_path");
	return check_path(*path, where, "metrics_path", err);
}

/* ---- the whole configuration ---- */

/* "cpu_affinity": [host CPU of vCPU 0, of vCPU 1, ...]. */
static bool apply_cpu_affinity(const json_t *a, struct vm_config *cfg, struct cfg_err *err)
{
	const char *where = "vmm-options";
	if (!a || json_is_null(a))
		return true;
	if (json_array_size(a) > VMM_MAX_CPUS)
		return fail(err, where, "cpu_affinity", "more than %d entries", VMM_MAX_CPUS);
	unsigned cpus[VMM_MAX_CPUS];
	for (size_t i = 0; i < json_array_size(a); i++) {
		const json_t *c = json_array_get(a, i);
		json_int_t n = json_is_integer(c) ? json_integer_value(c) : -1;
		if (n < 0 || n >= VMM_MAX_HOST_CPUS)
			return fail(err, where, "cpu_affinity",
				    "entry %zu is not a host CPU number (0..%d)", i,
				    VMM_MAX_HOST_CPUS - 1);
		cpus[i] = (unsigned)n;
	}
	cfg->ncpu_affinity = (unsigned)json_array_size(a);
	memcpy(cfg->cpu_affinity, cpus, cfg->ncpu_affinity * sizeof(cpus[0]));
	return true;
}

static bool apply_options(const json_t *v, struct vm_config *cfg, struct cfg_err *err)
{
	static const struct field f[] = {
	    {"console", F_STRING, false},
	    {"debug_exit", F_BOOL, false},
	    {"mem_merge", F_BOOL, false},
	    {"cpu_affinity", F_ARRAY, false},
	    {"cpu", F_STRING, false},
	};
	const char *where = "vmm-options";
	if (!check_fields(v, where, f, sizeof(f) / sizeof(f[0]), err))
		return false;
	if (!apply_cpu_affinity(json_object_get(v, "cpu_affinity"), cfg, err))
		return false;
	cfg->mem_merge = get_bool(v, "mem_merge", cfg->mem_merge);
	const char *cpu = get_str(v, "cpu");
	char why[200];
	if (cpu && cpu_config_parse(cpu, &cfg->cpu, why, sizeof(why)) != CPU_SPEC_OK)
		return fail(err, where, "cpu", "'%.60s': %s", cpu, why);
	const char *con = get_str(v, "console");
	if (con && !strcmp(con, "stdio")) {
		cfg->console = CONSOLE_STDIO;
	} else if (con && !strcmp(con, "none")) {
		cfg->console = CONSOLE_NONE;
	} else if (con && !strncmp(con, "file:", 5) && con[5]) {
		if (!check_path(con + 5, where, "console", err))
			return false;
		if (vm_config_set_str(&cfg->console_path, con + 5) < 0)
			return fail(err, where, "console", "out of memory");
		cfg->console = CONSOLE_FILE;
	} else if (con) {
		return fail(err, where, "console", "'%.40s' is not one of stdio, none, file:PATH",
			    con);
	}
	cfg->debug_exit = get_bool(v, "debug_exit", cfg->debug_exit);
	return true;
}

static bool apply_drives(const json_t *v, struct vm_config *cfg, struct cfg_err *err)
{
	if (!json_is_array(v))
		return fail(err, "drives", NULL, "expected an array");
	cfg->ndisks = 0;
	for (size_t i = 0; i < json_array_size(v); i++) {
		char where[32], why[160];
		snprintf(where, sizeof(where), "drives[%zu]", i);
		struct disk_config d;
		if (!cfgjson_drive(json_array_get(v, i), where, NULL, &d, err))
			return false;
		if (vm_config_find_disk(cfg, d.id) >= 0)
			return fail(err, where, "drive_id", "duplicate id '%s'", d.id);
		if (!vm_config_put_disk(cfg, &d, why, sizeof(why)))
			return fail(err, where, NULL, "%s", why);
	}
	return true;
}

static bool apply_nets(const json_t *v, struct vm_config *cfg, struct cfg_err *err)
{
	if (!json_is_array(v))
		return fail(err, "network-interfaces", NULL, "expected an array");
	cfg->nnets = 0;
	for (size_t i = 0; i < json_array_size(v); i++) {
		char where[48], why[160];
		snprintf(where, sizeof(where), "network-interfaces[%zu]", i);
		struct net_config n;
		if (!cfgjson_net(json_array_get(v, i), where, NULL, &n, err))
			return false;
		if (vm_config_find_net(cfg, n.id) >= 0)
			return fail(err, where, "iface_id", "duplicate id '%s'", n.id);
		if (!vm_config_put_net(cfg, &n, why, sizeof(why)))
			return fail(err, where, NULL, "%s", why);
	}
	return true;
}

static bool apply_logger(const json_t *v, struct vm_config *cfg, struct cfg_err *err)
{
	struct logger_config lc;
	const char *path;
	if (!cfgjson_logger(v, "logger", &lc, &path, err))
		return false;
	if (vm_config_set_str(&lc.path, path) < 0)
		return fail(err, "logger", NULL, "out of memory");
	free(cfg->logger.path);
	cfg->logger = lc;
	cfg->has_logger = true;
	return true;
}

static bool apply_balloon(const json_t *v, struct vm_config *cfg, struct cfg_err *err)
{
	/* The size is checked against RAM at boot: sections come in any order. */
	return cfgjson_balloon(v, "balloon", &cfg->balloon, err);
}

static bool apply_metrics(const json_t *v, struct vm_config *cfg, struct cfg_err *err)
{
	const char *path;
	if (!cfgjson_metrics(v, "metrics", &path, err))
		return false;
	if (vm_config_set_str(&cfg->metrics_path, path) < 0)
		return fail(err, "metrics", NULL, "out of memory");
	return true;
}

static bool apply_boot_source(const json_t *v, struct vm_config *cfg, struct cfg_err *err)
{
	struct boot_source_cfg bs;
	if (!cfgjson_boot_source(v, "boot-source", &bs, err))
		return false;
	if (!cfgjson_commit_boot_source(cfg, &bs))
		return fail(err, "boot-source", NULL, "out of memory");
	return true;
}

static bool apply_machine(const json_t *v, struct vm_config *cfg, struct cfg_err *err)
{
	struct machine_cfg m;
	if (!cfgjson_machine(v, "machine-config", false, cfg, &m, err))
		return false;
	cfgjson_commit_machine(cfg, &m);
	return true;
}

/* Firecracker sections this VMM does not have (yet). */
static const char *const unsupported_sections[] = {
    "vsock", "mmds-config", "cpu-config", "entropy", "pmem", "memory-hotplug", "serial",
};

bool cfgjson_apply(const json_t *root, struct vm_config *cfg, struct cfg_err *err)
{
	static const struct {
		const char *key;
		bool (*apply)(const json_t *v, struct vm_config *cfg, struct cfg_err *err);
	} sections[] = {
	    {"boot-source", apply_boot_source}, {"machine-config", apply_machine},
	    {"drives", apply_drives},		{"network-interfaces", apply_nets},
	    {"logger", apply_logger},		{"metrics", apply_metrics},
	    {"vmm-options", apply_options},	{"balloon", apply_balloon},
	};
	if (!json_is_object(root))
		return fail(err, "", NULL, "the configuration must be a JSON object");
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)root, key, val)
	{
		size_t i = 0;
		while (i < sizeof(sections) / sizeof(sections[0]) && strcmp(sections[i].key, key))
			i++;
		if (i < sizeof(sections) / sizeof(sections[0])) {
			if (!json_is_null(val) && !sections[i].apply(val, cfg, err))
				return false;
			continue;
		}
		for (size_t j = 0; j < sizeof(unsupported_sections) / sizeof(char *); j++)
			if (!strcmp(key, unsupported_sections[j]))
				return fail(err, key, NULL, "not supported by this VMM yet");
		return fail(err, key, NULL, "unknown section");
	}
	return true;
}

bool cfgjson_load_file(const char *path, struct vm_config *cfg, struct cfg_err *err)
{
	json_error_t je;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		if (je.line < 0)
			set_msg(err, "%s: %s", path, je.text);
		else
			set_msg(err, "%s:%d:%d: %s", path, je.line, je.column, je.text);
		return false;
	}
	struct cfg_err inner;
	bool ok = cfgjson_apply(root, cfg, &inner);
	json_decref(root);
	if (!ok)
		set_msg(err, "%s: %s", path, inner.msg);
	return ok;
}

/* ---- back to JSON ---- */

json_t *cfgjson_dump_machine(const struct vm_config *cfg)
{
	return json_pack("{s:I, s:I, s:b, s:b, s:s}", "vcpu_count", (json_int_t)cfg->cpus,
			 "mem_size_mib", (json_int_t)cfg->mem_mib, "smt", 0, "track_dirty_pages",
			 cfg->track_dirty_pages, "huge_pages", cfgjson_huge_pages_name(cfg->huge_pages));
}

json_t *cfgjson_dump_drive(const struct disk_config *d)
{
	json_t *o = json_pack("{s:s, s:s, s:b, s:b, s:s, s:s}", "drive_id", d->id, "path_on_host",
			      d->path, "is_root_device", d->root, "is_read_only", d->ro,
			      "cache_type", d->cache == DISK_CACHE_UNSAFE ? "Unsafe" : "Writeback",
			      "io_engine", d->engine == DISK_ENGINE_SYNC ? "Sync" : "Async");
	if (o && d->partuuid[0])
		json_object_set_new(o, "partuuid", json_string(d->partuuid));
	if (o && d->serial[0])
		json_object_set_new(o, "serial", json_string(d->serial));
	return o;
}

static json_t *dump_net(const struct net_config *n)
{
	json_t *o = json_pack("{s:s}", "iface_id", n->id);
	if (o && n->tap[0]) /* "" for --net fd=N: a descriptor has no JSON form */
		json_object_set_new(o, "host_dev_name", json_string(n->tap));
	if (o && n->mac_set) {
		char mac[18];
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
			 n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
		json_object_set_new(o, "guest_mac", json_string(mac));
	}
	return o;
}

static json_t *dump_boot_source(const struct vm_config *cfg)
{
	json_t *o = json_pack("{s:s}", "kernel_image_path", cfg->kernel);
	if (o && cfg->cmdline)
		json_object_set_new(o, "boot_args", json_string(cfg->cmdline));
	if (o && cfg->initrd)
		json_object_set_new(o, "initrd_path", json_string(cfg->initrd));
	return o;
}

static json_t *dump_logger(const struct logger_config *l)
{
	json_t *o = json_pack("{s:s, s:b, s:b}", "level", vmm_log_level_name(l->level),
			      "show_level", l->show_level, "show_log_origin", l->show_origin);
	if (o && l->path)
		json_object_set_new(o, "log_path", json_string(l->path));
	return o;
}

json_t *cfgjson_dump_balloon(const struct balloon_config *b)
{
	return json_pack("{s:I, s:b, s:I, s:b}", "amount_mib", (json_int_t)b->amount_mib,
			 "deflate_on_oom", b->deflate_on_oom, "stats_polling_interval_s",
			 (json_int_t)b->stats_interval_s, "free_page_reporting",
			 b->free_page_reporting);
}

static json_t *dump_options(const struct vm_config *cfg)
{
	char con[VMM_DISK_PATH_MAX + 8];
	if (cfg->console == CONSOLE_FILE)
		snprintf(con, sizeof(con), "file:%s", cfg->console_path ? cfg->console_path : "");
	else
		snprintf(con, sizeof(con), "%s", cfg->console == CONSOLE_NONE ? "none" : "stdio");
	char cpu[VMM_CPU_EDITS_MAX * (VMM_CPU_NAME_MAX + 2) + VMM_CPU_NAME_MAX + 1];
	cpu_config_format(&cfg->cpu, cpu, sizeof(cpu));
	json_t *o = json_pack("{s:s, s:b, s:b, s:s}", "console", con, "debug_exit", cfg->debug_exit,
			      "mem_merge", cfg->mem_merge, "cpu", cpu);
	json_t *aff = o ? json_array() : NULL;
	for (unsigned i = 0; aff && i < cfg->ncpu_affinity; i++)
		json_array_append_new(aff, json_integer(cfg->cpu_affinity[i]));
	if (aff && cfg->ncpu_affinity)
		json_object_set_new(o, "cpu_affinity", aff);
	else
		json_decref(aff);
	return o;
}

json_t *cfgjson_dump(const struct vm_config *cfg)
{
	json_t *root = json_object(), *drives = json_array(), *nets = json_array();
	if (!root || !drives || !nets) {
		json_decref(root), json_decref(drives), json_decref(nets);
		return NULL;
	}
	if (cfg->kernel)
		json_object_set_new(root, "boot-source", dump_boot_source(cfg));
	json_object_set_new(root, "machine-config", cfgjson_dump_machine(cfg));
	for (unsigned i = 0; i < cfg->ndisks; i++)
		json_array_append_new(drives, cfgjson_dump_drive(&cfg->disks[i]));
	json_object_set_new(root, "drives", drives);
	for (unsigned i = 0; i < cfg->nnets; i++)
		json_array_append_new(nets, dump_net(&cfg->nets[i]));
	json_object_set_new(root, "network-interfaces", nets);
	if (cfg->has_logger)
		json_object_set_new(root, "logger", dump_logger(&cfg->logger));
	if (cfg->metrics_path)
		json_object_set_new(root, "metrics",
				    json_pack("{s:s}", "metrics_path", cfg->metrics_path));
	if (cfg->balloon.enabled)
		json_object_set_new(root, "balloon", cfgjson_dump_balloon(&cfg->balloon));
	json_object_set_new(root, "vmm-options", dump_options(cfg));
	return root;
}
