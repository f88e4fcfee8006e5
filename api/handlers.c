/*
 * The endpoints. Each handler checks the VM's state (pre-boot vs
 * post-boot rules), parses its body through config_json.c, and changes
 * the configuration or asks the VMM (ctx->ops) to act.
 */
#include "handlers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../config.h"
#include "../log.h"
#include "config_json.h"

static const char *state_name(enum api_vm_state s)
{
	switch (s) {
	case API_VM_NOT_STARTED:
		return "Not started";
	case API_VM_RUNNING:
		return "Running";
	case API_VM_PAUSED:
		return "Paused";
	}
	return "?";
}

static enum api_vm_state state(struct api_ctx *ctx)
{
	return ctx->ops->state(ctx->vmm);
}

static void reply(struct api_response *resp, json_t *body)
{
	if (!body) {
		api_fault(resp, 500, "out of memory");
		return;
	}
	resp->status = 200;
	resp->body = body;
}

static void no_content(struct api_response *resp)
{
	resp->status = 204;
}

/* Configuration that only InstanceStart uses: refused once it ran. */
static bool pre_boot(struct api_ctx *ctx, struct api_response *resp, const char *what)
{
	enum api_vm_state s = state(ctx);
	if (s == API_VM_NOT_STARTED)
		return true;
	api_fault(resp, 400, "the microVM is %s: %s can only be set before InstanceStart",
		  s == API_VM_PAUSED ? "paused" : "running", what);
	return false;
}

static bool post_boot(struct api_ctx *ctx, struct api_response *resp, const char *what)
{
	if (state(ctx) != API_VM_NOT_STARTED)
		return true;
	api_fault(resp, 400, "the microVM has not started: %s needs a started microVM (%s)", what,
		  "PUT /actions {\"action_type\": \"InstanceStart\"} first");
	return false;
}

/* A host file the VMM will open: it must exist, be readable (and
 * writable unless ro), and be a regular file (or a block device when
 * block_ok). */
static bool check_host_file(const char *field, const char *path, bool ro, bool block_ok,
			    struct api_response *resp)
{
	int fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		api_fault(resp, 400, "%s '%s': %s", field, path, strerror(errno));
		return false;
	}
	struct stat st;
	bool ok = fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || (block_ok && S_ISBLK(st.st_mode)));
	close(fd);
	if (!ok)
		api_fault(resp, 400, "%s '%s': not a regular file%s", field, path,
			  block_ok ? " or block device" : "");
	return ok;
}

/* ---- GET / and /version ---- */

API_HANDLER(h_get_instance)
{
	(void)req;
	const char *id = ctx->cfg->id ? ctx->cfg->id : VMM_DEFAULT_ID;
	reply(resp, json_pack("{s:s, s:s, s:s, s:s}", "id", id, "state", state_name(state(ctx)),
			      "vmm_version", VMM_VERSION, "app_name", "vmm"));
}

API_HANDLER(h_get_version)
{
	(void)ctx, (void)req;
	reply(resp, json_pack("{s:s}", "vmm_version", VMM_VERSION));
}

/* ---- boot source, machine ---- */

API_HANDLER(h_put_boot_source)
{
	struct boot_source_cfg bs;
	struct cfg_err err;
	if (!pre_boot(ctx, resp, "boot-source"))
		return;
	if (!cfgjson_boot_source(req->body, "", &bs, &err)) {
		api_fault(resp, 400, "%s", err.msg);
		return;
	}
	if (!check_host_file("kernel_image_path", bs.kernel, true, false, resp) ||
	    (bs.initrd && !check_host_file("initrd_path", bs.initrd, true, false, resp)))
		return;
	if (!cfgjson_commit_boot_source(ctx->cfg, &bs)) {
		api_fault(resp, 500, "out of memory");
		return;
	}
	no_content(resp);
}

API_HANDLER(h_get_machine)
{
	(void)req;
	reply(resp, cfgjson_dump_machine(ctx->cfg));
}

static void put_machine(struct api_ctx *ctx, const struct api_request *req,
			struct api_response *resp, bool partial)
{
	struct machine_cfg m;
	struct cfg_err err;
	if (!pre_boot(ctx, resp, "machine-config"))
		return;
	if (!cfgjson_machine(req->body, "", partial, ctx->cfg, &m, &err)) {
		api_fault(resp, 400, "%s", err.msg);
		return;
	}
	cfgjson_commit_machine(ctx->cfg, &m);
	no_content(resp);
}

API_HANDLER(h_put_machine)
{
	put_machine(ctx, req, resp, false);
}

