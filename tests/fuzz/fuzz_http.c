/*
 * libFuzzer target: the API's request path short of the VMM: HTTP framing
 * (api/http.c) over a byte stream of pipelined requests, routing
 * (api/router.c), body checks, and the JSON configuration model
 * (api/config_json.c) on every body.
 *
 * Checked besides memory safety: what the parser hands out lies inside
 * the input, errors carry one of the documented statuses, a complete
 * request parses the same from exactly its own bytes, and no strict
 * prefix of it is complete.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/config_json.h"
#include "api/http.h"
#include "api/router.h"
#include "config.h"

static void check_inside(const char *buf, size_t len, const char *p, size_t n)
{
	if (n && (p < buf || p + n > buf + len))
		abort();
}

static void check_bad(const struct http_request *r)
{
	static const int allowed[] = {400, 411, 413, 414, 417, 431, 505};
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (r->error_status == allowed[i] && r->error_reason)
			return;
	abort();
}

/* Every configuration parser on one JSON body. */
static void model(const json_t *body)
{
	struct vm_config cfg;
	struct cfg_err err;
	struct boot_source_cfg bs;
	struct machine_cfg m;
	struct disk_config d;
	struct net_config n;
	struct logger_config lc;
	const char *path;
	vm_config_init(&cfg);
	cfgjson_boot_source(body, "", &bs, &err);
	cfgjson_machine(body, "", true, &cfg, &m, &err);
	cfgjson_machine(body, "", false, &cfg, &m, &err);
	cfgjson_drive(body, "", NULL, &d, &err);
	cfgjson_drive_patch(body, "x", &path, &err);
	cfgjson_net(body, "", NULL, &n, &err);
	cfgjson_net_patch(body, "x", &err);
	cfgjson_logger(body, "", &lc, &path, &err);
	cfgjson_metrics(body, "", &path, &err);
	struct balloon_config bc;
	uint32_t u32;
	cfgjson_balloon(body, "", &bc, &err);
	cfgjson_balloon_update(body, &u32, &err);
	cfgjson_balloon_stats_update(body, &u32, &err);
	if (cfgjson_apply(body, &cfg, &err)) {
		json_t *dump = cfgjson_dump(&cfg);
		struct vm_config again;
		vm_config_init(&again);
		if (!dump || !cfgjson_apply(dump, &again, &err))
			abort(); /* what we print, we must read back */
		json_decref(dump);
		vm_config_free(&again);
	}
	vm_config_free(&cfg);
}

static void handle(const struct http_request *r)
{
	struct api_request req = {0};
	struct api_response resp = {0};
	api_handler fn = api_route(r->method, r->path, r->path_len, r->query != NULL, &req, &resp);
	if (!fn) {
		if (resp.status != 400 && resp.status != 404 && resp.status != 405)
			abort();
		return;
	}
	json_t *body;
	if (api_parse_body(r->method, r->body, r->body_len, r->has_content_length, &body, &resp)) {
		if (body)
			model(body);
		json_decref(body);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A heap copy of exactly the input: ASan catches any read past it. */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	size_t off = 0;
	for (unsigned n = 0; n < 64 && off < size; n++) {
		struct http_request r;
		const char *p = buf + off;
		size_t len = size - off;
		enum http_parse_result res = http_parse(p, len, &r);
		if (res == HTTP_INCOMPLETE)
			break;
		if (res == HTTP_BAD) {
			check_bad(&r);
			break;
		}
		if (r.consumed == 0 || r.consumed > len)
			abort();
		check_inside(p, len, r.path, r.path_len);
		check_inside(p, len, r.query, r.query_len);
		check_inside(p, len, r.body, r.body_len);
		struct http_request again;
		if (http_parse(p, r.consumed, &again) != HTTP_COMPLETE ||
		    again.consumed != r.consumed)
			abort();
		if (r.consumed > 1 && http_parse(p, r.consumed - 1, &again) == HTTP_COMPLETE)
			abort();
		handle(&r);
		off += r.consumed;
	}
	free(buf);
	return 0;
}
