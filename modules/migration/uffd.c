/*
 * The Uffd memory backend, VMM side (Firecracker's protocol): guest RAM is
 * registered with a userfaultfd for missing pages, and the fd is handed,
 * with a JSON description of the regions, to a page-fault handler process
 * listening on a Unix socket:
 *
 *   [{"base_host_virt_addr": A, "size": S, "offset": O, "page_size": P,
 *     "page_size_kib": P/1024}]
 *
 * The handler then fills each page the guest (or KVM, or a device) first
 * touches, from wherever it keeps the snapshot's memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "mig.h"
#include "vmm.h"

static int new_uffd(char *why, size_t n)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(why, n, "userfaultfd: %s", strerror(errno));
		return -1;
	}
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_MISSING_SHMEM};
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		snprintf(why, n, "UFFDIO_API: %s (this kernel cannot fault shared memory in)",
			 strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int register_ram(int uffd, const struct guest_mem *m, char *why, size_t n)
{
	struct uffdio_register reg = {
	    .range = {.start = (uint64_t)(uintptr_t)m->host, .len = m->size},
	    .mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		snprintf(why, n, "UFFDIO_REGISTER: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* RAM is one region: the memfd's layout is the memory file's. */
static char *regions_json(const struct guest_mem *m)
{
	json_t *r =
	    json_pack("[{s:I, s:I, s:I, s:I, s:I}]", "base_host_virt_addr",
		      (json_int_t)(uintptr_t)m->host, "size", (json_int_t)m->size, "offset",
		      (json_int_t)0, "page_size", (json_int_t)4096, "page_size_kib", (json_int_t)4);
	char *s = r ? json_dumps(r, JSON_COMPACT) : NULL;
	json_decref(r);
	return s;
}

static int send_with_fd(int sock, const char *text, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	memset(&ctl, 0, sizeof(ctl));
	struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)iov.iov_len ? 0 : -1;
}

static int connect_handler(const char *path, char *why, size_t n)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path)) {
		snprintf(why, n, "backend_path '%s': too long for a Unix socket", path);
		return -1;
	}
	strcpy(a.sun_path, path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		snprintf(why, n, "backend_path '%s': no page-fault handler answers: %s", path,
			 strerror(errno));
		if (s >= 0)
			close(s);
		return -1;
	}
	return s;
}

int uffd_attach(struct vm *vm, const char *sock, int fds[2], char *why, size_t n)
{
	int fd = new_uffd(why, n);
	if (fd < 0)
		return -1;
	char *text = regions_json(&vm->mem);
	int s = -1, rc = -1;
	if (!text)
		snprintf(why, n, "out of memory");
	else if (register_ram(fd, &vm->mem, why, n) == 0 &&
		 (s = connect_handler(sock, why, n)) >= 0)
		rc = send_with_fd(s, text, fd);
	if (rc < 0 && s >= 0)
		snprintf(why, n, "backend_path '%s': cannot hand over the userfaultfd: %s", sock,
			 strerror(errno));
	free(text);
	if (rc < 0) {
		if (s >= 0)
			close(s);
		close(fd);
		return -1;
	}
	/* Both stay open for the VM's life: the connection's end tells the
	 * handler when this VMM is gone. */
	fds[0] = fd;
	fds[1] = s;
	return 0;
}
