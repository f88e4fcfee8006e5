/*
 * api/http.c: the request parser's strict, bounded framing and the
 * response writer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "api/http.h"

static enum http_parse_result parse(const char *s, struct http_request *req)
{
	return http_parse(s, strlen(s), req);
}

static void simple_get(void **state)
{
	(void)state;
	const char *s = "GET /machine-config HTTP/1.1\r\nHost: localhost\r\n\r\n";
	struct http_request r;
	assert_int_equal(parse(s, &r), HTTP_COMPLETE);
	assert_int_equal(r.method, HTTP_GET);
	assert_string_equal(r.method_name, "GET");
	assert_int_equal(r.path_len, strlen("/machine-config"));
	assert_memory_equal(r.path, "/machine-config", r.path_len);
	assert_null(r.query);
	assert_int_equal(r.body_len, 0);
	assert_false(r.has_content_length);
	assert_true(r.keep_alive);
	assert_int_equal(r.consumed, strlen(s));
}

static void put_with_body_and_query(void **state)
{
	(void)state;
	const char *s = "PUT /drives/rootfs?x=1&y HTTP/1.1\r\nContent-Length: 7\r\n"
			"content-type: application/json\r\n\r\n{\"a\":1}";
	struct http_request r;
	assert_int_equal(parse(s, &r), HTTP_COMPLETE);
	assert_int_equal(r.method, HTTP_PUT);
	assert_memory_equal(r.path, "/drives/rootfs", r.path_len);
	assert_int_equal(r.query_len, 5);
	assert_memory_equal(r.query, "x=1&y", 5);
	assert_true(r.has_content_length);
	assert_int_equal(r.body_len, 7);
	assert_memory_equal(r.body, "{\"a\":1}", 7);
	assert_int_equal(r.consumed, strlen(s));
}

/* Every strict prefix of a valid request needs more bytes. */
static void prefixes_are_incomplete(void **state)
{
	(void)state;
	const char *s = "PATCH /vm HTTP/1.1\r\nContent-Length: 18\r\nX-A:  b \r\n\r\n"
			"{\"state\":\"Paused\"}";
	struct http_request r;
	size_t len = strlen(s);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(http_parse(s, i, &r), HTTP_INCOMPLETE);
	assert_int_equal(http_parse(s, len, &r), HTTP_COMPLETE);
	/* The head alone: complete head, body outstanding. */
	assert_int_equal(http_parse(s, len - 18, &r), HTTP_INCOMPLETE);
	assert_true(r.head_complete);
}

static void pipelined(void **state)
{
	(void)state;
	const char *s = "GET / HTTP/1.1\r\n\r\nGET /version HTTP/1.1\r\n\r\n";
	struct http_request r;
	assert_int_equal(parse(s, &r), HTTP_COMPLETE);
	assert_int_equal(r.consumed, 18);
	assert_int_equal(parse(s + r.consumed, &r), HTTP_COMPLETE);
	assert_memory_equal(r.path, "/version", 8);
}

