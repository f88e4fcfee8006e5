/*
 * The JSON shape of a VM configuration, Firecracker's: the config file,
 * GET /vm/config and the body of every PUT/PATCH that configures the VM
 * go through these functions, so the three always agree.
 *
 *   { "boot-source": {...}, "machine-config": {...}, "drives": [...],
 *     "network-interfaces": [...], "balloon": {...}, "logger": {...},
 *     "metrics": {...}, "vmm-options": {...} }   (the last one is ours)
 *
 * Parsing is strict: unknown fields, wrong types and out-of-range values
 * are refused with a message naming the JSON path ("drives[1].is_read_only:
 * expected a boolean"). Optional fields may be null (= absent). The
 * parse functions validate everything before they change anything.
 */
#ifndef VMM_API_CONFIG_JSON_H
#define VMM_API_CONFIG_JSON_H

#include <jansson.h>
#include <stdbool.h>

#include "../vmm.h"

/* Parse errors: "<path>: <problem>". */
struct cfg_err {
	char msg[320];
};

/* boot-source; the strings are borrowed from the JSON value. */
struct boot_source_cfg {
	const char *kernel;
	const char *initrd;  /* NULL: none */
	const char *cmdline; /* NULL: the default */
};
bool cfgjson_boot_source(const json_t *v, const char *where, struct boot_source_cfg *out,
			 struct cfg_err *err);
/* Store it in cfg; false when out of memory (cfg unchanged). */
bool cfgjson_commit_boot_source(struct vm_config *cfg, const struct boot_source_cfg *bs);

struct machine_cfg {
	uint64_t mem_mib;
	unsigned cpus;
	bool track_dirty_pages;
	enum huge_pages huge_pages;
};
/* PUT (partial = false: vcpu_count and mem_size_mib required, the rest
 * back to defaults) or PATCH (partial: only what is given changes, at
 * least one field). `out` starts from cfg's current values. */
bool cfgjson_machine(const json_t *v, const char *where, bool partial, const struct vm_config *cfg,
		     struct machine_cfg *out, struct cfg_err *err);
void cfgjson_commit_machine(struct vm_config *cfg, const struct machine_cfg *m);

/* One drive (PUT /drives/{id} body, or an element of "drives"). path_id:
 * the id from the URL (the body's drive_id must match), or NULL. */
bool cfgjson_drive(const json_t *v, const char *where, const char *path_id, struct disk_config *out,
		   struct cfg_err *err);
/* PATCH /drives/{id}: drive_id and path_on_host (the new backing file). */
bool cfgjson_drive_patch(const json_t *v, const char *path_id, const char **path,
			 struct cfg_err *err);

/* PATCH /network-interfaces/{id}: iface_id and rate limiters, which are
 * not supported: always false, with the reason. */
bool cfgjson_net_patch(const json_t *v, const char *path_id, struct cfg_err *err);
bool cfgjson_net(const json_t *v, const char *where, const char *path_id, struct net_config *out,
		 struct cfg_err *err);

/* balloon (PUT /balloon, the config file's "balloon"): amount_mib and
 * deflate_on_oom required; stats_polling_interval_s (0: no statistics),
 * free_page_reporting; free_page_hinting only false (not supported). The
 * size against RAM is checked at boot. */
bool cfgjson_balloon(const json_t *v, const char *where, struct balloon_config *out,
		     struct cfg_err *err);
/* PATCH /balloon: {amount_mib}. */
bool cfgjson_balloon_update(const json_t *v, uint32_t *amount_mib, struct cfg_err *err);
/* PATCH /balloon/statistics: {stats_polling_interval_s}. */
bool cfgjson_balloon_stats_update(const json_t *v, uint32_t *secs, struct cfg_err *err);

/* logger; log_path borrowed. */
bool cfgjson_logger(const json_t *v, const char *where, struct logger_config *out,
		    const char **path, struct cfg_err *err);
/* metrics: metrics_path (required), borrowed. */
bool cfgjson_metrics(const json_t *v, const char *where, const char **path, struct cfg_err *err);

/* A whole configuration (config file) applied on top of cfg: each section
 * present replaces what cfg had for it. */
bool cfgjson_apply(const json_t *root, struct vm_config *cfg, struct cfg_err *err);
/* Read and apply a config file; err names the file ("FILE: ...", or
 * "FILE:LINE:COLUMN: ..." for a JSON syntax error). */
bool cfgjson_load_file(const char *path, struct vm_config *cfg, struct cfg_err *err);

/* The same shape back (GET /vm/config), and the machine-config part. */
json_t *cfgjson_dump(const struct vm_config *cfg);
json_t *cfgjson_dump_machine(const struct vm_config *cfg);
/* machine-config's huge_pages value: "None", "2M", "1G", "Transparent". */
const char *cfgjson_huge_pages_name(enum huge_pages hp);
json_t *cfgjson_dump_drive(const struct disk_config *d);
json_t *cfgjson_dump_balloon(const struct balloon_config *b);

#endif
