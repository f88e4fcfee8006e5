/*
 * HTTP/1.1 framing for the API socket: a strict, bounded request parser
 * and the response writer. Pure functions over caller buffers, so they
 * are unit-tested and fuzzed on their own.
 *
 * Accepted: "METHOD /target HTTP/1.1" (or 1.0), CRLF line ends, headers
 * of token names and visible-ASCII values, the head (request line and
 * headers) at most HTTP_HEAD_MAX bytes, a body only with one
 * Content-Length of at most HTTP_BODY_MAX. Everything else is refused
 * with the status that fits: 400 (malformed, bare LF, folded or duplicate
 * Content-Length, ...), 411 (PUT/PATCH/POST without Content-Length, or
 * Transfer-Encoding), 413 (body too large), 414 (request line too long),
 * 431 (head too large), 417 (an Expect other than 100-continue) and 505
 * (another HTTP version).
 */
#ifndef VMM_API_HTTP_H
#define VMM_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_HEAD_MAX 8192
#define HTTP_BODY_MAX (50 * 1024)
#define HTTP_METHOD_MAX 16

enum http_parse_result {
	HTTP_INCOMPLETE, /* need more bytes (req->head_complete tells how far) */
	HTTP_COMPLETE,	 /* req describes a whole request of req->consumed bytes */
	HTTP_BAD,	 /* refuse with req->error_status; close the connection */
};

enum http_method {
	HTTP_GET,
	HTTP_PUT,
	HTTP_PATCH,
	HTTP_POST,
	HTTP_DELETE,
	HTTP_HEAD,
	HTTP_OPTIONS,
	HTTP_OTHER, /* a well-formed method we do not know */
};

struct http_request {
	enum http_method method;
	char method_name[HTTP_METHOD_MAX + 1];
	/* Pointers into the parsed buffer; not NUL-terminated. */
	const char *path;
	size_t path_len;
	const char *query; /* after '?'; NULL if the target has none */
	size_t query_len;
	const char *body;
	size_t body_len;
	bool has_content_length;
	bool keep_alive;      /* HTTP/1.1 default, or Connection: keep-alive on 1.0 */
	bool expect_continue; /* Expect: 100-continue */
	bool head_complete;   /* the empty line after the headers was seen */
	size_t head_len;
	size_t consumed;	  /* HTTP_COMPLETE: head + body */
	int error_status;	  /* HTTP_BAD: 400, 411, 413, 414, 417, 431 or 505 */
	const char *error_reason; /* HTTP_BAD: a static message */
};

/* Parse the request at the start of buf[0..len). */
enum http_parse_result http_parse(const char *buf, size_t len, struct http_request *req);

const char *http_status_reason(int status);
const char *http_method_name(enum http_method m);

/* A whole response, newly allocated (NULL when out of memory), its length
 * in *out_len. content_type applies when body_len > 0 (or always for a
 * non-204 status); extra_headers (e.g. "Allow: GET\r\n") may be NULL. */
char *http_format_response(int status, const char *extra_headers, const char *content_type,
			   const char *body, size_t body_len, bool close, size_t *out_len);

#endif
