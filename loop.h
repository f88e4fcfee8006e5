/*
 * The VMM event loop: epoll on the main thread. Device backends, the
 * console and (later) the API bridge register fds here. loop_add/mod/del
 * are safe to call from any thread (epoll_ctl is).
 */
#ifndef VMM_LOOP_H
#define VMM_LOOP_H

#include <stdbool.h>
#include <stdint.h>

typedef void (*loop_fn)(void *opaque, uint32_t events);

struct loop_handler {
	int fd;
	loop_fn fn;
	void *opaque;
};

#define LOOP_MAX_FDS 128

struct event_loop {
	int epfd;
	bool stop;
	unsigned count;
	struct loop_handler handlers[LOOP_MAX_FDS];
};

int loop_init(struct event_loop *l);
void loop_destroy(struct event_loop *l);
int loop_add(struct event_loop *l, int fd, uint32_t events, loop_fn fn, void *opaque);
int loop_mod(struct event_loop *l, int fd, uint32_t events);
int loop_del(struct event_loop *l, int fd);
/* Run until loop_stop() is called (from a handler on the loop thread). */
int loop_run(struct event_loop *l);
void loop_stop(struct event_loop *l);

#endif
