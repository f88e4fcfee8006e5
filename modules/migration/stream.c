/*
 * The live-migration stream: where it goes (tcp:HOST:PORT, unix:PATH) and
 * how it is framed. Every record has a header with its own checksum and a
 * checksum of its payload; the first record says what the stream is
 * (magic, version) and which CPU the VM runs on, so a stream that is not
 * ours, of another version, corrupt or cut short is refused before
 * anything of it is used.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mig.h"
#include "stream.h"

/* ---- addresses ---- */

struct mig_addr {
	int family;
	struct sockaddr_storage sa;
	socklen_t len;
};

static bool split_host_port(const char *s, char *host, size_t hn, char *port, size_t pn)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || !colon[1])
		return false;
	size_t hl = (size_t)(colon - s);
	if (*s == '[' && hl >= 2 && s[hl - 1] == ']') /* [::1]:port */
		s++, hl -= 2;
	if (hl >= hn || strlen(colon + 1) >= pn)
		return false;
	memcpy(host, s, hl);
	host[hl] = 0;
	strcpy(port, colon + 1);
	for (const char *p = port; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return atoi(port) > 0 && atoi(port) < 65536;
}

static int resolve(const char *uri, struct mig_addr *a, char *why, size_t n)
{
	memset(a, 0, sizeof(*a));
	if (!strncmp(uri, "unix:", 5)) {
		struct sockaddr_un *un = (struct sockaddr_un *)&a->sa;
		if (!uri[5] || strlen(uri + 5) >= sizeof(un->sun_path)) {
			snprintf(why, n, "unix:PATH needs a path of 1..%zu bytes",
				 sizeof(un->sun_path) - 1);
			return -1;
		}
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, uri + 5);
		a->family = AF_UNIX;
		a->len = sizeof(*un);
		return 0;
	}
	char host[256], port[8];
	if (strncmp(uri, "tcp:", 4) ||
	    !split_host_port(uri + 4, host, sizeof(host), port, sizeof(port))) {
		snprintf(why, n, "expected tcp:HOST:PORT or unix:PATH");
		return -1;
	}
	/* An address, not a name: resolving one would read files and ask
	 * servers from a sandboxed thread (and block it). */
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST},
			*res;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		snprintf(why, n, "%s: %s (give an IP address, or localhost)", host,
			 gai_strerror(rc));
		return -1;
	}
	memcpy(&a->sa, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	a->family = res->ai_family;
	freeaddrinfo(res);
	return 0;
}

bool mig_uri_valid(const char *uri, char *why, size_t n)
{
	char host[256], port[8];
	if (!strncmp(uri, "unix:", 5))
		return uri[5] && strlen(uri + 5) < sizeof(((struct sockaddr_un *)0)->sun_path)
			   ? true
			   : (snprintf(why, n, "unix:PATH needs a path"), false);
	unsigned char addr[16];
	if (strncmp(uri, "tcp:", 4) ||
	    !split_host_port(uri + 4, host, sizeof(host), port, sizeof(port))) {
		snprintf(why, n, "expected tcp:HOST:PORT or unix:PATH");
		return false;
	}
	/* An address, never a name (resolve()). */
	if (strcmp(host, "localhost") && inet_pton(AF_INET, host, addr) != 1 &&
	    inet_pton(AF_INET6, host, addr) != 1) {
		snprintf(why, n, "expected tcp:HOST:PORT with HOST an IP address (or localhost)");
		return false;
	}
	return true;
}

/* The last records (END, READY, GO) must not wait for Nagle. Buffers
 * stay the kernel's: larger ones would let the source run ahead of what
 * the destination has applied, and that backlog would count as downtime. */
