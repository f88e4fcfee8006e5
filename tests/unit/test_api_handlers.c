/*
 * api/router.c and api/handlers.c against a fake VMM: routing (404, 405
 * with Allow, bad ids, query strings), body checks, the pre-/post-boot
 * rules of every endpoint, the actions, /debug/memory's query, logger and
 * metrics files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "api/api.h"
#include "api/router.h"
#include "config.h"
#include "log.h"

/* ---- the fake VMM ---- */

struct fake {
	enum api_vm_state state;
	int starts, pauses, resumes, cads, swaps;
	bool start_fails;
	unsigned swapped_index;
	char swapped_path[256];
	uint8_t ram[4096]; /* guest RAM at gpa 0x1000 */
	uint32_t balloon_mib, balloon_secs;
	int balloon_targets, balloon_intervals;
};

static enum api_vm_state f_state(void *p)
{
	return ((struct fake *)p)->state;
}

static int f_start(void *p, bool *fatal, char *why, size_t n)
{
	struct fake *f = p;
	f->starts++;
	if (f->start_fails) {
		*fatal = false;
		snprintf(why, n, "kernel /k: not an ELF64 x86-64 image or a bzImage");
		return -1;
	}
	f->state = API_VM_RUNNING;
	return 0;
}

static int f_pause(void *p, char *why, size_t n)
{
	(void)why, (void)n;
	struct fake *f = p;
	f->pauses++;
	f->state = API_VM_PAUSED;
	return 0;
}

static int f_resume(void *p, char *why, size_t n)
{
	(void)why, (void)n;
	struct fake *f = p;
	f->resumes++;
	f->state = API_VM_RUNNING;
	return 0;
}

static int f_cad(void *p, char *why, size_t n)
{
	(void)why, (void)n;
	((struct fake *)p)->cads++;
	return 0;
}

static int f_swap(void *p, unsigned index, const char *path, char *why, size_t n)
{
	(void)why, (void)n;
	struct fake *f = p;
	f->swaps++;
	f->swapped_index = index;
	snprintf(f->swapped_path, sizeof(f->swapped_path), "%s", path);
	return 0;
}

static bool f_read(void *p, uint64_t gpa, void *dst, size_t len)
{
	struct fake *f = p;
	if (gpa < 0x1000 || gpa - 0x1000 > sizeof(f->ram) || len > sizeof(f->ram) - (gpa - 0x1000))
		return false;
	memcpy(dst, f->ram + (gpa - 0x1000), len);
	return true;
}

static json_t *f_info(void *p)
{
	(void)p;
	return json_pack("{s:[]}", "vcpus");
}

static json_t *f_metrics(void *p)
{
	(void)p;
	return json_pack("{s:[], s:[]}", "vcpu", "block");
}

static int f_balloon_target(void *p, uint32_t mib, char *why, size_t n)
{
	(void)why, (void)n;
	struct fake *f = p;
	f->balloon_targets++;
	f->balloon_mib = mib;
	return 0;
}

static int f_balloon_interval(void *p, uint32_t secs, char *why, size_t n)
{
	struct fake *f = p;
	f->balloon_intervals++;
	f->balloon_secs = secs;
	if (secs == 13) {
		snprintf(why, n, "timerfd_settime: no");
		return -1;
	}
	return 0;
}

static json_t *f_balloon_stats(void *p)
{
	struct fake *f = p;
	return json_pack("{s:I, s:I}", "target_mib", (json_int_t)f->balloon_mib, "free_memory",
			 (json_int_t)4096);
}

static const struct api_vmm_ops fake_ops = {
    .state = f_state,
    .start = f_start,
    .pause = f_pause,
    .resume = f_resume,
    .ctrl_alt_del = f_cad,
    .swap_drive = f_swap,
    .read_memory = f_read,
    .info = f_info,
    .device_metrics = f_metrics,
    .balloon_set_target = f_balloon_target,
    .balloon_set_stats_interval = f_balloon_interval,
    .balloon_stats = f_balloon_stats,
};

/* ---- fixture ---- */

struct fx {
	struct fake fake;
	struct vm_config cfg;
	struct event_loop loop;
	struct api_ctx ctx;
	char dir[64];
	char kernel[128], disk[128];
};

