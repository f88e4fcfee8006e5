/*
 * Paths and methods of the API: which handler serves a request, or the
 * 404 / 405 / 400 it gets instead. Pure; runs on the API thread.
 */
#ifndef VMM_API_ROUTER_H
#define VMM_API_ROUTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "../vmm.h"
#include "api.h"
#include "http.h"

/* A routed request, as a handler sees it. */
struct api_request {
	enum http_method method;
	char id[VMM_ID_MAX + 1]; /* {drive_id} / {iface_id} from the path, or "" */
	const char *query;	 /* NUL-terminated, without '?'; NULL: none */
	json_t *body;		 /* the JSON object of a PUT/PATCH; NULL otherwise */
};

struct api_response {
	int status;   /* 200, 204, 4xx, 5xx */
	json_t *body; /* 200: the reply (owned); NULL otherwise */
	char fault[1024];
	char allow[64]; /* 405: "GET, PUT" */
};

typedef void (*api_handler)(struct api_ctx *ctx, const struct api_request *req,
			    struct api_response *resp);

struct api_route {
	const char *path; /* exact, or the prefix "/drives/" when has_id */
	bool has_id;
	bool query; /* takes a query string */
	struct {
		enum http_method method;
		api_handler fn;
	} ops[3];
};

/* Find the handler for method + path. Returns it, or NULL with
 * resp->status (400, 404, 405) and resp->fault (and allow) set; req->id
 * is filled from the path. */
api_handler api_route(enum http_method method, const char *path, size_t path_len, bool has_query,
		      struct api_request *req, struct api_response *resp);

/* Parse and check a request body for `method`: NULL body for GET (a body
 * is refused), a JSON object for PUT/PATCH. Returns true, or false with
 * resp set to the 400. */
bool api_parse_body(enum http_method method, const char *body, size_t len, bool has_length,
		    json_t **out, struct api_response *resp);

/* Fill resp with status and a fault_message. */
void api_fault(struct api_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
