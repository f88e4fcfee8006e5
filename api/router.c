#include "router.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../config.h"
#include "../module.h"
#include "handlers.h"

/* clang-format off */
static const struct api_route routes[] = {
	{ "/", false, false, { { HTTP_GET, h_get_instance } } },
	{ "/version", false, false, { { HTTP_GET, h_get_version } } },
	{ "/boot-source", false, false, { { HTTP_PUT, h_put_boot_source } } },
	{ "/machine-config", false, false,
	  { { HTTP_GET, h_get_machine }, { HTTP_PUT, h_put_machine }, { HTTP_PATCH, h_patch_machine } } },
	{ "/drives/", true, false, { { HTTP_PUT, h_put_drive }, { HTTP_PATCH, h_patch_drive } } },
	{ "/network-interfaces/", true, false, { { HTTP_PUT, h_put_net }, { HTTP_PATCH, h_patch_net } } },
	{ "/actions", false, false, { { HTTP_PUT, h_put_actions } } },
	{ "/vm", false, false, { { HTTP_PATCH, h_patch_vm } } },
	{ "/vm/config", false, false, { { HTTP_GET, h_get_vm_config } } },
	{ "/balloon", false, false,
	  { { HTTP_GET, h_get_balloon }, { HTTP_PUT, h_put_balloon },
	    { HTTP_PATCH, h_patch_balloon } } },
	{ "/balloon/statistics", false, false,
	  { { HTTP_GET, h_get_balloon_stats }, { HTTP_PATCH, h_patch_balloon_stats } } },
	{ "/logger", false, false, { { HTTP_PUT, h_put_logger } } },
	{ "/metrics", false, false, { { HTTP_PUT, h_put_metrics } } },
	/* Ours, not Firecracker's. */
	{ "/vm/info", false, false, { { HTTP_GET, h_get_vm_info } } },
	{ "/debug/memory", false, true, { { HTTP_GET, h_get_debug_memory } } },
};
/* clang-format on */

/* Firecracker endpoints this VMM does not implement yet (prefixes). */
static const char *const unsupported[] = {
    "/balloon/hinting/", "/vsock", "/mmds",     "/entropy",
    "/serial",	"/cpu-config", "/pmem/", "/hotplug/",
};

void api_fault(struct api_response *resp, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(resp->fault, sizeof(resp->fault), fmt, ap);
	va_end(ap);
	resp->status = status;
}

static bool path_is(const char *path, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(path, lit, len) == 0;
}

static bool path_starts(const char *path, size_t len, const char *prefix)
{
	size_t plen = strlen(prefix);
	return len >= plen && memcmp(path, prefix, plen) == 0;
}

/* The route whose path matches (for id routes: also the bare collection
 * path, e.g. "/drives", which then has no id). */
static const struct api_route *find_route(const char *path, size_t len, bool *bare)
{
	*bare = false;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct api_route *r = &routes[i];
		if (!r->has_id && path_is(path, len, r->path))
			return r;
		if (r->has_id && path_starts(path, len, r->path))
			return r;
		if (r->has_id && len == strlen(r->path) - 1 && !memcmp(path, r->path, len)) {
			*bare = true;
			return r;
		}
	}
	return NULL;
}

static void allow_list(const struct api_route *r, char *out, size_t size)
{
	out[0] = 0;
	for (size_t i = 0; i < 3 && r->ops[i].fn; i++) {
		size_t n = strlen(out);
		snprintf(out + n, size - n, "%s%s", i ? ", " : "",
			 http_method_name(r->ops[i].method));
	}
}

/* The {id} part of an id route: one path segment, a valid id. */
static bool take_id(const struct api_route *r, const char *path, size_t len,
		    struct api_request *req, struct api_response *resp)
{
	bool drive = strcmp(r->path, "/drives/") == 0;
	const char *what = drive ? "drive_id" : "iface_id";
	size_t max = drive ? VMM_ID_MAX : VMM_NET_ID_MAX;
	size_t plen = strlen(r->path), idlen = len - plen;
	if (idlen == 0) {
		api_fault(resp, 400, "missing %s: use %s{%s}", what, r->path, what);
		return false;
	}
	if (idlen > max) {
		api_fault(resp, 400, "invalid %s in the path: longer than %zu characters", what,
			  max);
		return false;
	}
	memcpy(req->id, path + plen, idlen);
	req->id[idlen] = 0;
	if (!vm_config_valid_id(req->id, max)) {
		api_fault(resp, 400,
			  "invalid %s in the path: '%s' (use 1..%zu characters of A-Z a-z 0-9 _ -)",
			  what, req->id, max);
		return false;
	}
	return true;
}

api_handler api_route(enum http_method method, const char *path, size_t path_len, bool has_query,
		      struct api_request *req, struct api_response *resp)
{
	bool bare;
	const struct api_route *r = find_route(path, path_len, &bare);
	if (!r) {
		/* Paths of compile-time modules (or "not built in"). */
		api_handler mfn = modules_api_route((int)method, path, path_len, has_query, req, resp);
		if (mfn || resp->status)
			return mfn;
		for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
			if (path_starts(path, path_len, unsupported[i])) {
				api_fault(resp, 400, "%.*s is not supported by this VMM yet",
					  (int)(path_len > 100 ? 100 : path_len), path);
				return NULL;
			}
		}
		api_fault(resp, 404, "no such path: %.*s", (int)(path_len > 100 ? 100 : path_len),
			  path);
		return NULL;
	}
	api_handler fn = NULL;
	for (size_t i = 0; i < 3 && r->ops[i].fn; i++)
		if (r->ops[i].method == method)
			fn = r->ops[i].fn;
	if (!fn) {
		allow_list(r, resp->allow, sizeof(resp->allow));
		api_fault(resp, 405, "method %s is not allowed here (allowed: %s)",
			  http_method_name(method), resp->allow);
		return NULL;
	}
	if (has_query && !r->query) {
		api_fault(resp, 400, "%s takes no query string", r->path);
		return NULL;
	}
	/* A bare collection path ("/drives") has an empty id: refused. */
	if (r->has_id && !take_id(r, path, bare ? strlen(r->path) : path_len, req, resp))
		return NULL;
	return fn;
}

bool api_parse_body(enum http_method method, const char *body, size_t len, bool has_length,
		    json_t **out, struct api_response *resp)
{
	*out = NULL;
	if (method != HTTP_PUT && method != HTTP_PATCH) {
		if (len == 0)
			return true;
		api_fault(resp, 400, "%s takes no body", http_method_name(method));
		return false;
	}
	if (!has_length || len == 0) {
		api_fault(resp, 400, "a JSON object body is required");
		return false;
	}
	json_error_t je;
	json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!v) {
		api_fault(resp, 400, "invalid JSON body: %s (line %d, column %d)", je.text, je.line,
			  je.column);
		return false;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		api_fault(resp, 400, "the body must be a JSON object");
		return false;
	}
	*out = v;
	return true;
}
