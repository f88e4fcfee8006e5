/*
 * Live migration, receiving (--incoming URI). A thread accepts one
 * connection and checks every record. Once the configuration is in, the
 * event loop builds the VM from it, with a fresh memfd as RAM and the
 * vCPUs held; the thread then reads RAM into that memfd, the drives into
 * this VMM's own image files (copy_disks) and the state into a buffer. At
 * END the loop loads the state into the held vCPUs and the devices (all
 * that is left for the downtime), the thread answers READY and is done,
 * and the loop waits for GO on the connection and lets the vCPUs run. Anything wrong before GO (a
 * bad record, another CPU, the source going away) ends this VMM with a message: it never runs a
 * guest it did not get whole, and the source, told so (ERROR) or finding the connection gone, runs
 * on.
 *
 * The thread starts before the VM exists, as set-up does, so outside the
 * sandbox (seccomp.c); it ends at GO.
 */
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mig_in.h"
#include "stream.h"
#include "vcpu.h"

#define PAGE 4096ULL

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void set_phase(struct mig_in *in, enum mig_in_phase ph)
{
	pthread_mutex_lock(&in->lock);
	in->phase = ph;
	pthread_mutex_unlock(&in->lock);
}

/* ---- records ---- */

static int on_pages(struct mig_in *in, const struct mig_rec *r, const void *p, char *why, size_t n)
{
	uint64_t pages = in->hello.mem_size / PAGE, count = r->len / PAGE;
	if (r->len % PAGE || !count || r->arg > pages || count > pages - r->arg) {
		snprintf(why, n, "corrupt stream: pages outside RAM");
		return -1;
	}
	/* pwrite(), not a copy through the mapping: shmem then allocates the
	 * pages without a fault each, several times faster here. */
	if (pwrite(in->memfd, p, r->len, (off_t)(r->arg * PAGE)) != (ssize_t)r->len) {
		snprintf(why, n, "guest RAM: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int on_zero(struct mig_in *in, const struct mig_rec *r, const void *p, char *why, size_t n)
{
	uint64_t pages = in->hello.mem_size / PAGE, count;
	if (r->len != sizeof(count)) {
		snprintf(why, n, "corrupt stream: malformed zero-page record");
		return -1;
	}
	memcpy(&count, p, sizeof(count));
	if (!count || r->arg > pages || count > pages - r->arg) {
		snprintf(why, n, "corrupt stream: pages outside RAM");
		return -1;
	}
	/* Punching the range frees it too; zeroes where that fails. */
	if (fallocate(in->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(r->arg * PAGE),
		      (off_t)(count * PAGE)) < 0)
		memset(in->mem + r->arg * PAGE, 0, count * PAGE);
	return 0;
}

static int on_disk(struct mig_in *in, const struct mig_rec *r, const void *p, char *why, size_t n)
{
	unsigned d = (unsigned)(r->arg >> 56);
	uint64_t off = r->arg & ((1ULL << 56) - 1);
	if (d >= in->hello.ndisks || in->disk_fd[d] < 0 || off > in->hello.disk_size[d] ||
	    r->len > in->hello.disk_size[d] - off) {
		snprintf(why, n, "corrupt stream: disk data outside drive %u", d);
		return -1;
	}
	if (pwrite(in->disk_fd[d], p, r->len, (off_t)off) != (ssize_t)r->len) {
		snprintf(why, n, "drive %u: %s: %s", d, in->disk_path[d], strerror(errno));
		return -1;
	}
	return 0;
}

/* Records until END. 0, or -1 with why. */
static int receive_body(struct mig_in *in, char *why, size_t n)
{
	for (;;) {
		struct mig_rec r;
		void *p;
		if (mig_recv(in->fd, &r, &p, -1, why, n) < 0)
			return -1;
		int rc = 0;
		pthread_mutex_lock(&in->lock);
		in->bytes += r.len + sizeof(r);
		pthread_mutex_unlock(&in->lock);
		switch (r.type) {
		case MIG_REC_PAGES:
			rc = on_pages(in, &r, p, why, n);
			break;
		case MIG_REC_ZERO:
			rc = on_zero(in, &r, p, why, n);
			break;
		case MIG_REC_DISK:
			rc = on_disk(in, &r, p, why, n);
			break;
		case MIG_REC_STATE:
			blob_free(&in->state);
			blob_put(&in->state, p, r.len);
			rc = in->state.oom ? (snprintf(why, n, "out of memory"), -1) : 0;
			break;
		case MIG_REC_END:
			if (r.len == sizeof(in->paused_ns) && in->state.len) {
				memcpy(&in->paused_ns, p, sizeof(in->paused_ns));
				free(p);
				return 0;
			}
			snprintf(why, n, "corrupt stream: END without the VM's state");
			rc = -1;
			break;
		case MIG_REC_ERROR:
			snprintf(why, n, "the source gave up: %.*s", (int)r.len, (const char *)p);
			rc = -1;
			break;
		default:
			snprintf(why, n, "corrupt stream: unexpected record type %u", r.type);
			rc = -1;
		}
		free(p);
		if (rc < 0)
			return -1;
	}
}

/* ---- the start of the stream ---- */

static int open_disks(struct mig_in *in, char *why, size_t n)
{
	if (!(in->hello.flags & MIG_F_COPY_DISKS))
		return 0;
	if (in->hello.ndisks > VMM_MAX_DISKS || in->ndisks != in->hello.ndisks) {
		snprintf(
		    why, n,
		    "copy_disks: the VM has %u drives; give this VMM one --disk PATH for each, "
		    "in order, to receive them (it has %u)",
		    in->hello.ndisks, in->ndisks);
		return -1;
	}
	for (unsigned d = 0; d < in->ndisks; d++) {
		in->disk_fd[d] =
		    open(in->disk_path[d], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (in->disk_fd[d] < 0 ||
		    ftruncate(in->disk_fd[d], (off_t)in->hello.disk_size[d]) < 0) {
			snprintf(why, n, "copy_disks: %s: %s", in->disk_path[d], strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int make_ram(struct mig_in *in, char *why, size_t n)
{
	in->memfd = memfd_create("vmm-guest-ram", MFD_CLOEXEC);
	if (in->memfd < 0 || ftruncate(in->memfd, (off_t)in->hello.mem_size) < 0) {
		snprintf(why, n, "guest RAM (%llu MiB): %s",
			 (unsigned long long)(in->hello.mem_size >> 20), strerror(errno));
		return -1;
	}
	in->mem = mmap(NULL, in->hello.mem_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		       in->memfd, 0);
	if (in->mem == MAP_FAILED) {
		in->mem = NULL;
		snprintf(why, n, "guest RAM: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int receive_head(struct mig_in *in, char *why, size_t n)
{
	struct mig_rec r;
	void *p;
	char inner[300];
	struct cpu_ident host;
	if (mig_recv(in->fd, &r, &p, -1, why, n) < 0)
		return -1;
	int rc = mig_hello_check(&r, p, &in->hello, why, n);
	free(p);
	if (rc < 0)
		return -1;
	if (cpu_ident_host(-1, &host) < 0 ||
	    !cpu_ident_match(&in->hello.cpu, &host, inner, sizeof(inner))) {
		snprintf(why, n, "the source runs on %s", inner);
		return -1;
	}
	if (mig_recv(in->fd, &r, &p, -1, why, n) < 0)
		return -1;
	if (r.type != MIG_REC_CONFIG) {
		free(p);
		snprintf(why, n, "corrupt stream: no configuration after HELLO");
		return -1;
	}
	in->config = p;
	in->config_len = r.len;
	return open_disks(in, why, n) < 0 ? -1 : make_ram(in, why, n);
}

/* ---- the thread ---- */

/* Hand a step over to the loop (it touches the VM) and wait for it. */
static int loop_step(struct mig_in *in, enum mig_in_step step)
{
	uint64_t one = 1;
	pthread_mutex_lock(&in->lock);
	in->want = step;
	if (write(in->efd, &one, sizeof(one)) < 0) {
	}
	while (in->done < step)
		pthread_cond_wait(&in->cond, &in->lock);
	int rc = in->step_rc;
	pthread_mutex_unlock(&in->lock);
	return rc;
}

static void fail(struct mig_in *in, const char *why)
{
	uint64_t one = 1;
	pthread_mutex_lock(&in->lock);
	in->phase = MIG_IN_FAILED;
	snprintf(in->error, sizeof(in->error), "%s", why);
	pthread_mutex_unlock(&in->lock);
	if (in->fd >= 0) /* the source runs on; tell it why */
		mig_send(in->fd, MIG_REC_ERROR, 0, why, (uint32_t)strlen(why));
	if (write(in->efd, &one, sizeof(one)) < 0) {
	}
}

/* The state that came last, into the vCPUs (held, out of KVM_RUN) and the
 * devices (each under its lock). */
static int load_state(struct mig_in *in, char *why, size_t n)
{
	struct snap_view v;
	if (snap_parse_sections(in->state.data, in->state.len, &v, why, n) < 0)
		return -1;
	v.hdr.mem_size = in->hello.mem_size;
	v.hdr.ncpus = in->hello.ncpus;
	int rc = vm_state_check(in->vm, &v, why, n);
	if (rc == 0)
		rc = vm_state_load(in->vm, &v, why, n);
	snap_view_free(&v);
	return rc;
}

/* GO: the guest is ours now, running or paused as it was there. */
static int await_go(struct mig_in *in, char *why, size_t n)
{
	struct mig_rec r;
	void *p;
	char inner[300];
	uint32_t run = 0;
	if (mig_recv(in->fd, &r, &p, -1, inner, sizeof(inner)) < 0) {
		snprintf(why, n, "before it could run: %s", inner);
		return -1;
	}
	bool go = r.type == MIG_REC_GO && r.len == sizeof(run);
	if (go)
		memcpy(&run, p, sizeof(run));
	else
		snprintf(why, n, "before it could run: the source %s",
			 r.type == MIG_REC_ERROR ? "gave up" : "sent something else than GO");
	free(p);
	if (!go)
		return -1;
	vcpu_pause_release(in->vm, run != 0);
	uint64_t now = now_ns(CLOCK_REALTIME), one = 1;
	pthread_mutex_lock(&in->lock);
	in->phase = MIG_IN_COMPLETED;
	in->downtime_us = now > in->paused_ns ? (now - in->paused_ns) / 1000 : 0;
	in->total_ms = (now_ns(CLOCK_MONOTONIC) - in->start_ns) / 1000000;
	pthread_mutex_unlock(&in->lock);
	if (write(in->efd, &one, sizeof(one)) < 0) { /* the loop reaps the thread */
	}
	return 0;
}

static void *in_thread(void *arg)
{
	struct mig_in *in = arg;
	char why[400];
	in->fd = accept4(in->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (in->fd < 0) {
		snprintf(why, sizeof(why), "accept: %s", strerror(errno));
		fail(in, why);
		return NULL;
	}
	close(in->listen_fd);
	in->listen_fd = -1;
	set_phase(in, MIG_IN_RECEIVING);
	in->start_ns = now_ns(CLOCK_MONOTONIC);
	if (receive_head(in, why, sizeof(why)) < 0) {
		fail(in, why);
		return NULL;
	}
	/* The VM is built now, while RAM streams in: only loading its state
	 * is left for the downtime. */
	if (loop_step(in, STEP_BUILD) < 0) {
		fail(in, in->error);
		return NULL;
	}
	if (receive_body(in, why, sizeof(why)) < 0) {
		fail(in, why);
		return NULL;
	}
	/* The downtime: the state into the held vCPUs and the devices, READY,
	 * GO. Here, not on the loop: fewer threads to wake on the way. */
	set_phase(in, MIG_IN_LOADING);
	if (load_state(in, why, sizeof(why)) < 0) {
		fail(in, why);
		return NULL;
	}
	if (mig_send(in->fd, MIG_REC_READY, 0, NULL, 0) < 0) {
		snprintf(why, sizeof(why), "the source went away (%s)", strerror(errno));
		fail(in, why);
		return NULL;
	}
	if (await_go(in, why, sizeof(why)) < 0)
		fail(in, why);
	return NULL;
}

/* ---- the loop's side ---- */

/* The received configuration, with this VMM's own drive paths (--disk). */
static int apply_config(struct mig_in *in, char *why, size_t n)
{
	struct vm_config *cfg = in->cfg;
	if (mig_apply_config(in->config, in->config_len, cfg, why, n) < 0)
		return -1;
	if (in->ndisks && in->ndisks != cfg->ndisks) {
		snprintf(why, n, "the VM has %u drives and this VMM was given %u (--disk)",
			 cfg->ndisks, in->ndisks);
		return -1;
	}
	for (unsigned d = 0; d < in->ndisks; d++)
		snprintf(cfg->disks[d].path, sizeof(cfg->disks[d].path), "%s", in->disk_path[d]);
	if (cfg->mem_mib * MIB != in->hello.mem_size || cfg->cpus != in->hello.ncpus) {
		snprintf(why, n, "the configuration does not match the stream");
		return -1;
	}
	return 0;
}

static int do_build(struct mig_in *in, char *why, size_t n)
{
	int rc = apply_config(in, why, n);
	if (rc == 0 && vm_boot(in->vm) != 0) { /* vm_boot has asked the VMM to exit */
		snprintf(why, n, "%s", vmm_log_last_error());
		rc = -1;
	}
	return rc;
}

static void run_step(struct mig_in *in, enum mig_in_step step)
{
	char why[400] = "";
	vmm_log_clear_error();
	int rc = do_build(in, why, sizeof(why));
	pthread_mutex_lock(&in->lock);
	in->step_rc = rc;
	in->done = step;
	if (rc < 0)
		snprintf(in->error, sizeof(in->error), "%s", why[0] ? why : "the VM was not built");
	pthread_cond_broadcast(&in->cond);
	pthread_mutex_unlock(&in->lock);
}

static void finish_failed(struct mig_in *in)
{
	pthread_mutex_lock(&in->lock);
	char why[sizeof(in->error)];
	memcpy(why, in->error, sizeof(why));
	pthread_mutex_unlock(&in->lock);
	vmm_err("incoming migration failed: %s", why);
	vm_request_exit(in->vm, VMM_EXIT_BOOT_IMAGE);
}

static void on_event(void *opaque, uint32_t events)
{
	struct mig_in *in = opaque;
	uint64_t v;
	(void)events;
	if (read(in->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&in->lock);
	bool build = in->want > in->done;
	enum mig_in_phase phase = in->phase;
	pthread_mutex_unlock(&in->lock);
	if (build)
		run_step(in, in->want);
	if ((phase == MIG_IN_FAILED || phase == MIG_IN_COMPLETED) && in->thread_started) {
		pthread_join(in->thread, NULL);
		in->thread_started = false;
		if (phase == MIG_IN_FAILED)
			finish_failed(in);
		else
			vmm_info("incoming migration done: %llu bytes, downtime %llu us",
				 (unsigned long long)in->bytes,
				 (unsigned long long)in->downtime_us);
	}
}

/* ---- hooks ---- */

int mig_in_restore_memory(struct vm *vm, struct mem_request *req)
{
	struct mig_in *in = mig_vm_get(vm)->in;
	req->backing = MEM_SHARED_MEMFD;
	req->fd = in->memfd; /* the RAM received */
	req->page_size = 4096;
	req->memfd_flags = 0;
	req->reserve = req->thp = req->merge = false;
	return 0;
}

/* Inside vm_boot(): the vCPUs, held; their state comes at the end of the
 * stream. */
int mig_in_restore(struct vm *vm)
{
	char why[300];
	if (vm_state_create_vcpus(vm, vm->cfg->cpus, why, sizeof(why)) < 0) {
		vmm_err("incoming migration: %s", why);
		return VMM_EXIT_RESOURCE;
	}
	/* Nothing runs before the source says GO. */
	bool unused;
	vcpu_pause_hold(vm, "an incoming migration waits for the source's go-ahead", &unused);
	return 0;
}

int mig_in_start(struct vm *vm, struct vm_config *cfg)
{
	struct mig_vm *mv = mig_vm_get(vm);
	struct mig_in *in = mv ? calloc(1, sizeof(*in)) : NULL;
	char why[300];
	if (!in) {
		vmm_err("out of memory");
		return VMM_EXIT_RESOURCE;
	}
	mv->in = in;
	in->vm = vm;
	in->cfg = cfg;
	in->fd = in->memfd = in->listen_fd = -1;
	pthread_mutex_init(&in->lock, NULL);
	pthread_cond_init(&in->cond, NULL);
	in->ndisks = cfg->ndisks; /* where copied drives go */
	for (unsigned d = 0; d < VMM_MAX_DISKS; d++) {
		in->disk_fd[d] = -1;
		in->disk_path[d] = d < cfg->ndisks ? strdup(cfg->disks[d].path) : NULL;
	}
	in->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	in->listen_fd = mig_listen(cfg->incoming, why, sizeof(why));
	if (in->listen_fd < 0) {
		vmm_err("--incoming: %s", why);
		return VMM_EXIT_RESOURCE;
	}
	if (in->efd < 0 || loop_add(&vm->loop, in->efd, EPOLLIN, on_event, in) < 0 ||
	    pthread_create(&in->thread, NULL, in_thread, in) != 0) {
		vmm_err("--incoming: cannot start the receiving thread");
		return VMM_EXIT_RESOURCE;
	}
	pthread_setname_np(in->thread, "vmm-incoming");
	in->thread_started = true;
	vmm_info("waiting for a migration on %s", cfg->incoming);
	return 0;
}

void mig_in_stop(struct vm *vm, struct mig_vm *mv)
{
	struct mig_in *in = mv->in;
	(void)vm;
	if (!in)
		return;
	if (in->thread_started) {
		/* Unblock it wherever it waits: accept, a read, the build. */
		if (in->listen_fd >= 0)
			shutdown(in->listen_fd, SHUT_RDWR);
		if (in->fd >= 0)
			shutdown(in->fd, SHUT_RDWR);
		pthread_mutex_lock(&in->lock);
		in->done = STEP_BUILD;
		in->step_rc = -1;
		pthread_cond_broadcast(&in->cond);
		pthread_mutex_unlock(&in->lock);
		pthread_join(in->thread, NULL);
	}
	int fds[] = {in->listen_fd, in->fd, in->efd, in->memfd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	for (unsigned d = 0; d < VMM_MAX_DISKS; d++) {
		free(in->disk_path[d]);
		if (in->disk_fd[d] >= 0)
			close(in->disk_fd[d]);
	}
	if (in->mem)
		munmap(in->mem, in->hello.mem_size);
	free(in->config);
	blob_free(&in->state);
	pthread_mutex_destroy(&in->lock);
	pthread_cond_destroy(&in->cond);
	free(in);
	mv->in = NULL;
}

void mig_in_progress(struct mig_in *in, struct mig_in_progress *p)
{
	pthread_mutex_lock(&in->lock);
	p->phase = in->phase;
	p->bytes = in->bytes;
	p->downtime_us = in->downtime_us;
	p->total_ms = in->total_ms;
	snprintf(p->error, sizeof(p->error), "%s", in->error);
	pthread_mutex_unlock(&in->lock);
}