API_HANDLER(h_patch_machine)
{
	put_machine(ctx, req, resp, true);
}

/* ---- drives ---- */

API_HANDLER(h_put_drive)
{
	struct disk_config d;
	struct cfg_err err;
	char why[200];
	if (!pre_boot(ctx, resp, "drives (use PATCH to change a running drive's backing file)"))
		return;
	if (!cfgjson_drive(req->body, "", req->id, &d, &err)) {
		api_fault(resp, 400, "%s", err.msg);
		return;
	}
	if (!check_host_file("path_on_host", d.path, d.ro, true, resp))
		return;
	if (!vm_config_put_disk(ctx->cfg, &d, why, sizeof(why))) {
		api_fault(resp, 400, "%s", why);
		return;
	}
	no_content(resp);
}

API_HANDLER(h_patch_drive)
{
	const char *path;
	struct cfg_err err;
	char why[300];
	if (state(ctx) == API_VM_NOT_STARTED) {
		api_fault(resp, 400,
			  "PATCH /drives changes a started microVM's drive: before "
			  "InstanceStart, use PUT");
		return;
	}
	if (!cfgjson_drive_patch(req->body, req->id, &path, &err)) {
		api_fault(resp, 400, "%s", err.msg);
		return;
	}
	int i = vm_config_find_disk(ctx->cfg, req->id);
	if (i < 0) {
		api_fault(resp, 400, "no drive with drive_id '%s'", req->id);
		return;
	}
	struct disk_config *d = &ctx->cfg->disks[i];
	if (!check_host_file("path_on_host", path, d->ro, true, resp))
		return;
	if (ctx->ops->swap_drive(ctx->vmm, (unsigned)i, path, why, sizeof(why)) < 0) {
		api_fault(resp, 400, "drive '%s': %s", d->id, why);
		return;
	}
	snprintf(d->path, sizeof(d->path), "%s", path);
	no_content(resp);
}

/* ---- network interfaces ---- */

API_HANDLER(h_put_net)
{
	struct net_config n;
	struct cfg_err err;
	char why[200];
	if (!pre_boot(ctx, resp, "network-interfaces"))
		return;
	if (!cfgjson_net(req->body, "", req->id, &n, &err)) {
		api_fault(resp, 400, "%s", err.msg);
		return;
	}
	if (!vm_config_put_net(ctx->cfg, &n, why, sizeof(why))) {
		api_fault(resp, 400, "%s", why);
		return;
	}
	no_content(resp);
}

API_HANDLER(h_patch_net)
{
	struct cfg_err err;
	if (state(ctx) == API_VM_NOT_STARTED) {
		api_fault(resp, 400,
			  "PATCH /network-interfaces updates a started microVM's "
			  "interface: before InstanceStart, use PUT");
		return;
	}
	if (vm_config_find_net(ctx->cfg, req->id) < 0) {
		api_fault(resp, 400, "no network interface with iface_id '%s'", req->id);
		return;
	}
	/* Only rate limiters can change, and there are none yet. */
	cfgjson_net_patch(req->body, req->id, &err);
	api_fault(resp, 400, "%s", err.msg);
}

/* ---- balloon ---- */

static bool balloon_configured(struct api_ctx *ctx, struct api_response *resp)
{
	if (ctx->cfg->balloon.enabled)
		return true;
	api_fault(resp, 400, "no balloon device is configured (PUT /balloon before InstanceStart)");
	return false;
}

static bool balloon_fits(struct api_ctx *ctx, uint32_t amount_mib, struct api_response *resp)
{
	char why[200];
	if (vm_config_balloon_fits(ctx->cfg, amount_mib, why, sizeof(why)))
		return true;
	api_fault(resp, 400, "%s", why);
	return false;
}

API_HANDLER(h_get_balloon)
{
	(void)req;
	if (balloon_configured(ctx, resp))
		reply(resp, cfgjson_dump_balloon(&ctx->cfg->balloon));
}

API_HANDLER(h_put_balloon)
{
	struct balloon_config b;
	struct cfg_err err;
	if (!pre_boot(ctx, resp, "the balloon (PATCH /balloon changes a running balloon's target)"))
		return;
	if (!cfgjson_balloon(req->body, "", &b, &err)) {
		api_fault(resp, 400, "%s", err.msg);
		return;
	}
	if (!balloon_fits(ctx, b.amount_mib, resp))
		return;
	ctx->cfg->balloon = b;
	no_content(resp);
}