static void touch(const char *path)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("data", f);
	fclose(f);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	vm_config_init(&f->cfg);
	assert_int_equal(loop_init(&f->loop), 0);
	api_ctx_init(&f->ctx, &f->cfg, &fake_ops, &f->fake, &f->loop);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vmm-api-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->kernel, sizeof(f->kernel), "%s/kernel", f->dir);
	snprintf(f->disk, sizeof(f->disk), "%s/disk.img", f->dir);
	touch(f->kernel);
	touch(f->disk);
	for (unsigned i = 0; i < sizeof(f->fake.ram); i++)
		f->fake.ram[i] = (uint8_t)i;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	api_ctx_destroy(&f->ctx);
	loop_destroy(&f->loop);
	vm_config_free(&f->cfg);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Route and run one request the way the server does; the response's body
 * is kept in resp (the caller frees it). */
static int call(struct fx *f, const char *method, const char *target, const char *body,
		struct api_response *resp)
{
	struct http_request h;
	char raw[4096];
	int n = body ? snprintf(raw, sizeof(raw), "%s %s HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s",
				method, target, strlen(body), body)
		     : snprintf(raw, sizeof(raw), "%s %s HTTP/1.1\r\n\r\n", method, target);
	assert_true(n > 0 && (size_t)n < sizeof(raw));
	assert_int_equal(http_parse(raw, (size_t)n, &h), HTTP_COMPLETE);
	memset(resp, 0, sizeof(*resp));
	struct api_request req = {0};
	char *query = h.query ? strndup(h.query, h.query_len) : NULL;
	api_handler fn = api_route(h.method, h.path, h.path_len, h.query != NULL, &req, resp);
	if (fn &&
	    api_parse_body(h.method, h.body, h.body_len, h.has_content_length, &req.body, resp)) {
		req.method = h.method;
		req.query = query;
		fn(&f->ctx, &req, resp);
	}
	json_decref(req.body);
	free(query);
	return resp->status;
}

/* Expect status and, for errors, a fault_message containing `text`. */
static void expect(struct fx *f, const char *method, const char *target, const char *body,
		   int status, const char *text)
{
	struct api_response r;
	int got = call(f, method, target, body, &r);
	if (got != status || (text && !strstr(r.fault, text)))
		fail_msg("%s %s %s: %d \"%s\", expected %d \"%s\"", method, target,
			 body ? body : "", got, r.fault, status, text ? text : "");
	json_decref(r.body);
}

static json_t *get(struct fx *f, const char *target)
{
	struct api_response r;
	assert_int_equal(call(f, "GET", target, NULL, &r), 200);
	assert_non_null(r.body);
	return r.body;
}

/* ---- tests ---- */

static void routing(void **state)
{
	struct fx *f = *state;
	struct api_response r;
	expect(f, "GET", "/nope", NULL, 404, "no such path: /nope");
	expect(f, "GET", "//", NULL, 404, NULL);
	expect(f, "GET", "/machine-config/", NULL, 404, NULL);
	assert_int_equal(call(f, "DELETE", "/machine-config", NULL, &r), 405);
	assert_string_equal(r.allow, "GET, PUT, PATCH");
	assert_int_equal(call(f, "POST", "/", "{}", &r), 405);
	assert_string_equal(r.allow, "GET");
	expect(f, "GET", "/actions", NULL, 405, "allowed: PUT");
	expect(f, "FOO", "/", NULL, 405, NULL);
	expect(f, "GET", "/?x=1", NULL, 400, "takes no query string");
	expect(f, "PUT", "/drives", "{}", 400, "missing drive_id");
	expect(f, "PUT", "/drives/", "{}", 400, "missing drive_id");
	expect(f, "PUT", "/drives/a/b", "{}", 400, "invalid drive_id in the path");
	expect(f, "PUT", "/drives/%41", "{}", 400, "invalid drive_id in the path");
	expect(f, "PUT", "/network-interfaces/", "{}", 400, "missing iface_id");
	expect(f, "PATCH", "/balloon/hinting/start", "{}", 400, "not supported by this VMM yet");
	assert_int_equal(call(f, "DELETE", "/balloon", NULL, &r), 405);
	assert_string_equal(r.allow, "GET, PUT, PATCH");
	assert_int_equal(call(f, "PUT", "/balloon/statistics", "{}", &r), 405);
	assert_string_equal(r.allow, "GET, PATCH");
	expect(f, "GET", "/balloon/statistics/x", NULL, 404, NULL);
	/* The migration module's, or "not built in" without it. */
	expect(f, "PUT", "/snapshot/create", "{}", 400, NULL);
	expect(f, "GET", "/version", NULL, 200, NULL);
}

