#include "loop.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "log.h"

int loop_init(struct event_loop *l)
{
	memset(l, 0, sizeof(*l));
	for (unsigned i = 0; i < LOOP_MAX_FDS; i++)
		l->handlers[i].fd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		vmm_perr("epoll_create1");
		return -1;
	}
	return 0;
}

void loop_destroy(struct event_loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
}

/* Slots never move, so epoll's data.ptr stays valid while a slot is used. */
static struct loop_handler *slot_for(struct event_loop *l, int fd)
{
	for (unsigned i = 0; i < LOOP_MAX_FDS; i++)
		if (l->handlers[i].fd == fd)
			return &l->handlers[i];
	return NULL;
}

int loop_add(struct event_loop *l, int fd, uint32_t events, loop_fn fn, void *opaque)
{
	struct loop_handler *h = slot_for(l, -1);
	if (!h) {
		vmm_err("event loop: too many file descriptors");
		return -1;
	}
	h->fd = fd;
	h->fn = fn;
	h->opaque = opaque;
	struct epoll_event ev = { .events = events, .data.ptr = h };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		vmm_perr("epoll_ctl(ADD, fd %d)", fd);
		h->fd = -1;
		return -1;
	}
	l->count++;
	return 0;
}

int loop_mod(struct event_loop *l, int fd, uint32_t events)
{
	struct loop_handler *h = slot_for(l, fd);
	if (!h)
		return -1;
	struct epoll_event ev = { .events = events, .data.ptr = h };
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
}

int loop_del(struct event_loop *l, int fd)
{
	struct loop_handler *h = slot_for(l, fd);
	if (!h)
		return -1;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	h->fd = -1;
	l->count--;
	return 0;
}

void loop_stop(struct event_loop *l)
{
	l->stop = true;
}

int loop_run(struct event_loop *l)
{
	struct epoll_event evs[32];
	while (!l->stop) {
		int n = epoll_wait(l->epfd, evs, 32, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			vmm_perr("epoll_wait");
			return -1;
		}
		for (int i = 0; i < n && !l->stop; i++) {
			struct loop_handler *h = evs[i].data.ptr;
			/* A handler earlier in this batch may have removed it. */
			if (h->fd < 0)
				continue;
			h->fn(h->opaque, evs[i].events);
		}
	}
	return 0;
}
