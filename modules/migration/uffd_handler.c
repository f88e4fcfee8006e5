/*
 * `vmm uffd-handler --socket PATH --mem-file FILE`: a page-fault handler
 * for snapshots loaded with backend_type Uffd. It listens on PATH, takes
 * one VMM's userfaultfd and region list (uffd.c), and answers each missing
 * page with UFFDIO_COPY from FILE (a Full snapshot's memory file). It
 * exits when that VMM goes away.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mig.h"

#define MAX_REGIONS 8

struct region {
	uint64_t base, size, offset, page;
};

struct handler {
	int uffd, conn;
	const uint8_t *mem; /* the memory file, mapped */
	uint64_t mem_size;
	unsigned nregions;
	struct region r[MAX_REGIONS];
	uint64_t served;
};

static int fail(const char *what)
{
	fprintf(stderr, "vmm uffd-handler: %s: %s\n", what, strerror(errno));
	return 1;
}

static int listen_on(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(a.sun_path, path);
	unlink(path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0)
		return -1;
	return s;
}

/* One message: the JSON text and the userfaultfd. */
static int receive(int conn, char *text, size_t cap, int *fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = text, .iov_len = cap - 1};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf)};
	ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	text[n] = 0;
	memcpy(fd, CMSG_DATA(c), sizeof(int));
	return 0;
}

static int parse_regions(struct handler *h, const char *text)
{
	json_error_t je;
	json_t *a = json_loads(text, 0, &je);
	size_t i;
	json_t *v;
	if (!json_is_array(a) || json_array_size(a) > MAX_REGIONS) {
		json_decref(a);
		return -1;
	}
	json_array_foreach(a, i, v)
	{
		struct region *r = &h->r[i];
		r->base = (uint64_t)json_integer_value(json_object_get(v, "base_host_virt_addr"));
		r->size = (uint64_t)json_integer_value(json_object_get(v, "size"));
		r->offset = (uint64_t)json_integer_value(json_object_get(v, "offset"));
		r->page = (uint64_t)json_integer_value(json_object_get(v, "page_size"));
		if (!r->page || (r->page & (r->page - 1)) || r->offset > h->mem_size ||
		    r->size > h->mem_size - r->offset) {
			json_decref(a);
			return -1;
		}
	}
	h->nregions = (unsigned)json_array_size(a);
	json_decref(a);
	return 0;
}

/* The page at addr, from the memory file. 0; -1 when the VMM is gone. */
static int serve(struct handler *h, uint64_t addr)
{
	for (unsigned i = 0; i < h->nregions; i++) {
		const struct region *r = &h->r[i];
		if (addr < r->base || addr - r->base >= r->size)
			continue;
		uint64_t page = addr & ~(r->page - 1);
		struct uffdio_copy c = {
		    .dst = page,
		    .src = (uint64_t)(uintptr_t)(h->mem + r->offset + (page - r->base)),
		    .len = r->page,
		};
		if (ioctl(h->uffd, UFFDIO_COPY, &c) < 0 && errno != EEXIST)
			return errno == ESRCH || errno == ENOENT ? -1 : (fail("UFFDIO_COPY"), -1);
		h->served++;
		return 0;
	}
	fprintf(stderr, "vmm uffd-handler: fault at %#llx outside every region\n",
		(unsigned long long)addr);
	return -1;
}

static int run(struct handler *h)
{
	struct pollfd p[2] = {{.fd = h->uffd, .events = POLLIN}, {.fd = h->conn, .events = POLLIN}};
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return fail("poll");
		}
		if (p[1].revents) /* the VMM closed its end: it is gone */
			return 0;
		struct uffd_msg msg[16];
		ssize_t n = read(h->uffd, msg, sizeof(msg));
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0)
			return 0;
		for (size_t i = 0; i < (size_t)n / sizeof(msg[0]); i++)
			if (msg[i].event == UFFD_EVENT_PAGEFAULT &&
			    serve(h, msg[i].arg.pagefault.address) < 0)
				return 0;
	}
}

static int open_mem(struct handler *h, const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return -1;
	h->mem_size = (uint64_t)st.st_size;
	h->mem = mmap(NULL, h->mem_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	return h->mem == MAP_FAILED ? -1 : 0;
}

int uffd_handler_main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"mem-file", required_argument, NULL, 'm'},
	    {0, 0, 0, 0},
	};
	const char *sock = NULL, *mem = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			sock = optarg;
		else if (c == 'm')
			mem = optarg;
		else
			sock = mem = NULL, optind = argc;
	}
	if (!sock || !mem) {
		fprintf(stderr, "usage: vmm uffd-handler --socket PATH --mem-file FILE\n");
		return 2;
	}
	struct handler h = {.uffd = -1};
	if (open_mem(&h, mem) < 0)
		return fail(mem);
	int ls = listen_on(sock);
	if (ls < 0)
		return fail(sock);
	fprintf(stderr, "vmm uffd-handler: serving %s on %s\n", mem, sock);
	char text[4096];
	h.conn = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	if (h.conn < 0 || receive(h.conn, text, sizeof(text), &h.uffd) < 0 ||
	    parse_regions(&h, text) < 0) {
		fprintf(stderr, "vmm uffd-handler: the VMM's hand-over was malformed\n");
		return 1;
	}
	close(ls);
	unlink(sock);
	int rc = run(&h);
	fprintf(stderr, "vmm uffd-handler: done, %llu pages served\n",
		(unsigned long long)h.served);
	return rc;
}