static void bodies(void **state)
{
	struct fx *f = *state;
	expect(f, "GET", "/", "{}", 400, "GET takes no body");
	expect(f, "PUT", "/machine-config", "", 400, "a JSON object body is required");
	expect(f, "PUT", "/machine-config", "{", 400, "invalid JSON body");
	expect(f, "PUT", "/machine-config", "[1]", 400, "must be a JSON object");
	expect(f, "PUT", "/machine-config", "1", 400, "invalid JSON body");
	expect(f, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"vcpu_count\": 2}", 400,
	       "duplicate");
	expect(f, "PUT", "/machine-config", "{} {}", 400, "invalid JSON body");
	expect(f, "PUT", "/machine-config", "{\"a\": \"\xff\"}", 400, "invalid JSON body");
	expect(f, "PUT", "/machine-config", "{\"a\": \"\\u0000\"}", 400, "invalid JSON body");
}

static void instance_info(void **state)
{
	struct fx *f = *state;
	json_t *v = get(f, "/");
	assert_string_equal(json_string_value(json_object_get(v, "state")), "Not started");
	assert_string_equal(json_string_value(json_object_get(v, "id")), VMM_DEFAULT_ID);
	assert_string_equal(json_string_value(json_object_get(v, "vmm_version")), VMM_VERSION);
	assert_string_equal(json_string_value(json_object_get(v, "app_name")), "vmm");
	json_decref(v);
	vm_config_set_str(&f->cfg.id, "vm-7");
	f->fake.state = API_VM_PAUSED;
	v = get(f, "/");
	assert_string_equal(json_string_value(json_object_get(v, "state")), "Paused");
	assert_string_equal(json_string_value(json_object_get(v, "id")), "vm-7");
	json_decref(v);
}

static void configure_then_start(void **state)
{
	struct fx *f = *state;
	char body[512];
	expect(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400, "no kernel");
	expect(f, "PUT", "/boot-source", "{\"kernel_image_path\": \"/no/such/kernel\"}", 400,
	       "kernel_image_path '/no/such/kernel': No such file or directory");
	snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\", \"boot_args\": \"a=1\"}",
		 f->kernel);
	expect(f, "PUT", "/boot-source", body, 204, NULL);
	assert_string_equal(f->cfg.kernel, f->kernel);
	expect(f, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}", 204,
	       NULL);
	expect(f, "PATCH", "/machine-config", "{\"mem_size_mib\": 64}", 204, NULL);
	json_t *m = get(f, "/machine-config");
	assert_int_equal(json_integer_value(json_object_get(m, "vcpu_count")), 2);
	assert_int_equal(json_integer_value(json_object_get(m, "mem_size_mib")), 64);
	json_decref(m);
	snprintf(body, sizeof(body),
		 "{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true}",
		 f->disk);
	expect(f, "PUT", "/drives/rootfs", body, 204, NULL);
	expect(f, "PUT", "/drives/other", body, 400, "does not match the id in the path");
	expect(f, "PUT", "/drives/x",
	       "{\"drive_id\": \"x\", \"path_on_host\": \"/no/disk\", \"is_root_device\": false}",
	       400, "path_on_host '/no/disk'");
	/* A network interface is kept, but blocks InstanceStart. */
	expect(f, "PUT", "/network-interfaces/eth0",
	       "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}", 204, NULL);
	expect(f, "PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\"}", 400, "use PUT");
	assert_int_equal(f->cfg.nnets, 1);
	assert_string_equal(f->cfg.nets[0].tap, "tap0");
	assert_int_equal(f->fake.starts, 0);
	/* A failed start reports the VMM's reason and stays "Not started". */
	f->fake.start_fails = true;
	expect(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
	       "cannot start: kernel /k: not an ELF64");
	f->fake.start_fails = false;
	expect(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 204, NULL);
	assert_int_equal(f->fake.starts, 2);
	/* Post-boot: configuration is frozen. */
	expect(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
	       "already running");
	expect(f, "PUT", "/boot-source", body, 400,
	       "the microVM is running: boot-source can only be set before InstanceStart");
	expect(f, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}", 400,
	       "machine-config can only be set before InstanceStart");
	expect(f, "PATCH", "/machine-config", "{\"mem_size_mib\": 64}", 400,
	       "before InstanceStart");
	expect(f, "PUT", "/drives/rootfs", body, 400, "use PATCH");
	expect(f, "PUT", "/network-interfaces/eth0",
	       "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}", 400,
	       "before InstanceStart");
	expect(f, "PATCH", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\"}", 400,
	       "nothing to update");
	expect(f, "PATCH", "/network-interfaces/eth0",
	       "{\"iface_id\": \"eth0\", \"rx_rate_limiter\": {}}", 400,
	       "rate limiters are not supported yet");
	expect(f, "PATCH", "/network-interfaces/eth9", "{\"iface_id\": \"eth9\"}", 400,
	       "no network interface with iface_id 'eth9'");
	/* The configuration reads back in the config file's shape. */
	json_t *c = get(f, "/vm/config");
	json_t *bs = json_object_get(c, "boot-source");
	assert_string_equal(json_string_value(json_object_get(bs, "boot_args")), "a=1");
	json_t *d = json_array_get(json_object_get(c, "drives"), 0);
	assert_string_equal(json_string_value(json_object_get(d, "drive_id")), "rootfs");
	json_decref(c);
}