/* Before InstanceStart: the configured size; after: the running target. */
API_HANDLER(h_patch_balloon)
{
	struct cfg_err err;
	char why[200];
	if (!balloon_configured(ctx, resp))
		return;
	uint32_t mib = ctx->cfg->balloon.amount_mib;
	if (!cfgjson_balloon_update(req->body, &mib, &err)) {
		api_fault(resp, 400, "%s", err.msg);
		return;
	}
	if (!balloon_fits(ctx, mib, resp))
		return;
	if (state(ctx) != API_VM_NOT_STARTED &&
	    ctx->ops->balloon_set_target(ctx->vmm, mib, why, sizeof(why)) < 0) {
		api_fault(resp, 400, "balloon: %s", why);
		return;
	}
	ctx->cfg->balloon.amount_mib = mib;
	no_content(resp);
}

static bool balloon_stats_enabled(struct api_ctx *ctx, struct api_response *resp)
{
	if (ctx->cfg->balloon.stats_interval_s)
		return true;
	api_fault(resp, 400,
		  "balloon statistics are not enabled: stats_polling_interval_s must be above 0 "
		  "at InstanceStart");
	return false;
}

API_HANDLER(h_get_balloon_stats)
{
	(void)req;
	if (!balloon_configured(ctx, resp) || !balloon_stats_enabled(ctx, resp) ||
	    !post_boot(ctx, resp, "balloon statistics"))
		return;
	reply(resp, ctx->ops->balloon_stats(ctx->vmm));
}

/* Before InstanceStart anything goes; after it, statistics can neither
 * start nor stop (the statistics queue exists or not), only change pace. */
API_HANDLER(h_patch_balloon_stats)
{
	struct cfg_err err;
	char why[200];
	if (!balloon_configured(ctx, resp))
		return;
	uint32_t secs = 0;
	if (!cfgjson_balloon_stats_update(req->body, &secs, &err)) {
		api_fault(resp, 400, "%s", err.msg);
		return;
	}
	if (state(ctx) != API_VM_NOT_STARTED) {
		if (!balloon_stats_enabled(ctx, resp))
			return;
		if (secs == 0) {
			api_fault(resp, 400,
				  "balloon statistics cannot be turned off after InstanceStart "
				  "(stats_polling_interval_s must stay above 0)");
			return;
		}
		if (ctx->ops->balloon_set_stats_interval(ctx->vmm, secs, why, sizeof(why)) < 0) {
			api_fault(resp, 400, "balloon: %s", why);
			return;
		}
	}
	ctx->cfg->balloon.stats_interval_s = secs;
	no_content(resp);
}

/* ---- actions, pause / resume ---- */

static void instance_start(struct api_ctx *ctx, struct api_response *resp)
{
	char why[1024]; /* the whole message: nesting's names every missing piece */
	bool fatal = false;
	if (state(ctx) != API_VM_NOT_STARTED) {
		api_fault(resp, 400, "the microVM is already running: InstanceStart happens once");
		return;
	}
	if (!vm_config_bootable(ctx->cfg, why, sizeof(why))) {
		api_fault(resp, 400, "cannot start: %s", why);
		return;
	}
	if (ctx->ops->start(ctx->vmm, &fatal, why, sizeof(why)) < 0) {
		api_fault(resp, 400, "cannot start: %s%s", why,
			  fatal ? " (the VMM cannot recover and exits)" : "");
		return;
	}
	no_content(resp);
}

static void send_ctrl_alt_del(struct api_ctx *ctx, struct api_response *resp)
{
	char why[200];
	if (!post_boot(ctx, resp, "SendCtrlAltDel"))
		return;
	if (ctx->ops->ctrl_alt_del(ctx->vmm, why, sizeof(why)) < 0) {
		api_fault(resp, 400, "SendCtrlAltDel: %s", why);
		return;
	}
	no_content(resp);
}

static void flush_metrics(struct api_ctx *ctx, struct api_response *resp)
{
	char why[200];
	if (metrics_flush(ctx, why, sizeof(why)) < 0) {
		api_fault(resp, 400, "FlushMetrics: %s", why);
		return;
	}
	no_content(resp);
}

/* The body holds exactly one string field `key` (and nothing else). */
static const char *only_string(const json_t *body, const char *key, struct api_response *resp)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)body, k, v)
	{
		if (strcmp(k, key) != 0) {
			api_fault(resp, 400, "%s: unknown field", k);
			return NULL;
		}
	}
	v = json_object_get(body, key);
	if (!v) {
		api_fault(resp, 400, "%s: missing (required)", key);
		return NULL;
	}
	if (!json_is_string(v)) {
		api_fault(resp, 400, "%s: expected a string", key);
		return NULL;
	}
	return json_string_value(v);
}

