/*
 * The API server: a Unix socket served by its own thread.
 *
 * The API thread accepts connections and does all the HTTP work without
 * ever blocking on a client: sockets are non-blocking, every request has
 * a read deadline (slow clients get 408), responses are queued and
 * written as the client reads them. A routed request with a parsed body
 * is handed to the VMM's event loop (one slot + an eventfd) and the API
 * thread waits for the handler's response: every handler runs on the
 * event loop thread, the one that owns the VM.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../log.h"
#include "../seccomp/sandbox.h"
#include "api.h"
#include "http.h"
#include "router.h"

#define IN_CAP (HTTP_HEAD_MAX + HTTP_BODY_MAX)
#define IDLE_MS 120000 /* a keep-alive connection with nothing to say */

struct conn {
	int fd; /* -1: free slot */
	char *in;
	size_t in_len;
	char *out;
	size_t out_len, out_off;
	uint64_t deadline_ms;	    /* the request in progress must be in by then; 0: none */
	uint64_t write_deadline_ms; /* the client must have read its response by then */
	uint64_t idle_ms;	    /* last activity */
	bool closing;		    /* close once out is written */
	bool eof;		    /* the client shut its side */
	bool continue_sent;
};

/* A request on its way to the event loop and back. */
struct call {
	api_handler fn;
	struct api_request req;
	struct api_response resp;
	bool done;
};

