#include "http.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
	enum http_method m;
	const char *name;
} methods[] = {
    {HTTP_GET, "GET"},	     {HTTP_PUT, "PUT"},	  {HTTP_PATCH, "PATCH"},     {HTTP_POST, "POST"},
    {HTTP_DELETE, "DELETE"}, {HTTP_HEAD, "HEAD"}, {HTTP_OPTIONS, "OPTIONS"},
};

const char *http_method_name(enum http_method m)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (methods[i].m == m)
			return methods[i].name;
	return "?";
}

const char *http_status_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 414:
		return "URI Too Long";
	case 417:
		return "Expectation Failed";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

static enum http_parse_result bad(struct http_request *req, int status, const char *why)
{
	req->error_status = status;
	req->error_reason = why;
	return HTTP_BAD;
}

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c);
}

/* A header value byte: visible ASCII, space or tab. */
static bool is_value_char(unsigned char c)
{
	return (c >= 0x20 && c <= 0x7e) || c == '\t';
}

/*
 * Find the end of the line starting at `pos` inside buf[0..len). Returns
 * the index of its CR (the line is buf[pos..ret), CRLF follows), -1 if the
 * line is not complete yet, or -2 for a bare LF or a CR not followed by LF.
 */
static long line_end(const char *buf, size_t len, size_t pos)
{
	for (size_t i = pos; i < len; i++) {
		if (buf[i] == '\n')
			return -2;
		if (buf[i] == '\r') {
			if (i + 1 == len)
				return -1;
			return buf[i + 1] == '\n' ? (long)i : -2;
		}
	}
	return -1;
}

static bool parse_method(const char *s, size_t len, struct http_request *req)
{
	if (len == 0 || len > HTTP_METHOD_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return false;
	memcpy(req->method_name, s, len);
	req->method_name[len] = 0;
	req->method = HTTP_OTHER;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].name, req->method_name) == 0)
			req->method = methods[i].m;
	return true;
}

/* "HTTP/" 1*DIGIT "." 1*DIGIT */
static bool is_http_version(const char *v, size_t len)
{
	if (len < 8 || memcmp(v, "HTTP/", 5) != 0)
		return false;
	size_t i = 5, major = 0, minor = 0;
	while (i < len && v[i] >= '0' && v[i] <= '9')
		i++, major++;
	if (!major || i == len || v[i++] != '.')
		return false;
	while (i < len && v[i] >= '0' && v[i] <= '9')
		i++, minor++;
	return minor && i == len;
}

/* "METHOD SP origin-form SP HTTP/1.x"; returns 0 or an error status. */
static int parse_request_line(const char *s, size_t len, struct http_request *req, const char **why)
{
	const char *sp1 = memchr(s, ' ', len);
	if (!sp1 || !parse_method(s, (size_t)(sp1 - s), req)) {
		*why = "malformed request line: bad method";
		return 400;
	}
	const char *target = sp1 + 1, *end = s + len;
	const char *sp2 = memchr(target, ' ', (size_t)(end - target));
	if (!sp2) {
		*why = "malformed request line: expected METHOD /path HTTP/1.1";
		return 400;
	}
	if (sp2 == target || *target != '/') {
		*why = "malformed request line: the target must be a path starting with '/'";
		return 400;
	}
	for (const char *p = target; p < sp2; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '#') {
			*why = "malformed request line: bad character in the target";
			return 400;
		}
	}
	const char *version = sp2 + 1;
	size_t vlen = (size_t)(end - version);
	if (!is_http_version(version, vlen)) {
		*why = "malformed request line: bad HTTP version";
		return 400;
	}
	if (vlen != 8 || memcmp(version, "HTTP/1.", 7) != 0 ||
	    (version[7] != '1' && version[7] != '0')) {
		*why = "only HTTP/1.1 and HTTP/1.0 are supported";
		return 505;
	}
	req->keep_alive = version[7] == '1';
	req->path = target;
	const char *q = memchr(target, '?', (size_t)(sp2 - target));
	req->path_len = (size_t)((q ? q : sp2) - target);
	if (q) {
		req->query = q + 1;
		req->query_len = (size_t)(sp2 - q - 1);
	}
	return 0;
}

struct head_state {
	bool has_te;
	bool connection_close, connection_keep_alive;
};

static bool name_is(const char *name, size_t len, const char *lit)
{
	return strlen(lit) == len && strncasecmp(name, lit, len) == 0;
}

/* Does the comma-separated list v[0..len) hold token (case-insensitive)? */
static bool list_has(const char *v, size_t len, const char *token)
{
	size_t tlen = strlen(token);
	for (size_t i = 0; i < len;) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t start = i;
		while (i < len && v[i] != ',')
			i++;
		size_t end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end - start == tlen && strncasecmp(v + start, token, tlen) == 0)
			return true;
	}
	return false;
}

static int parse_content_length(const char *v, size_t len, struct http_request *req,
				const char **why)
{
	if (req->has_content_length) {
		*why = "duplicate Content-Length";
		return 400;
	}
	if (len == 0 || len > 19) {
		*why = len ? "Content-Length too large" : "empty Content-Length";
		return len ? 413 : 400;
	}
	uint64_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9') {
			*why = "Content-Length is not a decimal number";
			return 400;
		}
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	if (n > HTTP_BODY_MAX) {
		*why = "body too large (at most 51200 bytes)";
		return 413;
	}
	req->has_content_length = true;
	req->body_len = (size_t)n;
	return 0;
}

