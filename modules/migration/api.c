/*
 * The module's endpoints, Firecracker's shapes:
 *
 *   PUT /snapshot/create  {snapshot_path, mem_file_path, snapshot_type?: Full|Diff}
 *   PUT /snapshot/load    {snapshot_path, mem_backend: {backend_type: File|Uffd,
 *                          backend_path} (or mem_file_path), resume_vm?,
 *                          track_dirty_pages? (enable_diff_snapshots?)}
 *   PUT /migration        {uri, max_bandwidth_mib_s?, max_downtime_ms?, copy_disks?}
 *   GET /migration
 *   PUT /migration/cancel
 *
 * Bodies are checked strictly (unknown fields and wrong types refused with
 * the field's name) before anything else happens.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/config_json.h"
#include "api/router.h"
#include "config.h"
#include "log.h"
#include "mig.h"
#include "vcpu.h"
#include "vmm.h"

/* ---- body fields ---- */

enum ftype { FT_STRING, FT_BOOL, FT_UINT, FT_OBJECT };

struct field {
	const char *name;
	enum ftype type;
	bool required;
};

static const char *type_name(enum ftype t)
{
	return t == FT_STRING ? "a string"
	       : t == FT_BOOL ? "a boolean"
	       : t == FT_UINT ? "a non-negative integer"
			      : "an object";
}

static bool type_ok(const json_t *v, enum ftype t)
{
	switch (t) {
	case FT_STRING:
		return json_is_string(v) && json_string_length(v) > 0;
	case FT_BOOL:
		return json_is_boolean(v);
	case FT_UINT:
		return json_is_integer(v) && json_integer_value(v) >= 0;
	case FT_OBJECT:
		return json_is_object(v);
	}
	return false;
}

/* Every key known, every known one of its type, the required ones there.
 * `where` prefixes the field names ("mem_backend."). */
