/*
 * The control plane: a REST API shaped like Firecracker's over a Unix
 * socket (server.c: its own thread, HTTP framing), requests routed
 * (router.c) and handled (handlers.c) on the VMM's event loop thread,
 * the configuration model (config_json.c) shared with the config file,
 * metrics (metrics.c) and the `vmm ctl` client (client.c).
 *
 * The API reaches the VMM only through struct api_vmm_ops, so handlers
 * are tested against a fake VMM.
 */
#ifndef VMM_API_API_H
#define VMM_API_API_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../loop.h"
#include "../vmm.h"

enum api_vm_state { API_VM_NOT_STARTED, API_VM_RUNNING, API_VM_PAUSED };

/* What the API asks of the VMM. Each runs on the event loop thread and
 * returns 0, or -1 with a one-line reason in why. */
struct api_vmm_ops {
	enum api_vm_state (*state)(void *vmm);
	/* InstanceStart: build the VM from the configuration and run it. On
	 * failure *fatal says the VMM could not undo what it built and will
	 * exit (with the status the command line would have given). */
	int (*start)(void *vmm, bool *fatal, char *why, size_t n);
	int (*pause)(void *vmm, char *why, size_t n);
	int (*resume)(void *vmm, char *why, size_t n);
	int (*ctrl_alt_del)(void *vmm, char *why, size_t n);
	/* Swap drive `index`'s backing file for `path` (a running VM). */
	int (*swap_drive)(void *vmm, unsigned index, const char *path, char *why, size_t n);
	/* Copy guest memory; false if any byte of the range is not RAM. */
	bool (*read_memory)(void *vmm, uint64_t gpa, void *dst, size_t len);
	/* GET /vm/info's vCPU and device parts: {"vcpus": [...], ...}. */
	json_t *(*info)(void *vmm);
	/* Per-device counters for a metrics line: {"vcpu": [...], "block": [...]} */
	json_t *(*device_metrics)(void *vmm);
	/* The VM itself, for compile-time modules' endpoints (snapshots,
	 * migration); NULL (or a NULL op) when there is none (a fake VMM). */
	struct vm *(*vm)(void *vmm);
	/* The balloon of a started VM: a new target, a new statistics
	 * interval (> 0), and GET /balloon/statistics's body (NULL: none). */
	int (*balloon_set_target)(void *vmm, uint32_t amount_mib, char *why, size_t n);
	int (*balloon_set_stats_interval)(void *vmm, uint32_t secs, char *why, size_t n);
	json_t *(*balloon_stats)(void *vmm);
};

/* Counted by the API thread, read by metrics. */
struct api_stats {
	atomic_uint_fast64_t requests;
	atomic_uint_fast64_t status_2xx, status_4xx, status_5xx;
	atomic_uint_fast64_t bad_framing; /* refused before routing */
	atomic_uint_fast64_t timeouts;
	atomic_uint_fast64_t connections;
};

struct metrics {
	int fd;	      /* the metrics file; -1: none */
	int timer_fd; /* periodic flush on the loop; -1: none */
	struct event_loop *loop;
	uint64_t lines;
};

struct api_ctx {
	struct vm_config *cfg; /* the VM's configuration; event loop thread only */
	const struct api_vmm_ops *ops;
	void *vmm;
	struct event_loop *loop;
	struct api_stats stats;
	struct metrics metrics;
	int log_fd; /* PUT /logger's file; -1: stderr */
	uint64_t start_ns;
};

void api_ctx_init(struct api_ctx *ctx, struct vm_config *cfg, const struct api_vmm_ops *ops,
		  void *vmm, struct event_loop *loop);
void api_ctx_destroy(struct api_ctx *ctx);
/* Apply the configuration's logger and metrics (config file, start-up).
 * Returns 0, or -1 with a message printed. */
int api_ctx_apply_startup(struct api_ctx *ctx);

/* ---- logger and metrics (metrics.c) ---- */

/* Open path and send the log there with lc's level and decorations (path
 * NULL: stderr). Returns 0 or -1 with the reason in why. */
int api_logger_apply(struct api_ctx *ctx, const char *path, const struct logger_config *lc,
		     char *why, size_t n);
/* Open the metrics file and flush every METRICS_PERIOD_MS on the loop. */
int metrics_open(struct api_ctx *ctx, const char *path, char *why, size_t n);
/* Write one JSON line now. Returns 0 or -1 with the reason in why. */
int metrics_flush(struct api_ctx *ctx, char *why, size_t n);
void metrics_close(struct metrics *m);
/* The line metrics_flush() writes (for tests). */
json_t *metrics_snapshot(struct api_ctx *ctx);
#define METRICS_PERIOD_MS 60000

/* ---- the server (server.c) ---- */

struct api_server;

/* Bind path (replacing a stale socket file, refusing one something
 * listens on), start the API thread, and serve requests through ctx on
 * ctx->loop. The thread enters sb's sandbox (NULL: none) before it
 * accepts anything. NULL on failure, with a message printed. */
struct api_server *api_server_start(const char *path, struct api_ctx *ctx,
				    const struct sandbox *sb);
/* Stop the thread, close every connection, remove the socket file. */
void api_server_stop(struct api_server *s);

/* Read timeout for one request (ms): VMM_API_TIMEOUT_MS, default 5000. */
#define API_TIMEOUT_MS_DEFAULT 5000
#define API_MAX_CONNS 32

/* ---- the client (client.c): `vmm ctl --api-sock PATH COMMAND ...` ---- */
int api_client_main(int argc, char **argv);

#endif