/* One "Name: value" line; returns 0 or an error status. */
static int parse_header(const char *s, size_t len, struct http_request *req, struct head_state *hs,
			const char **why)
{
	if (s[0] == ' ' || s[0] == '\t') {
		*why = "folded header lines are not accepted";
		return 400;
	}
	const char *colon = memchr(s, ':', len);
	size_t nlen = colon ? (size_t)(colon - s) : 0;
	for (size_t i = 0; i < nlen; i++)
		if (!is_tchar((unsigned char)s[i]))
			nlen = 0;
	if (!nlen) {
		*why = "malformed header line";
		return 400;
	}
	const char *v = colon + 1, *end = s + len;
	for (const char *p = v; p < end; p++) {
		if (!is_value_char((unsigned char)*p)) {
			*why = "bad character in a header value";
			return 400;
		}
	}
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	size_t vlen = (size_t)(end - v);
	if (name_is(s, nlen, "Content-Length"))
		return parse_content_length(v, vlen, req, why);
	if (name_is(s, nlen, "Transfer-Encoding")) {
		hs->has_te = true;
	} else if (name_is(s, nlen, "Connection")) {
		hs->connection_close |= list_has(v, vlen, "close");
		hs->connection_keep_alive |= list_has(v, vlen, "keep-alive");
	} else if (name_is(s, nlen, "Expect")) {
		if (!(vlen == 12 && strncasecmp(v, "100-continue", 12) == 0)) {
			*why = "only Expect: 100-continue is supported";
			return 417;
		}
		req->expect_continue = true;
	}
	return 0;
}

/* After the head: the rules that need every header. */
static int check_head(struct http_request *req, const struct head_state *hs, const char **why)
{
	if (hs->has_te) {
		*why = req->has_content_length
			   ? "Transfer-Encoding together with Content-Length"
			   : "Transfer-Encoding is not supported: send a Content-Length";
		return req->has_content_length ? 400 : 411;
	}
	bool needs_body =
	    req->method == HTTP_PUT || req->method == HTTP_PATCH || req->method == HTTP_POST;
	if (needs_body && !req->has_content_length) {
		*why = "a Content-Length is required";
		return 411;
	}
	if (hs->connection_close)
		req->keep_alive = false;
	else if (hs->connection_keep_alive)
		req->keep_alive = true;
	return 0;
}

enum http_parse_result http_parse(const char *buf, size_t len, struct http_request *req)
{
	memset(req, 0, sizeof(*req));
	struct head_state hs = {0};
	size_t scan = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;
	size_t pos = 0;
	const char *why = NULL;
	for (unsigned line = 0;; line++) {
		long e = line_end(buf, scan, pos);
		if (e == -2)
			return bad(req, 400, "lines must end with CRLF");
		if (e == -1) {
			if (len < HTTP_HEAD_MAX)
				return HTTP_INCOMPLETE;
			return line == 0
				   ? bad(req, 414, "request line too long")
				   : bad(req, 431, "request head too large (at most 8192 bytes)");
		}
		size_t llen = (size_t)e - pos;
		int status;
		if (line == 0)
			status = llen ? parse_request_line(buf, llen, req, &why) : 400;
		else if (llen == 0)
			break;
		else
			status = parse_header(buf + pos, llen, req, &hs, &why);
		if (status)
			return bad(req, status, why ? why : "malformed request line");
		pos = (size_t)e + 2;
	}
	req->head_len = pos + 2;
	int status = check_head(req, &hs, &why);
	if (status)
		return bad(req, status, why);
	req->head_complete = true;
	if (len - req->head_len < req->body_len)
		return HTTP_INCOMPLETE;
	req->body = buf + req->head_len;
	req->consumed = req->head_len + req->body_len;
	return HTTP_COMPLETE;
}

char *http_format_response(int status, const char *extra_headers, const char *content_type,
			   const char *body, size_t body_len, bool close, size_t *out_len)
{
	char head[512];
	int n;
	if (status == 204 || status == 100)
		n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nServer: vmm\r\n%s%s\r\n",
			     status, http_status_reason(status), extra_headers ? extra_headers : "",
			     close ? "Connection: close\r\n" : "");
	else
		n = snprintf(head, sizeof(head),
			     "HTTP/1.1 %d %s\r\nServer: vmm\r\nContent-Type: %s\r\n"
			     "Content-Length: %zu\r\n%s%s\r\n",
			     status, http_status_reason(status),
			     content_type ? content_type : "application/json", body_len,
			     extra_headers ? extra_headers : "",
			     close ? "Connection: close\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return NULL;
	if (status == 204 || status == 100)
		body_len = 0;
	char *out = malloc((size_t)n + body_len);
	if (!out)
		return NULL;
	memcpy(out, head, (size_t)n);
	if (body_len)
		memcpy(out + n, body, body_len);
	*out_len = (size_t)n + body_len;
	return out;
}
