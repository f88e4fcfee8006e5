/*
 * `vmm ctl --api-sock PATH COMMAND`: a small client for the API socket.
 *
 * Exit status: 0 success (the body, if any, on stdout), 1 the API
 * answered with an error (its fault_message on stderr), 2 bad usage,
 * 3 no answer (cannot connect, malformed or no response).
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "api.h"
#include "http.h"

#define CTL_OK 0
#define CTL_API_ERROR 1
#define CTL_USAGE 2
#define CTL_NO_ANSWER 3
#define RESP_MAX (1024 * 1024)

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: vmm ctl --api-sock PATH COMMAND\n"
		"\n"
		"Commands:\n"
		"  get                      instance information (GET /)\n"
		"  info                     vCPUs, memory, devices (GET /vm/info)\n"
		"  config                   the full configuration (GET /vm/config)\n"
		"  start                    boot the configured VM (InstanceStart)\n"
		"  pause | resume           PATCH /vm\n"
		"  raw METHOD PATH [JSON]   any request, e.g. raw PUT /machine-config "
		"'{\"vcpu_count\":2,\"mem_size_mib\":256}'\n"
		"\n"
		"Exit status: 0 success, 1 the API refused the request, 2 usage, 3 no answer.\n");
}

struct ctl_request {
	const char *method, *path, *body;
};

static int connect_to(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "vmm ctl: --api-sock %s: path too long\n", path);
		return -1;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 30};
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "vmm ctl: cannot connect to %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static bool send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool send_request(int fd, const struct ctl_request *r)
{
	size_t blen = r->body ? strlen(r->body) : 0;
	char head[1024], length[96] = "";
	if (r->body)
		snprintf(length, sizeof(length),
			 "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
	int n = snprintf(head, sizeof(head),
			 "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
			 "Accept: application/json\r\n%s\r\n",
			 r->method, r->path, length);
	if (n < 0 || (size_t)n >= sizeof(head))
		return false;
	return send_all(fd, head, (size_t)n) && (!blen || send_all(fd, r->body, blen));
}

/* Read until EOF (we asked for Connection: close) or RESP_MAX. */
static char *read_all(int fd, size_t *len)
{
	size_t cap = 4096;
	char *buf = malloc(cap + 1);
	*len = 0;
	while (buf) {
		if (*len == cap) {
			char *p = cap < RESP_MAX ? realloc(buf, cap * 2 + 1) : NULL;
			if (!p)
				break;
			buf = p;
			cap *= 2;
		}
		ssize_t n = recv(fd, buf + *len, cap - *len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		*len += (size_t)n;
	}
	if (buf)
		buf[*len] = 0;
	return buf;
}

/* Split a response into status and body (after the blank line). */
static bool parse_response(char *buf, size_t len, int *status, const char **body, size_t *body_len)
{
	char *end = strstr(buf, "\r\n\r\n");
	if (!end || sscanf(buf, "HTTP/1.%*1[01] %3d", status) != 1)
		return false;
	*body = end + 4;
	*body_len = len - (size_t)(end + 4 - buf);
	return true;
}

static void print_body(const char *body, size_t len, FILE *out)
{
	json_t *v = json_loadb(body, len, 0, NULL);
	if (v) {
		json_dumpf(v, out, JSON_INDENT(2));
		fputc('\n', out);
		json_decref(v);
	} else if (len) {
		fwrite(body, 1, len, out);
		fputc('\n', out);
	}
}

static int report(int status, const char *body, size_t len)
{
	if (status >= 200 && status < 300) {
		print_body(body, len, stdout);
		return CTL_OK;
	}
	json_t *v = json_loadb(body, len, 0, NULL);
	const char *fault = json_string_value(json_object_get(v, "fault_message"));
	fprintf(stderr, "vmm ctl: %d %s: %s\n", status, http_status_reason(status),
		fault ? fault : "(no fault_message)");
	json_decref(v);
	return CTL_API_ERROR;
}

static int perform(const char *sock, const struct ctl_request *r)
{
	int fd = connect_to(sock);
	if (fd < 0)
		return CTL_NO_ANSWER;
	size_t len;
	char *buf = NULL;
	int rc = CTL_NO_ANSWER, status;
	const char *body;
	size_t body_len;
	if (!send_request(fd, r))
		fprintf(stderr, "vmm ctl: cannot send the request: %s\n", strerror(errno));
	else if (!(buf = read_all(fd, &len)) ||
		 !parse_response(buf, len, &status, &body, &body_len))
		fprintf(stderr, "vmm ctl: no valid HTTP response from %s\n", sock);
	else
		rc = report(status, body, body_len);
	free(buf);
	close(fd);
	return rc;
}

/* COMMAND [ARGS] into a request; false for bad usage. */
static bool build(int argc, char **argv, struct ctl_request *r)
{
	static const struct {
		const char *cmd, *method, *path, *body;
	} simple[] = {
	    {"get", "GET", "/", NULL},
	    {"info", "GET", "/vm/info", NULL},
	    {"config", "GET", "/vm/config", NULL},
	    {"start", "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}"},
	    {"pause", "PATCH", "/vm", "{\"state\": \"Paused\"}"},
	    {"resume", "PATCH", "/vm", "{\"state\": \"Resumed\"}"},
	};
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		if (strcmp(argv[0], simple[i].cmd) == 0) {
			*r = (struct ctl_request){simple[i].method, simple[i].path, simple[i].body};
			return argc == 1;
		}
	}
	if (strcmp(argv[0], "raw") != 0 || argc < 3 || argc > 4 || argv[2][0] != '/')
		return false;
	*r = (struct ctl_request){argv[1], argv[2], argc == 4 ? argv[3] : NULL};
	for (const char *p = r->method; *p; p++)
		if (*p < 'A' || *p > 'Z')
			return false;
	for (const char *p = r->path; *p; p++)
		if (*p <= ' ' || *p > '~')
			return false;
	return true;
}

int api_client_main(int argc, char **argv)
{
	const char *sock = NULL;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return CTL_OK;
		}
		if (!strcmp(argv[i], "--api-sock") && i + 1 < argc) {
			sock = argv[++i];
		} else if (!strncmp(argv[i], "--api-sock=", 11)) {
			sock = argv[i] + 11;
		} else {
			fprintf(stderr, "vmm ctl: unknown option '%s' (see vmm ctl --help)\n",
				argv[i]);
			return CTL_USAGE;
		}
	}
	struct ctl_request r;
	if (!sock || i == argc || !build(argc - i, argv + i, &r)) {
		fprintf(stderr, "vmm ctl: %s\n",
			!sock ? "--api-sock PATH is required" : "bad or missing command");
		usage(stderr);
		return CTL_USAGE;
	}
	return perform(sock, &r);
}