static void keep_alive_rules(void **state)
{
	(void)state;
	static const struct {
		const char *req;
		bool keep;
	} cases[] = {
	    {"GET / HTTP/1.1\r\n\r\n", true},
	    {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
	    {"GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n", false},
	    {"GET / HTTP/1.0\r\n\r\n", false},
	    {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_request r;
		assert_int_equal(parse(cases[i].req, &r), HTTP_COMPLETE);
		assert_int_equal(r.keep_alive, cases[i].keep);
	}
}

static void expect_continue(void **state)
{
	(void)state;
	const char *s = "PUT /logger HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n";
	struct http_request r;
	assert_int_equal(parse(s, &r), HTTP_INCOMPLETE);
	assert_true(r.head_complete);
	assert_true(r.expect_continue);
}

/* Malformed or unsupported framing, and the status each gets. */
static void bad_requests(void **state)
{
	(void)state;
	static const struct {
		const char *req;
		int status;
	} cases[] = {
	    {"GET / HTTP/1.1\n\n", 400},	      /* bare LF */
	    {"GET / HTTP/1.1\r\nHost: x\n\r\n", 400}, /* bare LF in a header */
	    {"GET / HTTP/1.1\rX\r\n\r\n", 400},	      /* CR without LF */
	    {"get / HTTP/1.1\r\n\r\n", 400},	      /* lowercase method */
	    {"G3T / HTTP/1.1\r\n\r\n", 400},
	    {"GETTTTTTTTTTTTTTTTTTTT / HTTP/1.1\r\n\r\n", 400}, /* method too long */
	    {" GET / HTTP/1.1\r\n\r\n", 400},
	    {"GET  / HTTP/1.1\r\n\r\n", 400},	     /* two spaces */
	    {"GET http://x/ HTTP/1.1\r\n\r\n", 400}, /* absolute form */
	    {"GET * HTTP/1.1\r\n\r\n", 400},
	    {"GET /a#b HTTP/1.1\r\n\r\n", 400},
	    {"GET /a\x7f HTTP/1.1\r\n\r\n", 400},
	    {"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 400}, /* non-ASCII target */
	    {"GET /\r\n\r\n", 400},		     /* HTTP/0.9 */
	    {"GET / HTTP/1.1 extra\r\n\r\n", 400},
	    {"GET / HTTP/2.0\r\n\r\n", 505},
	    {"GET / HTTP/1.2\r\n\r\n", 505},
	    {"GET / HTTP/1.10\r\n\r\n", 505},
	    {"GET / FTP/1.1\r\n\r\n", 400},
	    {"\r\nGET / HTTP/1.1\r\n\r\n", 400}, /* empty first line */
	    {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nName : x\r\n\r\n", 400},   /* space before colon */
	    {"GET / HTTP/1.1\r\n: x\r\n\r\n", 400},	   /* empty name */
	    {"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400}, /* folded */
	    {"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", 400},   /* control character */
	    {"GET / HTTP/1.1\r\nA: \xff\r\n\r\n", 400},	   /* non-ASCII value */
	    {"PUT /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400},
	    {"PUT /x HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400},
	    {"PUT /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
	    {"PUT /x HTTP/1.1\r\nContent-Length: +1\r\n\r\n", 400},
	    {"PUT /x HTTP/1.1\r\nContent-Length: 1 1\r\n\r\n", 400},
	    {"PUT /x HTTP/1.1\r\nContent-Length:\r\n\r\n", 400},
	    {"PUT /x HTTP/1.1\r\nContent-Length: 51201\r\n\r\n", 413},
	    {"PUT /x HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413},
	    {"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411},
	    {"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", 400},
	    {"GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411},
	    {"PUT /x HTTP/1.1\r\n\r\n", 411},
	    {"PATCH /x HTTP/1.1\r\n\r\n", 411},
	    {"POST /x HTTP/1.1\r\n\r\n", 411},
	    {"PUT /x HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n", 417},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_request r;
		enum http_parse_result res = parse(cases[i].req, &r);
		if (res != HTTP_BAD || r.error_status != cases[i].status)
			fail_msg("case %zu (%s): result %d status %d, expected %d", i, cases[i].req,
				 res, r.error_status, cases[i].status);
		assert_non_null(r.error_reason);
	}
}

static void nul_in_head(void **state)
{
	(void)state;
	const char s[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";
	struct http_request r;
	assert_int_equal(http_parse(s, sizeof(s) - 1, &r), HTTP_BAD);
	assert_int_equal(r.error_status, 400);
}

static char *repeat(const char *prefix, char c, size_t n, const char *suffix)
{
	size_t p = strlen(prefix), s = strlen(suffix);
	char *buf = malloc(p + n + s + 1);
	assert_non_null(buf);
	memcpy(buf, prefix, p);
	memset(buf + p, c, n);
	memcpy(buf + p + n, suffix, s + 1);
	return buf;
}

static void head_limits(void **state)
{
	(void)state;
	struct http_request r;
	/* A request line that never ends within the limit: 414. */
	char *s = repeat("GET /", 'a', HTTP_HEAD_MAX, "");
	assert_int_equal(parse(s, &r), HTTP_BAD);
	assert_int_equal(r.error_status, 414);
	free(s);
	/* Headers that overflow it: 431. */
	s = repeat("GET / HTTP/1.1\r\nX-Big: ", 'b', HTTP_HEAD_MAX, "\r\n\r\n");
	assert_int_equal(parse(s, &r), HTTP_BAD);
	assert_int_equal(r.error_status, 431);
	free(s);
	/* Just under the limit is fine (the head is exactly 8192 bytes). */
	size_t fixed = strlen("GET / HTTP/1.1\r\nX: \r\n\r\n");
	s = repeat("GET / HTTP/1.1\r\nX: ", 'c', HTTP_HEAD_MAX - fixed, "\r\n\r\n");
	assert_int_equal(strlen(s), HTTP_HEAD_MAX);
	assert_int_equal(parse(s, &r), HTTP_COMPLETE);
	free(s);
	/* One more byte is not. */
	s = repeat("GET / HTTP/1.1\r\nX: ", 'c', HTTP_HEAD_MAX - fixed + 1, "\r\n\r\n");
	assert_int_equal(parse(s, &r), HTTP_BAD);
	assert_int_equal(r.error_status, 431);
	free(s);
	/* A partial head under the limit waits. */
	s = repeat("GET / HTTP/1.1\r\nX: ", 'd', 4000, "");
	assert_int_equal(parse(s, &r), HTTP_INCOMPLETE);
	free(s);
}

static void body_limit(void **state)
{
	(void)state;
	struct http_request r;
	char head[128];
	snprintf(head, sizeof(head), "PUT /x HTTP/1.1\r\nContent-Length: %d\r\n\r\n",
		 HTTP_BODY_MAX);
	char *s = repeat(head, ' ', HTTP_BODY_MAX, "");
	assert_int_equal(parse(s, &r), HTTP_COMPLETE);
	assert_int_equal(r.body_len, HTTP_BODY_MAX);
	free(s);
}

static void responses(void **state)
{
	(void)state;
	size_t len;
	char *s = http_format_response(204, NULL, NULL, NULL, 0, false, &len);
	assert_non_null(s);
	assert_int_equal(len, strlen("HTTP/1.1 204 No Content\r\nServer: vmm\r\n\r\n"));
	assert_memory_equal(s, "HTTP/1.1 204 No Content\r\nServer: vmm\r\n\r\n", len);
	free(s);
	s = http_format_response(405, "Allow: GET\r\n", "application/json", "{}", 2, true, &len);
	assert_non_null(s);
	char *text = strndup(s, len);
	assert_non_null(strstr(text, "HTTP/1.1 405 Method Not Allowed\r\n"));
	assert_non_null(strstr(text, "Content-Length: 2\r\n"));
	assert_non_null(strstr(text, "Allow: GET\r\n"));
	assert_non_null(strstr(text, "Connection: close\r\n"));
	assert_string_equal(text + len - 6, "\r\n\r\n{}");
	free(text);
	free(s);
	assert_string_equal(http_status_reason(431), "Request Header Fields Too Large");
	assert_string_equal(http_method_name(HTTP_PATCH), "PATCH");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(simple_get),
	    cmocka_unit_test(put_with_body_and_query),
	    cmocka_unit_test(prefixes_are_incomplete),
	    cmocka_unit_test(pipelined),
	    cmocka_unit_test(keep_alive_rules),
	    cmocka_unit_test(expect_continue),
	    cmocka_unit_test(bad_requests),
	    cmocka_unit_test(nul_in_head),
	    cmocka_unit_test(head_limits),
	    cmocka_unit_test(body_limit),
	    cmocka_unit_test(responses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