struct api_server {
	struct api_ctx *ctx;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd;
	int wake_fd; /* eventfd: the API thread must stop */
	int call_fd; /* eventfd on the event loop: a call is pending */
	bool call_on_loop;
	pthread_t thread;
	bool thread_started;
	uint64_t timeout_ms;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct call *pending; /* under lock */
	bool stopping;	      /* under lock */
	const struct sandbox *sandbox;
	int entered; /* under lock: 1 the thread is sandboxed, -1 it could not be */
	struct conn conns[API_MAX_CONNS];
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the bridge to the event loop ---- */

/* Event loop thread: run the pending call's handler. */
static void on_call(void *opaque, uint32_t events)
{
	struct api_server *s = opaque;
	uint64_t v;
	(void)events;
	if (read(s->call_fd, &v, sizeof(v)) < 0)
		return;
	pthread_mutex_lock(&s->lock);
	struct call *c = s->pending;
	s->pending = NULL;
	pthread_mutex_unlock(&s->lock);
	if (!c)
		return;
	vmm_log_clear_error();
	c->fn(s->ctx, &c->req, &c->resp);
	pthread_mutex_lock(&s->lock);
	c->done = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* API thread: hand c to the event loop and wait for its response. */
static void run_on_loop(struct api_server *s, struct call *c)
{
	uint64_t one = 1;
	pthread_mutex_lock(&s->lock);
	s->pending = c;
	if (!s->stopping && write(s->call_fd, &one, sizeof(one)) == sizeof(one)) {
		while (!c->done && !s->stopping)
			pthread_cond_wait(&s->cond, &s->lock);
	}
	if (!c->done) {
		s->pending = NULL;
		api_fault(&c->resp, 503, "the VMM is shutting down");
	}
	pthread_mutex_unlock(&s->lock);
}

/* ---- responses ---- */

static void conn_close(struct api_server *s, struct conn *c)
{
	(void)s;
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Write what the client will take now. Returns false when the connection
 * is broken. */
static bool flush_out(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN;
		c->out_off += (size_t)n;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	return true;
}

static void queue_out(struct conn *c, const char *data, size_t len)
{
	char *p = realloc(c->out, c->out_len + len);
	if (!p) {
		c->closing = true; /* cannot answer: drop the connection */
		return;
	}
	memcpy(p + c->out_len, data, len);
	c->out = p;
	c->out_len += len;
}

static void count_status(struct api_stats *st, int status)
{
	if (status < 300)
		atomic_fetch_add(&st->status_2xx, 1);
	else if (status < 500)
		atomic_fetch_add(&st->status_4xx, 1);
	else
		atomic_fetch_add(&st->status_5xx, 1);
}

/* Queue r's response. A HEAD request gets the head only (its
 * Content-Length still counts the body it would have had). */
static void respond(struct api_server *s, struct conn *c, const struct api_response *r, bool close,
		    bool head_only)
{
	char *body = NULL, extra[96] = "";
	json_t *fault = NULL;
	if (r->status == 200 && r->body)
		body = json_dumps(r->body, JSON_COMPACT);
	else if (r->status != 204 && (fault = json_pack("{s:s}", "fault_message", r->fault)))
		body = json_dumps(fault, JSON_COMPACT);
	json_decref(fault);
	if (r->status == 405)
		snprintf(extra, sizeof(extra), "Allow: %s\r\n", r->allow);
	size_t len, body_len = body ? strlen(body) : 0;
	char *msg =
	    http_format_response(r->status, extra, "application/json", body, body_len, close, &len);
	free(body);
	count_status(&s->ctx->stats, r->status);
	if (msg)
		queue_out(c, msg, head_only ? len - body_len : len);
	free(msg);
	if (close || !msg)
		c->closing = true;
}

/* ---- requests ---- */

static void handle_request(struct api_server *s, struct conn *c, const struct http_request *h)
{
	struct call call = {0};
	char *query = NULL;
	atomic_fetch_add(&s->ctx->stats.requests, 1);
	call.fn =
	    api_route(h->method, h->path, h->path_len, h->query != NULL, &call.req, &call.resp);
	if (call.fn && h->query && !(query = strndup(h->query, h->query_len))) {
		api_fault(&call.resp, 500, "out of memory");
		call.fn = NULL;
	}
	if (call.fn && api_parse_body(h->method, h->body, h->body_len, h->has_content_length,
				      &call.req.body, &call.resp)) {
		call.req.method = h->method;
		call.req.query = query;
		run_on_loop(s, &call);
	}
	vmm_debug("api: %s %.*s -> %d", h->method_name, (int)h->path_len, h->path,
		  call.resp.status);
	respond(s, c, &call.resp, !h->keep_alive, h->method == HTTP_HEAD);
	json_decref(call.req.body);
	json_decref(call.resp.body);
	free(query);
}

static void refuse(struct api_server *s, struct conn *c, int status, const char *why)
{
	struct api_response r = {.status = status};
	snprintf(r.fault, sizeof(r.fault), "%s", why);
	atomic_fetch_add(&s->ctx->stats.bad_framing, 1);
	respond(s, c, &r, true, false);
}

/* Write what is queued; true once nothing is left (a broken connection
 * is marked closing, its output dropped). */
static bool drain(struct conn *c)
{
	if (!flush_out(c)) {
		c->closing = true;
		c->out_off = c->out_len;
		return false;
	}
	return c->out_off == c->out_len;
}

/* Handle every complete request in c->in, one at a time (the next only
 * once the previous response is written). */
static void process(struct api_server *s, struct conn *c)
{
	while (!c->closing && drain(c)) {
		struct http_request req;
		enum http_parse_result r = http_parse(c->in, c->in_len, &req);
		if (r == HTTP_BAD) {
			refuse(s, c, req.error_status, req.error_reason);
			return;
		}
		if (r == HTTP_INCOMPLETE) {
			if (c->in_len && c->eof) {
				refuse(s, c, 400, "incomplete request: the client closed its side");
			} else if (req.head_complete && req.expect_continue && !c->continue_sent) {
				static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
				queue_out(c, cont, sizeof(cont) - 1);
				c->continue_sent = true;
			}
			if (c->in_len && !c->deadline_ms)
				c->deadline_ms = now_ms() + s->timeout_ms;
			if (c->eof && !c->in_len)
				c->closing = true;
			return;
		}
		handle_request(s, c, &req);
		memmove(c->in, c->in + req.consumed, c->in_len - req.consumed);
		c->in_len -= req.consumed;
		c->continue_sent = false;
		c->deadline_ms = c->in_len ? now_ms() + s->timeout_ms : 0;
	}
}

static void on_readable(struct api_server *s, struct conn *c)
{
	if (c->in_len == IN_CAP)
		return; /* full of pipelined requests: they go first */
	ssize_t n = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (n < 0) {
			c->closing = true;
			c->out_off = c->out_len; /* nothing more reaches it */
			return;
		}
		c->eof = true;
	}
	c->in_len += (size_t)(n > 0 ? n : 0);
	c->idle_ms = now_ms();
	process(s, c);
}

/* The request did not arrive in time: 408, then close. */
static void on_timeout(struct api_server *s, struct conn *c)
{
	atomic_fetch_add(&s->ctx->stats.timeouts, 1);
	struct api_response r = {.status = 408};
	snprintf(r.fault, sizeof(r.fault), "request not received within %llu ms",
		 (unsigned long long)s->timeout_ms);
	respond(s, c, &r, true, false);
	c->deadline_ms = 0;
	if (!flush_out(c) || c->out_off == c->out_len)
		conn_close(s, c);
}

/* ---- the thread ---- */

static void accept_one(struct api_server *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct conn *c = NULL;
	for (unsigned i = 0; i < API_MAX_CONNS && !c; i++)
		if (s->conns[i].fd < 0)
			c = &s->conns[i];
	char *in = c ? malloc(IN_CAP) : NULL;
	if (!in) {
		/* Best effort, and never blocking: the socket is non-blocking. */
		static const char body[] = "{\"fault_message\":\"too many API connections\"}";
		size_t len;
		char *msg = http_format_response(503, NULL, "application/json", body,
						 sizeof(body) - 1, true, &len);
		if (msg && send(fd, msg, len, MSG_NOSIGNAL) < 0) {
			/* the client is gone already */
		}
		free(msg);
		close(fd);
		return;
	}
	atomic_fetch_add(&s->ctx->stats.connections, 1);
	*c = (struct conn){.fd = fd, .in = in, .idle_ms = now_ms()};
}

/* Service one connection after poll(); false when it was closed. */
static bool service(struct api_server *s, struct conn *c, short revents, uint64_t now)
{
	if (revents & (POLLERR | POLLNVAL)) {
		conn_close(s, c);
		return false;
	}
	if (revents & (POLLIN | POLLHUP))
		on_readable(s, c);
	if (!flush_out(c)) {
		conn_close(s, c);
		return false;
	}
	if (c->out_off == c->out_len && c->in_len && !c->closing)
		process(s, c); /* requests that waited for the previous response */
	if (!flush_out(c) || (c->closing && c->out_off == c->out_len)) {
		conn_close(s, c);
		return false;
	}
	bool pending = c->out_off < c->out_len;
	if (pending && !c->write_deadline_ms)
		c->write_deadline_ms = now + s->timeout_ms;
	else if (!pending)
		c->write_deadline_ms = 0;
	if (pending && now >= c->write_deadline_ms) {
		conn_close(s, c); /* it does not read its responses */
		return false;
	}
	if (!pending && c->deadline_ms && now >= c->deadline_ms) {
		on_timeout(s, c);
		return c->fd >= 0;
	}
	/* idle_ms may be a little after `now` (set while reading): no subtraction. */
	if (!c->in_len && c->out_off == c->out_len && now >= c->idle_ms + IDLE_MS) {
		conn_close(s, c);
		return false;
	}
	return true;
}

static int poll_timeout(const struct api_server *s, uint64_t now)
{
	uint64_t next = now + IDLE_MS;
	for (unsigned i = 0; i < API_MAX_CONNS; i++) {
		const struct conn *c = &s->conns[i];
		if (c->fd < 0)
			continue;
		if (c->deadline_ms && c->deadline_ms < next)
			next = c->deadline_ms;
		if (c->write_deadline_ms && c->write_deadline_ms < next)
			next = c->write_deadline_ms;
		if (!c->in_len && c->idle_ms + IDLE_MS < next)
			next = c->idle_ms + IDLE_MS;
	}
	return next <= now ? 0 : (int)(next - now);
}

static bool should_stop(struct api_server *s)
{
	pthread_mutex_lock(&s->lock);
	bool stop = s->stopping;
	pthread_mutex_unlock(&s->lock);
	return stop;
}

/* The filter goes in before the first accept(); api_server_start() waits
 * for the outcome. */
static bool enter_sandbox(struct api_server *s)
{
	int rc = sandbox_enter(s->sandbox, SANDBOX_API);
	pthread_mutex_lock(&s->lock);
	s->entered = rc ? -1 : 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return rc == 0;
}

static void *api_thread(void *arg)
{
	struct api_server *s = arg;
	struct pollfd pfd[2 + API_MAX_CONNS];
	struct conn *who[2 + API_MAX_CONNS];
	if (!enter_sandbox(s))
		return NULL;
	while (!should_stop(s)) {
		unsigned n = 0;
		pfd[n++] = (struct pollfd){.fd = s->wake_fd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
		for (unsigned i = 0; i < API_MAX_CONNS; i++) {
			struct conn *c = &s->conns[i];
			if (c->fd < 0)
				continue;
			bool pending = c->out_off < c->out_len;
			bool want_in = !pending && !c->eof && !c->closing && c->in_len < IN_CAP;
			short ev = (short)((pending ? POLLOUT : 0) | (want_in ? POLLIN : 0));
			who[n] = c;
			pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
		}
		int rc = poll(pfd, n, poll_timeout(s, now_ms()));
		if (rc < 0 && errno != EINTR)
			break;
		if (pfd[1].revents & POLLIN)
			accept_one(s);
		uint64_t now = now_ms();
		for (unsigned i = 2; i < n; i++)
			service(s, who[i], rc > 0 ? pfd[i].revents : 0, now);
	}
	for (unsigned i = 0; i < API_MAX_CONNS; i++) {
		if (s->conns[i].fd >= 0) {
			flush_out(
			    &s->conns[i]); /* a last response, e.g. to a fatal InstanceStart */
			conn_close(s, &s->conns[i]);
		}
	}
	return NULL;
}

/* ---- the socket ---- */

/* path exists: replace it only if it is a socket nobody listens on. */
static int reclaim_stale(const char *path, const struct sockaddr_un *addr)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return 0; /* gone meanwhile */
	if (!S_ISSOCK(st.st_mode)) {
		vmm_err("--api-sock %s: exists and is not a socket; not replacing it", path);
		return -1;
	}
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0) {
		vmm_perr("--api-sock %s: socket", path);
		return -1;
	}
	int rc = connect(probe, (const struct sockaddr *)addr, sizeof(*addr));
	int err = errno;
	close(probe);
	if (rc == 0) {
		vmm_err("--api-sock %s: another process is listening on it (another VMM?)", path);
		return -1;
	}
	if (err != ECONNREFUSED) {
		errno = err;
		vmm_perr("--api-sock %s: cannot tell whether it is in use", path);
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		vmm_perr("--api-sock %s: cannot remove the stale socket", path);
		return -1;
	}
	return 0;
}

static int open_listener(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (!*path || strlen(path) >= sizeof(addr.sun_path)) {
		vmm_err("--api-sock %s: the path must be 1..%zu bytes", path,
			sizeof(addr.sun_path) - 1);
		return -1;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		vmm_perr("--api-sock %s: socket", path);
		return -1;
	}
	int rc = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	if (rc < 0 && errno == EADDRINUSE) {
		if (reclaim_stale(path, &addr) < 0) {
			close(fd);
			return -1;
		}
		rc = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	}
	if (rc < 0 || listen(fd, 64) < 0) {
		vmm_perr("--api-sock %s: cannot listen", path);
		close(fd);
		return -1;
	}
	return fd;
}

static uint64_t timeout_ms(void)
{
	const char *env = getenv("VMM_API_TIMEOUT_MS");
	char *end;
	if (!env || !*env)
		return API_TIMEOUT_MS_DEFAULT;
	unsigned long long v = strtoull(env, &end, 10);
	return *end || v == 0 || v > 600000 ? API_TIMEOUT_MS_DEFAULT : v;
}

static void server_free(struct api_server *s)
{
	if (s->call_on_loop)
		loop_del(s->ctx->loop, s->call_fd);
	int fds[] = {s->listen_fd, s->wake_fd, s->call_fd};
	for (size_t i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

/* Wait for the thread to be sandboxed; false if it could not be. */
static bool thread_entered(struct api_server *s)
{
	pthread_mutex_lock(&s->lock);
	while (!s->entered)
		pthread_cond_wait(&s->cond, &s->lock);
	bool ok = s->entered > 0;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

struct api_server *api_server_start(const char *path, struct api_ctx *ctx,
				    const struct sandbox *sb)
{
	struct api_server *s = calloc(1, sizeof(*s));
	if (!s) {
		vmm_err("--api-sock: out of memory");
		return NULL;
	}
	s->ctx = ctx;
	s->sandbox = sb;
	s->timeout_ms = timeout_ms();
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	for (unsigned i = 0; i < API_MAX_CONNS; i++)
		s->conns[i].fd = -1;
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->listen_fd = -1;
	if (s->wake_fd < 0 || s->call_fd < 0) {
		vmm_perr("--api-sock: eventfd");
		server_free(s);
		return NULL;
	}
	if (loop_add(ctx->loop, s->call_fd, EPOLLIN, on_call, s) < 0) {
		server_free(s);
		return NULL;
	}
	s->call_on_loop = true;
	if ((s->listen_fd = open_listener(path)) < 0) {
		server_free(s);
		return NULL;
	}
	int err = pthread_create(&s->thread, NULL, api_thread, s);
	if (err) {
		vmm_err("--api-sock: cannot start the API thread: %s", strerror(err));
		unlink(s->path);
		server_free(s);
		return NULL;
	}
	pthread_setname_np(s->thread, "vmm-api");
	s->thread_started = true;
	if (!thread_entered(s)) {
		api_server_stop(s);
		return NULL;
	}
	return s;
}

void api_server_stop(struct api_server *s)
{
	if (!s)
		return;
	uint64_t one = 1;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (write(s->wake_fd, &one, sizeof(one)) < 0) {
		/* cannot fail: the counter is far from overflowing */
	}
	if (s->thread_started)
		pthread_join(s->thread, NULL);
	unlink(s->path);
	server_free(s);
}