API_HANDLER(h_put_actions)
{
	const char *action = only_string(req->body, "action_type", resp);
	if (!action)
		return;
	if (!strcmp(action, "InstanceStart"))
		instance_start(ctx, resp);
	else if (!strcmp(action, "SendCtrlAltDel"))
		send_ctrl_alt_del(ctx, resp);
	else if (!strcmp(action, "FlushMetrics"))
		flush_metrics(ctx, resp);
	else
		api_fault(resp, 400,
			  "action_type: '%.40s' is not one of InstanceStart, SendCtrlAltDel, "
			  "FlushMetrics",
			  action);
}

API_HANDLER(h_patch_vm)
{
	char why[200];
	const char *want = only_string(req->body, "state", resp);
	if (!want)
		return;
	bool pause = !strcmp(want, "Paused");
	if (!pause && strcmp(want, "Resumed")) {
		api_fault(resp, 400, "state: '%.40s' is not one of Paused, Resumed", want);
		return;
	}
	if (!post_boot(ctx, resp, pause ? "pausing" : "resuming"))
		return;
	int rc = pause ? ctx->ops->pause(ctx->vmm, why, sizeof(why))
		       : ctx->ops->resume(ctx->vmm, why, sizeof(why));
	if (rc < 0) {
		api_fault(resp, 500, "%s: %s", pause ? "pause" : "resume", why);
		return;
	}
	no_content(resp);
}

/* ---- configuration and information ---- */

API_HANDLER(h_get_vm_config)
{
	(void)req;
	reply(resp, cfgjson_dump(ctx->cfg));
}

API_HANDLER(h_get_vm_info)
{
	(void)req;
	const char *id = ctx->cfg->id ? ctx->cfg->id : VMM_DEFAULT_ID;
	json_t *o = json_pack("{s:s, s:s, s:I, s:I}", "id", id, "state", state_name(state(ctx)),
			      "mem_size_mib", (json_int_t)ctx->cfg->mem_mib, "vcpu_count",
			      (json_int_t)ctx->cfg->cpus);
	json_t *more = ctx->ops->info(ctx->vmm);
	if (o && more)
		json_object_update(o, more);
	json_decref(more);
	reply(resp, o);
}

/* ---- logger, metrics ---- */

API_HANDLER(h_put_logger)
{
	struct logger_config lc;
	const char *path;
	struct cfg_err err;
	char why[300];
	if (!cfgjson_logger(req->body, "", &lc, &path, &err)) {
		api_fault(resp, 400, "%s", err.msg);
		return;
	}
	if (vm_config_set_str(&lc.path, path) < 0) {
		api_fault(resp, 500, "out of memory");
		return;
	}
	if (api_logger_apply(ctx, lc.path, &lc, why, sizeof(why)) < 0) {
		free(lc.path);
		api_fault(resp, 400, "log_path: %s", why);
		return;
	}
	free(ctx->cfg->logger.path);
	ctx->cfg->logger = lc;
	ctx->cfg->has_logger = true;
	no_content(resp);
}

API_HANDLER(h_put_metrics)
{
	const char *path;
	struct cfg_err err;
	char why[300];
	if (ctx->cfg->metrics_path) {
		api_fault(resp, 400, "metrics are already configured (to '%s')",
			  ctx->cfg->metrics_path);
		return;
	}
	if (!cfgjson_metrics(req->body, "", &path, &err)) {
		api_fault(resp, 400, "%s", err.msg);
		return;
	}
	if (metrics_open(ctx, path, why, sizeof(why)) < 0) {
		api_fault(resp, 400, "metrics_path: %s", why);
		return;
	}
	if (vm_config_set_str(&ctx->cfg->metrics_path, path) < 0) {
		metrics_close(&ctx->metrics);
		api_fault(resp, 500, "out of memory");
		return;
	}
	no_content(resp);
}

/* ---- GET /debug/memory?gpa=&len=[&encoding=hex|base64] ---- */

#define DEBUG_MEMORY_MAX 65536

/* Decimal or 0x-hex, digits only, no overflow. */
static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
	unsigned base = 10;
	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2, len -= 2;
	}
	if (len == 0 || len > 20)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned d;
		char c = s[i];
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return false;
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	*out = v;
	return true;
}

struct mem_query {
	uint64_t gpa, len;
	bool base64;
};

