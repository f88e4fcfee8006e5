/*
 * PUT /migration {uri, max_bandwidth_mib_s?, max_downtime_ms?, copy_disks?}
 * GET /migration
 * PUT /migration/cancel {}
 *
 * PUT /migration answers once the migration has started (its thread
 * runs); how it goes shows in GET /migration: the phase, bytes sent and
 * left, the guest's dirty rate, the passes, the expected downtime, and
 * the reason when it failed. On a destination (--incoming), GET /migration
 * says how the incoming one goes.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/router.h"
#include "mig_in.h"
#include "mig_out.h"

static struct vm *vm_of(struct api_ctx *ctx, struct api_response *resp)
{
	struct vm *vm = ctx->ops->vm ? ctx->ops->vm(ctx->vmm) : NULL;
	if (!vm)
		api_fault(resp, 400, "no microVM behind this API");
	return vm;
}

static bool field_ok(const char *k, json_t *v, struct api_response *resp)
{
	if (!strcmp(k, "uri")) {
		if (json_is_string(v))
			return true;
		api_fault(resp, 400, "uri: expected a string");
	} else if (!strcmp(k, "max_bandwidth_mib_s") || !strcmp(k, "max_downtime_ms")) {
		if (json_is_null(v) || (json_is_integer(v) && json_integer_value(v) >= 0 &&
					json_integer_value(v) <= 1000000))
			return true;
		api_fault(resp, 400, "%s: expected an integer, 0..1000000", k);
	} else if (!strcmp(k, "copy_disks")) {
		if (json_is_null(v) || json_is_boolean(v))
			return true;
		api_fault(resp, 400, "copy_disks: expected a boolean");
	} else {
		api_fault(resp, 400, "%.64s: unknown field", k);
	}
	return false;
}

static bool parse(const json_t *body, struct mig_request *r, struct api_response *resp)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)body, k, v)
	{
		if (!field_ok(k, v, resp))
			return false;
	}
	const char *uri = json_string_value(json_object_get(body, "uri"));
	char why[200];
	if (!uri) {
		api_fault(resp, 400, "uri: missing (required)");
		return false;
	}
	if (strlen(uri) >= sizeof(r->uri) || !mig_uri_valid(uri, why, sizeof(why))) {
		api_fault(resp, 400, "uri: '%.100s': %s", uri,
			  strlen(uri) >= sizeof(r->uri) ? "too long" : why);
		return false;
	}
	memset(r, 0, sizeof(*r));
	strcpy(r->uri, uri);
	json_t *bw = json_object_get(body, "max_bandwidth_mib_s");
	json_t *dt = json_object_get(body, "max_downtime_ms");
	r->max_bw = json_is_integer(bw) ? (uint64_t)json_integer_value(bw) << 20 : 0;
	r->max_downtime_ms =
	    json_is_integer(dt) ? (uint32_t)json_integer_value(dt) : MIG_DEFAULT_DOWNTIME_MS;
	r->copy_disks = json_is_true(json_object_get(body, "copy_disks"));
	if (r->max_downtime_ms == 0) {
		api_fault(resp, 400, "max_downtime_ms: must be at least 1");
		return false;
	}
	return true;
}

void h_migration_start(struct api_ctx *ctx, const struct api_request *req,
		       struct api_response *resp)
{
	struct mig_request r;
	if (!parse(req->body, &r, resp))
		return;
	struct vm *vm = vm_of(ctx, resp);
	if (!vm)
		return;
	if (ctx->ops->state(ctx->vmm) == API_VM_NOT_STARTED) {
		api_fault(resp, 400, "the microVM has not started: there is nothing to migrate");
		return;
	}
	struct mig_vm *mv = mig_vm_get(vm);
	char why[400];
	if (mv && !mig_out_active(mv->out) && mig_busy(vm)) {
		api_fault(resp, 400, "migration not started: an incoming migration is not done");
		return;
	}
	if (!mv || mig_out_begin(vm, mv, &r, why, sizeof(why)) < 0) {
		api_fault(resp, 400, "migration not started: %s", mv ? why : "out of memory");
		return;
	}
	resp->status = 204;
}

static const char *const phase_names[] = {
    [MIG_SETUP] = "setup",	   [MIG_DISKS] = "disks",
    [MIG_PRECOPY] = "precopy",	   [MIG_STOP_AND_COPY] = "stop-and-copy",
    [MIG_COMPLETED] = "completed", [MIG_FAILED] = "failed",
    [MIG_CANCELLED] = "cancelled",
};

static const char *const in_phase_names[] = {
    [MIG_IN_WAITING] = "waiting", [MIG_IN_RECEIVING] = "receiving",
    [MIG_IN_LOADING] = "loading", [MIG_IN_COMPLETED] = "completed",
    [MIG_IN_FAILED] = "failed",
};

static json_t *out_status(struct mig_out *o)
{
	struct mig_progress p;
	mig_out_progress(o, &p);
	uint64_t end = p.end_ns ? p.end_ns : 0;
	json_t *j =
	    json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:I, s:I}", "direction", "outgoing", "phase",
		      phase_names[p.phase], "uri", o->req.uri, "bytes_sent",
		      (json_int_t)p.bytes_sent, "bytes_left", (json_int_t)p.bytes_left,
		      "dirty_rate_mib_s", p.dirty_rate_mib_s, "passes", (json_int_t)p.passes,
		      "expected_downtime_ms", (json_int_t)p.expected_downtime_ms);
	if (j && end)
		json_object_set_new(j, "total_ms",
				    json_integer((json_int_t)((end - p.start_ns) / 1000000)));
	if (j && p.error[0])
		json_object_set_new(j, "error", json_string(p.error));
	return j;
}

static json_t *in_status(struct mig_in *in)
{
	struct mig_in_progress p;
	mig_in_progress(in, &p);
	json_t *j = json_pack("{s:s, s:s, s:I}", "direction", "incoming", "phase",
			      in_phase_names[p.phase], "bytes_received", (json_int_t)p.bytes);
	if (j && p.phase == MIG_IN_COMPLETED) {
		json_object_set_new(j, "downtime_ms", json_real((double)p.downtime_us / 1000.0));
		json_object_set_new(j, "total_ms", json_integer((json_int_t)p.total_ms));
	}
	if (j && p.error[0])
		json_object_set_new(j, "error", json_string(p.error));
	return j;
}

void h_migration_status(struct api_ctx *ctx, const struct api_request *req,
			struct api_response *resp)
{
	(void)req;
	struct vm *vm = vm_of(ctx, resp);
	struct mig_vm *mv = vm ? mig_vm_get(vm) : NULL;
	if (!vm)
		return;
	json_t *j = mv && mv->out  ? out_status(mv->out)
		    : mv && mv->in ? in_status(mv->in)
				   : json_pack("{s:s}", "phase", "none");
	if (!j) {
		api_fault(resp, 500, "out of memory");
		return;
	}
	resp->status = 200;
	resp->body = j;
}

void h_migration_cancel(struct api_ctx *ctx, const struct api_request *req,
			struct api_response *resp)
{
	struct vm *vm = vm_of(ctx, resp);
	struct mig_vm *mv = vm ? mig_vm_get(vm) : NULL;
	if (!vm)
		return;
	if (json_object_size(req->body)) {
		api_fault(resp, 400, "PUT /migration/cancel takes an empty object");
		return;
	}
	if (!mv || !mig_out_cancel(mv->out)) {
		api_fault(resp, 400, "no migration is under way");
		return;
	}
	resp->status = 204;
}

bool mig_busy(struct vm *vm)
{
	struct mig_vm *mv = mig_vm_get(vm);
	if (!mv)
		return false;
	struct mig_in_progress in;
	if (mv->in)
		mig_in_progress(mv->in, &in);
	return mig_out_active(mv->out) || (mv->in && in.phase != MIG_IN_COMPLETED);
}