static void tune(int fd, int family)
{
	int one = 1;
	if (family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int mig_connect(const char *uri, char *why, size_t n)
{
	struct mig_addr a;
	if (resolve(uri, &a, why, n) < 0)
		return -1;
	int fd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a.sa, a.len) < 0) {
		snprintf(why, n, "cannot connect to %s: %s", uri, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	tune(fd, a.family);
	return fd;
}

int mig_listen(const char *uri, char *why, size_t n)
{
	struct mig_addr a;
	if (resolve(uri, &a, why, n) < 0)
		return -1;
	if (a.family == AF_UNIX)
		unlink(((struct sockaddr_un *)&a.sa)->sun_path);
	int one = 1, fd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&a.sa, a.len) < 0 || listen(fd, 1) < 0) {
		snprintf(why, n, "cannot listen on %s: %s", uri, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* ---- records ---- */

static uint32_t hdr_crc(const struct mig_rec *r)
{
	struct mig_rec c = *r;
	c.hcrc = 0;
	return crc32c(0, &c, sizeof(c));
}

static int write_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;
	while (len) {
		/* write(), not send(): every thread kind may (SIGPIPE is ignored). */
		ssize_t w = write(fd, b, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		len -= (size_t)w;
	}
	return 0;
}

int mig_send(int fd, uint32_t type, uint64_t arg, const void *payload, uint32_t len)
{
	struct mig_rec r = {.type = type, .len = len, .arg = arg, .crc = crc32c(0, payload, len)};
	r.hcrc = hdr_crc(&r);
	if (write_all(fd, &r, sizeof(r)) < 0 || (len && write_all(fd, payload, len) < 0))
		return -1;
	return 0;
}

/* Read exactly len bytes; timeout_ms < 0: wait forever. 0, or -1 with
 * why (EOF, error, timeout). */
static int read_all(int fd, void *p, size_t len, int timeout_ms, char *why, size_t n)
{
	uint8_t *b = p;
	while (len) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int pr = poll(&pf, 1, timeout_ms);
		if (pr == 0) {
			snprintf(why, n, "the other side went silent");
			return -1;
		}
		ssize_t r = pr < 0 ? -1 : read(fd, b, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(why, n, "%s",
				 r == 0 ? "the stream ended early (the other side went away)"
					: strerror(errno));
			return -1;
		}
		b += r;
		len -= (size_t)r;
	}
	return 0;
}

int mig_recv(int fd, struct mig_rec *r, void **payload, int timeout_ms, char *why, size_t n)
{
	*payload = NULL;
	if (read_all(fd, r, sizeof(*r), timeout_ms, why, n) < 0)
		return -1;
	if (hdr_crc(r) != r->hcrc) {
		snprintf(why, n, "corrupt stream: a record header fails its checksum");
		return -1;
	}
	if (r->len > MIG_REC_MAX) {
		snprintf(why, n, "corrupt stream: a record of %u bytes", r->len);
		return -1;
	}
	void *p = malloc(r->len ? r->len : 1);
	if (!p) {
		snprintf(why, n, "out of memory");
		return -1;
	}
	if (read_all(fd, p, r->len, timeout_ms, why, n) < 0) {
		free(p);
		return -1;
	}
	if (crc32c(0, p, r->len) != r->crc) {
		snprintf(why, n, "corrupt stream: record type %u fails its checksum", r->type);
		free(p);
		return -1;
	}
	*payload = p;
	return 0;
}

/* ---- the first record ---- */

void mig_hello_init(struct mig_hello *h, const struct cpu_ident *cpu, uint64_t mem_size,
		    uint32_t ncpus)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, MIG_MAGIC, sizeof(h->magic));
	h->version = MIG_VERSION;
	h->cpu = *cpu;
	h->mem_size = mem_size;
	h->ncpus = ncpus;
}

int mig_hello_check(const struct mig_rec *r, const void *p, struct mig_hello *out, char *why,
		    size_t n)
{
	if (r->type != MIG_REC_HELLO || r->len != sizeof(*out)) {
		snprintf(why, n, "not a vmm migration stream");
		return -1;
	}
	memcpy(out, p, sizeof(*out));
	if (memcmp(out->magic, MIG_MAGIC, sizeof(out->magic))) {
		snprintf(why, n, "not a vmm migration stream (bad magic)");
		return -1;
	}
	if (out->version != MIG_VERSION) {
		snprintf(why, n,
			 "migration stream version %u is not supported (this VMM speaks %d)",
			 out->version, MIG_VERSION);
		return -1;
	}
	if (!out->mem_size || out->mem_size & 4095 || !out->ncpus || out->ncpus > 1024) {
		snprintf(why, n, "corrupt stream: %u vCPUs, %llu bytes of RAM", out->ncpus,
			 (unsigned long long)out->mem_size);
		return -1;
	}
	return 0;
}
