/*
 * The control plane's context, the logger and metrics.
 *
 * Metrics are JSON lines: one per FlushMetrics action and one every
 * METRICS_PERIOD_MS (VMM_METRICS_PERIOD_MS overrides it), each holding
 * cumulative counters since the VMM started: the API server's, and the
 * VMM's per-device ones (vCPU exits, virtio-blk requests, ...).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../log.h"
#include "api.h"

static uint64_t now_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void api_ctx_init(struct api_ctx *ctx, struct vm_config *cfg, const struct api_vmm_ops *ops,
		  void *vmm, struct event_loop *loop)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->cfg = cfg;
	ctx->ops = ops;
	ctx->vmm = vmm;
	ctx->loop = loop;
	ctx->log_fd = -1;
	ctx->metrics.fd = ctx->metrics.timer_fd = -1;
	ctx->metrics.loop = loop;
	ctx->start_ns = now_ns(CLOCK_MONOTONIC);
}

void api_ctx_destroy(struct api_ctx *ctx)
{
	metrics_close(&ctx->metrics);
	if (ctx->log_fd >= 0) {
		vmm_log_configure(-1, VMM_LOG_WARNING, false, false);
		close(ctx->log_fd);
		ctx->log_fd = -1;
	}
}

/* O_NONBLOCK: a FIFO without a reader fails at once (ENXIO) instead of
 * blocking the event loop, and a full one drops lines instead of
 * stalling it. */
static int open_sink(const char *path, char *why, size_t n)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0)
		snprintf(why, n, "cannot open '%s': %s", path, strerror(errno));
	return fd;
}

int api_logger_apply(struct api_ctx *ctx, const char *path, const struct logger_config *lc,
		     char *why, size_t n)
{
	int fd = -1;
	if (path && (fd = open_sink(path, why, n)) < 0)
		return -1;
	vmm_log_configure(fd, lc->level, lc->show_level, lc->show_origin);
	if (ctx->log_fd >= 0)
		close(ctx->log_fd);
	ctx->log_fd = fd;
	return 0;
}

json_t *metrics_snapshot(struct api_ctx *ctx)
{
	struct api_stats *s = &ctx->stats;
	uint64_t up_ms = (now_ns(CLOCK_MONOTONIC) - ctx->start_ns) / 1000000;
	json_t *api = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "requests",
				(json_int_t)atomic_load(&s->requests), "status_2xx",
				(json_int_t)atomic_load(&s->status_2xx), "status_4xx",
				(json_int_t)atomic_load(&s->status_4xx), "status_5xx",
				(json_int_t)atomic_load(&s->status_5xx), "bad_framing",
				(json_int_t)atomic_load(&s->bad_framing), "timeouts",
				(json_int_t)atomic_load(&s->timeouts), "connections",
				(json_int_t)atomic_load(&s->connections));
	json_t *o = json_pack("{s:I, s:I, s:o*}", "utc_timestamp_ms",
			      (json_int_t)(now_ns(CLOCK_REALTIME) / 1000000), "uptime_ms",
			      (json_int_t)up_ms, "api_server", api);
	json_t *dev = ctx->ops->device_metrics(ctx->vmm);
	if (o && dev)
		json_object_update(o, dev);
	json_decref(dev);
	return o;
}

int metrics_flush(struct api_ctx *ctx, char *why, size_t n)
{
	struct metrics *m = &ctx->metrics;
	if (m->fd < 0) {
		snprintf(why, n, "metrics are not configured: PUT /metrics first");
		return -1;
	}
	json_t *o = metrics_snapshot(ctx);
	char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!line) {
		snprintf(why, n, "out of memory");
		return -1;
	}
	size_t len = strlen(line);
	line[len] = '\n'; /* in place of the NUL: one write for the whole line */
	ssize_t w = write(m->fd, line, len + 1);
	int err = errno;
	free(line);
	if (w != (ssize_t)(len + 1)) {
		snprintf(why, n, "write: %s", w < 0 ? strerror(err) : "short write");
		return -1;
	}
	m->lines++;
	return 0;
}

static void on_metrics_timer(void *opaque, uint32_t events)
{
	struct api_ctx *ctx = opaque;
	uint64_t ticks;
	char why[128];
	(void)events;
	if (read(ctx->metrics.timer_fd, &ticks, sizeof(ticks)) < 0)
		return;
	if (metrics_flush(ctx, why, sizeof(why)) < 0)
		vmm_warn("metrics: %s", why);
}

static uint64_t period_ms(void)
{
	const char *env = getenv("VMM_METRICS_PERIOD_MS");
	char *end;
	if (!env || !*env)
		return METRICS_PERIOD_MS;
	unsigned long long v = strtoull(env, &end, 10);
	return *end || v < 10 || v > 86400000ULL ? METRICS_PERIOD_MS : v;
}

static int start_timer(struct api_ctx *ctx, char *why, size_t n)
{
	struct metrics *m = &ctx->metrics;
	uint64_t ms = period_ms();
	struct itimerspec its = {
	    .it_interval = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000},
	};
	its.it_value = its.it_interval;
	m->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (m->timer_fd < 0 || timerfd_settime(m->timer_fd, 0, &its, NULL) < 0 ||
	    loop_add(m->loop, m->timer_fd, EPOLLIN, on_metrics_timer, ctx) < 0) {
		snprintf(why, n, "cannot start the metrics timer: %s", strerror(errno));
		if (m->timer_fd >= 0)
			close(m->timer_fd);
		m->timer_fd = -1;
		return -1;
	}
	return 0;
}

int metrics_open(struct api_ctx *ctx, const char *path, char *why, size_t n)
{
	struct metrics *m = &ctx->metrics;
	int fd = open_sink(path, why, n);
	if (fd < 0)
		return -1;
	m->fd = fd;
	if (start_timer(ctx, why, n) < 0) {
		metrics_close(m);
		return -1;
	}
	return 0;
}

void metrics_close(struct metrics *m)
{
	if (m->timer_fd >= 0) {
		loop_del(m->loop, m->timer_fd);
		close(m->timer_fd);
	}
	if (m->fd >= 0)
		close(m->fd);
	m->fd = m->timer_fd = -1;
}

int api_ctx_apply_startup(struct api_ctx *ctx)
{
	char why[300];
	const struct vm_config *cfg = ctx->cfg;
	if (cfg->has_logger &&
	    api_logger_apply(ctx, cfg->logger.path, &cfg->logger, why, sizeof(why)) < 0) {
		vmm_err("logger: log_path: %s", why);
		return -1;
	}
	if (cfg->metrics_path && metrics_open(ctx, cfg->metrics_path, why, sizeof(why)) < 0) {
		vmm_err("metrics: metrics_path: %s", why);
		return -1;
	}
	return 0;
}