static void drive_patch(void **state)
{
	struct fx *f = *state;
	char body[512];
	snprintf(body, sizeof(body), "{\"drive_id\": \"d\", \"path_on_host\": \"%s\"}", f->disk);
	expect(f, "PATCH", "/drives/d", body, 400, "before InstanceStart, use PUT");
	f->fake.state = API_VM_RUNNING;
	expect(f, "PATCH", "/drives/d", body, 400, "no drive with drive_id 'd'");
	struct disk_config d = {.id = "d", .path = "/old"};
	f->cfg.disks[0] = d;
	f->cfg.ndisks = 1;
	expect(f, "PATCH", "/drives/d", "{\"drive_id\": \"d\", \"path_on_host\": \"/no/new\"}", 400,
	       "path_on_host '/no/new'");
	expect(f, "PATCH", "/drives/d", body, 204, NULL);
	assert_int_equal(f->fake.swaps, 1);
	assert_string_equal(f->fake.swapped_path, f->disk);
	assert_string_equal(f->cfg.disks[0].path, f->disk);
}

static void actions_and_vm_state(void **state)
{
	struct fx *f = *state;
	expect(f, "PUT", "/actions", "{}", 400, "action_type: missing (required)");
	expect(f, "PUT", "/actions", "{\"action_type\": 1}", 400, "action_type: expected a string");
	expect(f, "PUT", "/actions", "{\"action_type\": \"Reboot\"}", 400,
	       "'Reboot' is not one of InstanceStart, SendCtrlAltDel, FlushMetrics");
	expect(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\", \"x\": 1}", 400,
	       "x: unknown field");
	expect(f, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 400, "not started");
	expect(f, "PATCH", "/vm", "{\"state\": \"Paused\"}", 400, "has not started");
	f->fake.state = API_VM_RUNNING;
	expect(f, "PATCH", "/vm", "{\"state\": \"Stopped\"}", 400, "not one of Paused, Resumed");
	expect(f, "PATCH", "/vm", "{\"state\": true}", 400, "expected a string");
	expect(f, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL);
	expect(f, "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL);
	expect(f, "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204, NULL);
	assert_int_equal(f->fake.pauses, 2);
	assert_int_equal(f->fake.resumes, 1);
	expect(f, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 204, NULL);
	assert_int_equal(f->fake.cads, 1);
	json_t *info = get(f, "/vm/info");
	assert_string_equal(json_string_value(json_object_get(info, "state")), "Running");
	assert_true(json_is_array(json_object_get(info, "vcpus")));
	json_decref(info);
}

/* Pre-boot: PUT configures, PATCH changes the size and interval; post-
 * boot: PUT is refused, PATCH moves the running target, statistics can
 * change pace but neither start nor stop. */
static void balloon(void **state)
{
	struct fx *f = *state;
	expect(f, "GET", "/balloon", NULL, 400, "no balloon device is configured");
	expect(f, "PATCH", "/balloon", "{\"amount_mib\": 1}", 400, "no balloon device");
	expect(f, "GET", "/balloon/statistics", NULL, 400, "no balloon device");
	expect(f, "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 1}", 400,
	       "no balloon device");
	expect(f, "PUT", "/balloon", "{\"amount_mib\": 129, \"deflate_on_oom\": false}", 400,
	       "amount_mib (--balloon size) 129 is more than the guest's RAM (128 MiB)");
	expect(f, "PUT", "/balloon", "{\"amount_mib\": 16}", 400,
	       "deflate_on_oom: missing (required)");
	expect(f, "PUT", "/balloon", "{\"amount_mib\": 16, \"deflate_on_oom\": true}", 204, NULL);
	expect(f, "GET", "/balloon/statistics", NULL, 400, "statistics are not enabled");
	expect(f, "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 2}", 204, NULL);
	expect(f, "GET", "/balloon/statistics", NULL, 400, "needs a started microVM");
	expect(f, "PATCH", "/balloon", "{}", 400, "amount_mib: missing (required)");
	expect(f, "PATCH", "/balloon", "{\"amount_mib\": 8, \"deflate_on_oom\": false}", 400,
	       "deflate_on_oom: unknown field");
	expect(f, "PATCH", "/balloon", "{\"amount_mib\": 200}", 400, "more than the guest's RAM");
	expect(f, "PATCH", "/balloon", "{\"amount_mib\": 8}", 204, NULL);
	json_t *b = get(f, "/balloon");
	assert_int_equal(json_integer_value(json_object_get(b, "amount_mib")), 8);
	assert_true(json_is_true(json_object_get(b, "deflate_on_oom")));
	assert_int_equal(json_integer_value(json_object_get(b, "stats_polling_interval_s")), 2);
	assert_true(json_is_false(json_object_get(b, "free_page_reporting")));
	json_decref(b);
	assert_int_equal(f->fake.balloon_targets + f->fake.balloon_intervals, 0);
	/* Running. */
	f->fake.state = API_VM_RUNNING;
	expect(f, "PUT", "/balloon", "{\"amount_mib\": 16, \"deflate_on_oom\": true}", 400,
	       "the microVM is running: the balloon (PATCH /balloon changes a running "
	       "balloon's target) can only be set before InstanceStart");
	expect(f, "PATCH", "/balloon", "{\"amount_mib\": 100}", 204, NULL);
	assert_int_equal(f->fake.balloon_targets, 1);
	assert_int_equal(f->fake.balloon_mib, 100);
	assert_int_equal(f->cfg.balloon.amount_mib, 100);
	expect(f, "PATCH", "/balloon", "{\"amount_mib\": 129}", 400, "more than the guest's RAM");
	assert_int_equal(f->fake.balloon_targets, 1);
	b = get(f, "/balloon/statistics");
	assert_int_equal(json_integer_value(json_object_get(b, "target_mib")), 100);
	json_decref(b);
	expect(f, "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 0}", 400,
	       "cannot be turned off after InstanceStart");
	expect(f, "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 65536}", 400,
	       "stats_polling_interval_s: 65536 is out of range (0..65535)");
	expect(f, "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 13}", 400,
	       "balloon: timerfd_settime: no");
	assert_int_equal(f->cfg.balloon.stats_interval_s, 2);
	expect(f, "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 5}", 204, NULL);
	assert_int_equal(f->fake.balloon_secs, 5);
	assert_int_equal(f->cfg.balloon.stats_interval_s, 5);
	json_t *c = get(f, "/vm/config");
	b = json_object_get(c, "balloon");
	assert_int_equal(json_integer_value(json_object_get(b, "amount_mib")), 100);
	assert_int_equal(json_integer_value(json_object_get(b, "stats_polling_interval_s")), 5);
	json_decref(c);
	/* Without statistics at boot, they cannot be turned on. */
	f->cfg.balloon.stats_interval_s = 0;
	expect(f, "PATCH", "/balloon/statistics", "{\"stats_polling_interval_s\": 5}", 400,
	       "statistics are not enabled");
	expect(f, "GET", "/balloon/statistics", NULL, 400, "statistics are not enabled");
}

static void debug_memory(void **state)
{
	struct fx *f = *state;
	f->fake.state = API_VM_RUNNING;
	expect(f, "GET", "/debug/memory?gpa=0x1000&len=4", NULL, 400,
	       "only while the microVM is paused");
	f->fake.state = API_VM_PAUSED;
	static const struct {
		const char *q, *text;
	} bad[] = {
	    {"/debug/memory", "gpa and len are required"},
	    {"/debug/memory?", "gpa and len are required"},
	    {"/debug/memory?gpa=0x1000", "len is required"},
	    {"/debug/memory?len=4", "gpa is required"},
	    {"/debug/memory?gpa=0x1000&len=0", "len must be 1..65536"},
	    {"/debug/memory?gpa=0x1000&len=65537", "len must be 1..65536"},
	    {"/debug/memory?gpa=zz&len=4", "bad value for 'gpa'"},
	    {"/debug/memory?gpa=0x&len=4", "bad value for 'gpa'"},
	    {"/debug/memory?gpa=-1&len=4", "bad value for 'gpa'"},
	    {"/debug/memory?gpa=99999999999999999999999&len=4", "bad value for 'gpa'"},
	    {"/debug/memory?gpa=1&gpa=2&len=4", "given twice"},
	    {"/debug/memory?gpa=1&len=4&x=1", "unknown query parameter 'x'"},
	    {"/debug/memory?gpa=1&len=4&", "empty query parameter"},
	    {"/debug/memory?gpa=1&&len=4", "unknown query parameter"},
	    {"/debug/memory?gpa=4096&len=4&encoding=raw", "bad value for 'encoding'"},
	    {"/debug/memory?gpa=0&len=4", "is not guest RAM"},
	    {"/debug/memory?gpa=0x1ffe&len=4", "is not guest RAM"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect(f, "GET", bad[i].q, NULL, 400, bad[i].text);
	json_t *v = get(f, "/debug/memory?gpa=0x1001&len=3");
	assert_string_equal(json_string_value(json_object_get(v, "data")), "010203");
	assert_string_equal(json_string_value(json_object_get(v, "gpa")), "0x1001");
	json_decref(v);
	v = get(f, "/debug/memory?gpa=4096&len=4&encoding=base64");
	assert_string_equal(json_string_value(json_object_get(v, "data")), "AAECAw==");
	json_decref(v);
}

static void logger_and_metrics(void **state)
{
	struct fx *f = *state;
	char body[256], path[128];
	expect(f, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 400,
	       "metrics are not configured");
	expect(f, "PUT", "/metrics", "{\"metrics_path\": \"/no/such/dir/m\"}", 400, "cannot open");
	snprintf(path, sizeof(path), "%s/metrics.json", f->dir);
	snprintf(body, sizeof(body), "{\"metrics_path\": \"%s\"}", path);
	expect(f, "PUT", "/metrics", body, 204, NULL);
	expect(f, "PUT", "/metrics", body, 400, "already configured");
	expect(f, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 204, NULL);
	expect(f, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}", 204, NULL);
	FILE *m = fopen(path, "r");
	assert_non_null(m);
	char line[4096];
	unsigned lines = 0;
	while (fgets(line, sizeof(line), m)) {
		json_t *v = json_loads(line, 0, NULL);
		assert_non_null(v);
		assert_true(json_is_object(json_object_get(v, "api_server")));
		assert_true(json_is_integer(json_object_get(v, "utc_timestamp_ms")));
		assert_true(json_is_array(json_object_get(v, "block")));
		json_decref(v);
		lines++;
	}
	fclose(m);
	assert_int_equal(lines, 2);
	/* The logger: level and decorations. */
	expect(f, "PUT", "/logger", "{\"level\": \"Verbose\"}", 400, "level: 'Verbose'");
	expect(f, "PUT", "/logger", "{\"log_path\": \"/no/such/dir/log\"}", 400, "cannot open");
	snprintf(path, sizeof(path), "%s/log.txt", f->dir);
	snprintf(body, sizeof(body),
		 "{\"log_path\": \"%s\", \"level\": \"warning\", \"show_level\": true, "
		 "\"show_log_origin\": true}",
		 path);
	expect(f, "PUT", "/logger", body, 204, NULL);
	vmm_warn("hello %d", 42);
	vmm_info("not shown");
	vmm_log_configure(-1, VMM_LOG_WARNING, false, false);
	m = fopen(path, "r");
	assert_non_null(m);
	assert_non_null(fgets(line, sizeof(line), m));
	assert_non_null(strstr(line, "vmm: [Warning test_api_handlers.c:"));
	assert_non_null(strstr(line, "] hello 42\n"));
	assert_null(fgets(line, sizeof(line), m));
	fclose(m);
	json_t *c = get(f, "/vm/config");
	json_t *l = json_object_get(c, "logger");
	assert_string_equal(json_string_value(json_object_get(l, "level")), "Warning");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(c, "metrics"), "metrics_path")),
	    f->cfg.metrics_path);
	json_decref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(routing, setup, teardown),
	    cmocka_unit_test_setup_teardown(bodies, setup, teardown),
	    cmocka_unit_test_setup_teardown(instance_info, setup, teardown),
	    cmocka_unit_test_setup_teardown(configure_then_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(drive_patch, setup, teardown),
	    cmocka_unit_test_setup_teardown(actions_and_vm_state, setup, teardown),
	    cmocka_unit_test_setup_teardown(debug_memory, setup, teardown),
	    cmocka_unit_test_setup_teardown(balloon, setup, teardown),
	    cmocka_unit_test_setup_teardown(logger_and_metrics, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