/* One "key=value" of the query into q; `seen` flags duplicates. */
static bool query_param(const char *p, size_t plen, struct mem_query *q, unsigned *seen,
			struct api_response *resp)
{
	const char *eq = memchr(p, '=', plen);
	size_t klen = eq ? (size_t)(eq - p) : plen;
	const char *v = eq ? eq + 1 : p + plen;
	size_t vlen = (size_t)(p + plen - v);
	static const char *const keys[] = {"gpa", "len", "encoding"};
	unsigned k = 0;
	while (k < 3 && !(strlen(keys[k]) == klen && !memcmp(p, keys[k], klen)))
		k++;
	if (k == 3) {
		api_fault(resp, 400, "unknown query parameter '%.*s' (use gpa, len, encoding)",
			  (int)(klen > 40 ? 40 : klen), p);
		return false;
	}
	if (*seen & (1u << k)) {
		api_fault(resp, 400, "query parameter '%s' given twice", keys[k]);
		return false;
	}
	*seen |= 1u << k;
	bool ok;
	if (k == 2) {
		ok = (vlen == 3 && !memcmp(v, "hex", 3)) || (vlen == 6 && !memcmp(v, "base64", 6));
		q->base64 = vlen == 6;
	} else {
		ok = parse_u64(v, vlen, k ? &q->len : &q->gpa);
	}
	if (!ok)
		api_fault(resp, 400, "bad value for '%s': '%.*s'", keys[k],
			  (int)(vlen > 40 ? 40 : vlen), v);
	return ok;
}

static bool parse_mem_query(const char *query, struct mem_query *q, struct api_response *resp)
{
	unsigned seen = 0;
	*q = (struct mem_query){0};
	if (!query || !*query) {
		api_fault(resp, 400, "gpa and len are required: /debug/memory?gpa=ADDR&len=N");
		return false;
	}
	for (const char *p = query; *p;) {
		size_t plen = strcspn(p, "&");
		if (!query_param(p, plen, q, &seen, resp))
			return false;
		p += plen;
		if (*p == '&' && !*++p) {
			api_fault(resp, 400, "empty query parameter");
			return false;
		}
	}
	if ((seen & 3) != 3) {
		api_fault(resp, 400, "%s is required", seen & 1 ? "len" : "gpa");
		return false;
	}
	if (q->len == 0 || q->len > DEBUG_MEMORY_MAX) {
		api_fault(resp, 400, "len must be 1..%d", DEBUG_MEMORY_MAX);
		return false;
	}
	return true;
}

static char *encode(const uint8_t *data, size_t len, bool base64)
{
	static const char hex[] = "0123456789abcdef";
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(len * 2 + 4), *o = out;
	if (!out)
		return NULL;
	if (!base64) {
		for (size_t i = 0; i < len; i++) {
			*o++ = hex[data[i] >> 4];
			*o++ = hex[data[i] & 15];
		}
		*o = 0;
		return out;
	}
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)data[i + 1] << 8;
		if (i + 2 < len)
			v |= data[i + 2];
		*o++ = b64[v >> 18];
		*o++ = b64[(v >> 12) & 63];
		*o++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		*o++ = i + 2 < len ? b64[v & 63] : '=';
	}
	*o = 0;
	return out;
}

API_HANDLER(h_get_debug_memory)
{
	struct mem_query q;
	if (!parse_mem_query(req->query, &q, resp))
		return;
	if (state(ctx) != API_VM_PAUSED) {
		api_fault(resp, 400,
			  "guest memory can be read only while the microVM is paused "
			  "(PATCH /vm {\"state\": \"Paused\"})");
		return;
	}
	uint8_t *buf = malloc(q.len);
	if (!buf) {
		api_fault(resp, 500, "out of memory");
		return;
	}
	if (!ctx->ops->read_memory(ctx->vmm, q.gpa, buf, q.len)) {
		free(buf);
		api_fault(resp, 400, "[0x%llx, +%llu) is not guest RAM", (unsigned long long)q.gpa,
			  (unsigned long long)q.len);
		return;
	}
	char *text = encode(buf, q.len, q.base64);
	free(buf);
	char gpa[24];
	snprintf(gpa, sizeof(gpa), "0x%llx", (unsigned long long)q.gpa);
	reply(resp, text ? json_pack("{s:s, s:I, s:s, s:s}", "gpa", gpa, "len", (json_int_t)q.len,
				     "encoding", q.base64 ? "base64" : "hex", "data", text)
			 : NULL);
	free(text);
}