static bool check_fields(const json_t *body, const char *where, const struct field *f, size_t nf,
			 struct api_response *resp)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)body, k, v)
	{
		size_t i = 0;
		while (i < nf && strcmp(f[i].name, k))
			i++;
		if (i == nf) {
			api_fault(resp, 400, "%s%.64s: unknown field", where, k);
			return false;
		}
		if (!json_is_null(v) && !type_ok(v, f[i].type)) {
			api_fault(resp, 400, "%s%s: expected %s", where, k, type_name(f[i].type));
			return false;
		}
	}
	for (size_t i = 0; i < nf; i++) {
		json_t *x = json_object_get(body, f[i].name);
		if (f[i].required && (!x || json_is_null(x))) {
			api_fault(resp, 400, "%s%s: missing (required)", where, f[i].name);
			return false;
		}
	}
	return true;
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static bool flag(const json_t *o, const char *k, bool dflt)
{
	json_t *v = json_object_get(o, k);
	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static struct vm *the_vm(struct api_ctx *ctx, struct api_response *resp)
{
	struct vm *vm = ctx->ops->vm ? ctx->ops->vm(ctx->vmm) : NULL;
	if (!vm)
		api_fault(resp, 400, "no microVM behind this API");
	return vm;
}

/* ---- PUT /snapshot/create ---- */

static void h_snapshot_create(struct api_ctx *ctx, const struct api_request *req,
			      struct api_response *resp)
{
	static const struct field f[] = {
	    {"snapshot_path", FT_STRING, true},
	    {"mem_file_path", FT_STRING, true},
	    {"snapshot_type", FT_STRING, false},
	    {"version", FT_STRING, false}, /* older Firecracker clients send it */
	};
	if (!check_fields(req->body, "", f, sizeof(f) / sizeof(f[0]), resp))
		return;
	const char *type = str(req->body, "snapshot_type");
	if (type && strcmp(type, "Full") && strcmp(type, "Diff")) {
		api_fault(resp, 400, "snapshot_type: '%.40s' is not one of Full, Diff", type);
		return;
	}
	struct vm *vm = the_vm(ctx, resp);
	if (!vm)
		return;
	enum api_vm_state st = ctx->ops->state(ctx->vmm);
	if (st != API_VM_PAUSED) {
		api_fault(resp, 400,
			  "the microVM is %s: a snapshot is created from a paused microVM "
			  "(PATCH /vm {\"state\": \"Paused\"} first)",
			  st == API_VM_RUNNING ? "running" : "not started");
		return;
	}
	if (mig_busy(vm)) {
		api_fault(resp, 400,
			  "a migration (outgoing, or incoming and not done) is in progress");
		return;
	}
	char why[512];
	if (snapshot_create(vm, str(req->body, "snapshot_path"), str(req->body, "mem_file_path"),
			    type && !strcmp(type, "Diff"), why, sizeof(why)) < 0) {
		api_fault(resp, 400, "snapshot not created: %s", why);
		return;
	}
	resp->status = 204;
}

/* ---- PUT /snapshot/load ---- */

struct load_req {
	const char *state, *mem;
	bool uffd, resume;
	int track; /* -1: as saved */
};

static bool parse_load(const json_t *body, struct load_req *l, struct api_response *resp)
{
	static const struct field f[] = {
	    {"snapshot_path", FT_STRING, true},	   {"mem_file_path", FT_STRING, false},
	    {"mem_backend", FT_OBJECT, false},	   {"resume_vm", FT_BOOL, false},
	    {"track_dirty_pages", FT_BOOL, false}, {"enable_diff_snapshots", FT_BOOL, false},
	};
	static const struct field fb[] = {
	    {"backend_type", FT_STRING, true},
	    {"backend_path", FT_STRING, true},
	};
	if (!check_fields(body, "", f, sizeof(f) / sizeof(f[0]), resp))
		return false;
	const json_t *mb = json_object_get(body, "mem_backend");
	l->state = str(body, "snapshot_path");
	l->mem = str(body, "mem_file_path");
	if (json_is_object(mb) == (l->mem != NULL)) {
		api_fault(resp, 400, "give exactly one of mem_backend and mem_file_path");
		return false;
	}
	if (json_is_object(mb)) {
		if (!check_fields(mb, "mem_backend.", fb, 2, resp))
			return false;
		const char *t = str(mb, "backend_type");
		if (strcmp(t, "File") && strcmp(t, "Uffd")) {
			api_fault(resp, 400,
				  "mem_backend.backend_type: '%.40s' is not one of File, Uffd", t);
			return false;
		}
		l->uffd = !strcmp(t, "Uffd");
		l->mem = str(mb, "backend_path");
	}
	l->resume = flag(body, "resume_vm", false);
	json_t *t = json_object_get(body, "track_dirty_pages");
	if (!json_is_boolean(t))
		t = json_object_get(body, "enable_diff_snapshots");
	l->track = json_is_boolean(t) ? json_is_true(t) : -1;
	return true;
}

/* The parts of the configuration a load replaces, to put back if the
 * start fails before anything is built. */
struct cfg_backup {
	json_t *json;
	bool had_kernel, had_balloon;
};

static void backup(const struct vm_config *cfg, struct cfg_backup *b)
{
	b->json = cfgjson_dump(cfg);
	b->had_kernel = cfg->kernel != NULL;
	b->had_balloon = cfg->balloon.enabled;
	json_object_del(b->json, "logger");
	json_object_del(b->json, "metrics");
}

static void roll_back(struct vm_config *cfg, struct cfg_backup *b)
{
	struct cfg_err err;
	if (b->json)
		cfgjson_apply(b->json, cfg, &err);
	if (!b->had_kernel)
		vm_config_set_str(&cfg->kernel, NULL);
	cfg->balloon.enabled = b->had_balloon;
	vm_config_set_str(&cfg->restore_snapshot, NULL);
	vm_config_set_str(&cfg->restore_mem, NULL);
	cfg->restore_uffd = cfg->restore_paused = false;
}

static int set_restore(struct vm_config *cfg, const struct load_req *l)
{
	if (vm_config_set_str(&cfg->restore_snapshot, l->state) < 0 ||
	    vm_config_set_str(&cfg->restore_mem, l->mem) < 0)
		return -1;
	cfg->restore_uffd = l->uffd;
	cfg->restore_paused = !l->resume;
	if (l->track >= 0)
		cfg->track_dirty_pages = l->track;
	return 0;
}

static void h_snapshot_load(struct api_ctx *ctx, const struct api_request *req,
			    struct api_response *resp)
{
	struct load_req l = {0};
	struct vm *vm;
	if (!parse_load(req->body, &l, resp) || !(vm = the_vm(ctx, resp)))
		return;
	if (ctx->ops->state(ctx->vmm) != API_VM_NOT_STARTED) {
		api_fault(resp, 400, "a snapshot loads into a microVM that has not started");
		return;
	}
	if (ctx->cfg->incoming) {
		api_fault(resp, 400, "this VMM waits for an incoming migration (--incoming)");
		return;
	}
	char why[600];
	struct snapshot s;
	struct mig_vm *mv = mig_vm_get(vm);
	if (!mv) {
		api_fault(resp, 500, "out of memory");
		return;
	}
	if (snapshot_open(l.state, l.mem, l.uffd, &s, why, sizeof(why)) < 0) {
		api_fault(resp, 400, "%s", why); /* nothing changed */
		return;
	}
	struct cfg_backup b;
	backup(ctx->cfg, &b);
	int rc = snapshot_apply_config(&s, ctx->cfg, why, sizeof(why));
	/* The restore takes it from here: no second read of the file. */
	snapshot_close(&mv->restore);
	mv->restore = s;
	mv->opened = true;
	if (rc == 0 && set_restore(ctx->cfg, &l) < 0) {
		snprintf(why, sizeof(why), "out of memory");
		rc = -1;
	}
	bool fatal = false;
	if (rc == 0)
		rc = ctx->ops->start(ctx->vmm, &fatal, why, sizeof(why));
	if (rc < 0 && !fatal) {
		roll_back(ctx->cfg, &b);
		snapshot_close(&mv->restore);
		mv->opened = false;
	}
	json_decref(b.json);
	if (rc < 0) {
		api_fault(resp, 400, "cannot load the snapshot: %s%s", why,
			  fatal ? " (the VMM cannot recover and exits)" : "");
		return;
	}
	resp->status = 204;
}

/* ---- routing ---- */

struct route {
	const char *path;
	struct {
		int method;
		module_api_handler fn;
	} ops[2];
};

static const struct route routes[] = {
    {"/snapshot/create", {{HTTP_PUT, h_snapshot_create}}},
    {"/snapshot/load", {{HTTP_PUT, h_snapshot_load}}},
    {"/migration", {{HTTP_PUT, h_migration_start}, {HTTP_GET, h_migration_status}}},
    {"/migration/cancel", {{HTTP_PUT, h_migration_cancel}}},
};

static bool owned(const char *path, size_t len)
{
	static const char *const prefixes[] = {"/snapshot/", "/migration"};
	for (size_t i = 0; i < 2; i++) {
		size_t n = strlen(prefixes[i]);
		if (len >= n && !memcmp(path, prefixes[i], n) &&
		    (prefixes[i][n - 1] == '/' || len == n || path[n] == '/'))
			return true;
	}
	return false;
}

module_api_handler mig_api_route(int method, const char *path, size_t len, bool has_query,
				 struct api_request *req, struct api_response *resp)
{
	(void)req;
	if (!owned(path, len))
		return NULL;
	const struct route *r = NULL;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strlen(routes[i].path) == len && !memcmp(routes[i].path, path, len))
			r = &routes[i];
	if (!r) {
		api_fault(resp, 404, "no such path: %.*s", (int)(len > 100 ? 100 : len), path);
		return NULL;
	}
	if (has_query) {
		api_fault(resp, 400, "%s takes no query string", r->path);
		return NULL;
	}
	for (size_t i = 0; i < 2 && r->ops[i].fn; i++)
		if (r->ops[i].method == method)
			return r->ops[i].fn;
	snprintf(resp->allow, sizeof(resp->allow), "%s%s%s", http_method_name(r->ops[0].method),
		 r->ops[1].fn ? ", " : "", r->ops[1].fn ? http_method_name(r->ops[1].method) : "");
	api_fault(resp, 405, "method %s is not allowed here (allowed: %s)",
		  http_method_name((enum http_method)method), resp->allow);
	return NULL;
}
