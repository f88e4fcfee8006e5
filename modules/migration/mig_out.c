/*
 * Live migration, sending. The thread connects, sends the configuration
 * (and the disks with copy_disks), then all of RAM while the guest runs,
 * then, pass after pass, what the guest dirtied meanwhile (KVM's dirty log
 * and the VMM's own writes). When what is left would go in under
 * max_downtime_ms, it asks the event loop to stop the VM: the loop parks
 * the vCPUs, lets device I/O finish, and copies the last dirty pages and
 * the whole state at one instant. The thread sends those, waits for the
 * destination to say it loaded them (READY), and tells it to run (GO).
 *
 * Until GO is sent, any failure (the destination goes away, says no, the
 * guest dirties faster than the link carries, a cancel) ends the
 * migration and the VM runs on here as before. After GO this side never
 * runs the guest again: it stays paused and the VMM exits. So exactly one
 * side runs the guest at any moment (or, between READY and GO, neither).
 */
#include "mig_out.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/config_json.h"
#include "log.h"
#include "stream.h"
#include "vcpu.h"
#include "virtio/state.h"

#define PAGE 4096ULL

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void set_phase(struct mig_out *o, enum mig_phase ph)
{
	pthread_mutex_lock(&o->lock);
	o->p.phase = ph;
	pthread_mutex_unlock(&o->lock);
}

static bool cancelled(struct mig_out *o, char *why, size_t n)
{
	if (!atomic_load(&o->cancel))
		return false;
	snprintf(why, n, "cancelled");
	return true;
}

/* ---- sending, paced to max_bandwidth ---- */

static void pace(struct mig_out *o, uint64_t bytes)
{
	o->pace_bytes += bytes;
	if (!o->req.max_bw)
		return;
	uint64_t due = o->pace_bytes * 1000000000ULL / o->req.max_bw;
	uint64_t spent = now_ns(CLOCK_MONOTONIC) - o->pace_t0;
	if (spent < due) {
		struct timespec ts = {.tv_sec = (time_t)((due - spent) / 1000000000ULL),
				      .tv_nsec = (long)((due - spent) % 1000000000ULL)};
		nanosleep(&ts, NULL);
	}
}

/* The destination closed the connection: did it say why first (ERROR)? */
static bool dest_reason(struct mig_out *o, char *why, size_t n)
{
	struct pollfd pf = {.fd = o->fd, .events = POLLIN};
	struct mig_rec r;
	void *p;
	char inner[64];
	if (poll(&pf, 1, 200) <= 0 || mig_recv(o->fd, &r, &p, 200, inner, sizeof(inner)) < 0)
		return false;
	bool said = r.type == MIG_REC_ERROR;
	if (said)
		snprintf(why, n, "the destination refused: %.*s", (int)r.len, (const char *)p);
	free(p);
	return said;
}

static int send_rec(struct mig_out *o, uint32_t type, uint64_t arg, const void *p, uint32_t len,
		    char *why, size_t n)
{
	if (cancelled(o, why, n))
		return -1;
	if (mig_send(o->fd, type, arg, p, len) < 0) {
		int err = errno;
		if (!dest_reason(o, why, n))
			snprintf(why, n, "the destination went away (%s)", strerror(err));
		return -1;
	}
	pace(o, len + sizeof(struct mig_rec));
	pthread_mutex_lock(&o->lock);
	o->p.bytes_sent += len + sizeof(struct mig_rec);
	pthread_mutex_unlock(&o->lock);
	return 0;
}

static bool page_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	for (unsigned i = 0; i < PAGE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Pages [first, first+count) of `src` (count <= MIG_PAGES_MAX): runs of
 * non-zero pages as PAGES, zero pages as ZERO unless the destination
 * still has them zero (the first pass). */
static int send_pages(struct mig_out *o, const uint8_t *src, uint64_t first, uint64_t count,
		      bool zeroes_known, char *why, size_t n)
{
	for (uint64_t i = 0; i < count;) {
		bool zero = page_zero(src + i * PAGE);
		uint64_t j = i + 1;
		while (j < count && page_zero(src + j * PAGE) == zero)
			j++;
		int rc = 0;
		if (!zero)
			rc = send_rec(o, MIG_REC_PAGES, first + i, src + i * PAGE,
				      (uint32_t)((j - i) * PAGE), why, n);
		else if (!zeroes_known) {
			uint64_t c = j - i;
			rc = send_rec(o, MIG_REC_ZERO, first + i, &c, sizeof(c), why, n);
		}
		if (rc < 0)
			return -1;
		i = j;
	}
	return 0;
}

/* A run of RAM, copied first: the guest may write it while it is sent,
 * and the checksum must be of what is sent (a page written meanwhile is
 * dirty again and goes in a later pass). */
static int send_ram(struct mig_out *o, uint64_t first, uint64_t count, bool zeroes_known, char *why,
		    size_t n)
{
	const struct guest_mem *m = &o->vm->mem;
	while (count) {
		uint64_t c = count > MIG_PAGES_MAX ? MIG_PAGES_MAX : count;
		memcpy(o->buf, m->host + first * PAGE, c * PAGE);
		if (send_pages(o, o->buf, first, c, zeroes_known, why, n) < 0)
			return -1;
		first += c;
		count -= c;
	}
	return 0;
}

/* ---- the passes ---- */

/* Pass 0: everything the guest may have written. Ranges RAM's memfd never
 * allocated are zero on both sides and skipped. */
static int first_pass(struct mig_out *o, char *why, size_t n)
{
	const struct guest_mem *m = &o->vm->mem;
	uint64_t pages = m->size / PAGE;
	if (m->memfd < 0)
		return send_ram(o, 0, pages, true, why, n);
	off_t at = 0, end = (off_t)m->size;
	while (at < end) {
		off_t data = lseek(m->memfd, at, SEEK_DATA);
		if (data < 0)
			break; /* ENXIO: nothing allocated after `at` */
		off_t hole = lseek(m->memfd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		uint64_t f = (uint64_t)data / PAGE, l = ((uint64_t)hole + PAGE - 1) / PAGE;
		if (send_ram(o, f, l - f, true, why, n) < 0)
			return -1;
		at = hole;
	}
	return 0;
}

static int send_dirty(struct mig_out *o, const uint64_t *bits, char *why, size_t n)
{
	uint64_t pages = o->vm->mem.size / PAGE, p = 0, first, count;
	while (dirty_next_run(bits, pages, MIG_PAGES_MAX, &p, &first, &count))
		if (send_ram(o, first, count, false, why, n) < 0)
			return -1;
	return 0;
}

struct pass_stats {
	uint64_t t0, bytes0;
	uint64_t best_ms;   /* the lowest expected downtime so far */
	uint64_t prev_left; /* bytes left after the pass before */
	unsigned stalls;    /* passes without a 10% better expectation */
};

static void start_pass(struct mig_out *o, struct pass_stats *s)
{
	s->t0 = now_ns(CLOCK_MONOTONIC);
	pthread_mutex_lock(&o->lock);
	s->bytes0 = o->p.bytes_sent;
	pthread_mutex_unlock(&o->lock);
	o->pace_t0 = s->t0;
	o->pace_bytes = 0;
}

/* After a pass: what is left, how fast the guest dirties it, and what
 * stopping now would cost. 1: stop now; 0: another pass; -1: it cannot
 * converge (why). */
static int judge(struct mig_out *o, struct pass_stats *s, uint64_t dirty_pages, char *why, size_t n)
{
	uint64_t dt = now_ns(CLOCK_MONOTONIC) - s->t0, left = dirty_pages * PAGE;
	pthread_mutex_lock(&o->lock);
	uint64_t sent = o->p.bytes_sent - s->bytes0, passes = ++o->p.passes;
	double secs = dt ? (double)dt / 1e9 : 1e-9;
	double bw = sent ? (double)sent / secs : 0;
	if (o->req.max_bw && (bw == 0 || bw > (double)o->req.max_bw))
		bw = (double)o->req.max_bw;
	if (bw < 1e6)
		bw = 1e6; /* a pass of a few pages says little about the link */
	uint64_t expect_ms = (uint64_t)((double)left * 1000.0 / bw);
	o->p.bytes_left = left;
	o->p.dirty_rate_mib_s = (double)left / secs / (1 << 20);
	o->p.expected_downtime_ms = expect_ms;
	double rate = o->p.dirty_rate_mib_s;
	pthread_mutex_unlock(&o->lock);
	/* Within the limit: stop once another pass would not shrink what is
	 * left by a quarter (a short pass often does, and the downtime with
	 * it), or when it is next to nothing. */
	if (expect_ms <= o->req.max_downtime_ms) {
		bool shrinking = !s->prev_left || left * 4 < s->prev_left * 3;
		s->prev_left = left;
		if (!shrinking || left <= MIG_TINY_PAGES * PAGE || passes >= MIG_MAX_PASSES)
			return 1;
		return 0;
	}
	s->prev_left = left;
	if (!s->best_ms || expect_ms * 10 < s->best_ms * 9) {
		s->best_ms = expect_ms;
		s->stalls = 0;
	} else {
		s->stalls++;
	}
	if (s->stalls >= 4 || passes >= MIG_MAX_PASSES) {
		snprintf(
		    why, n,
		    "the migration does not converge: the guest dirties memory as fast as it "
		    "is sent (%.1f MiB dirtied again during a %.2f s pass, at least %.1f MiB/s; "
		    "the link carries %.1f MiB/s%s); after %llu passes, stopping would still "
		    "take %llu ms (max_downtime_ms %u)",
		    (double)left / (1 << 20), secs, rate, bw / (1 << 20),
		    o->req.max_bw ? ", max_bandwidth_mib_s" : "", (unsigned long long)passes,
		    (unsigned long long)expect_ms, o->req.max_downtime_ms);
		return -1;
	}
	return 0;
}

static int precopy(struct mig_out *o, char *why, size_t n)
{
	struct pass_stats s = {0};
	set_phase(o, MIG_PRECOPY);
	start_pass(o, &s);
	if (first_pass(o, why, n) < 0)
		return -1;
	for (;;) {
		memset(o->bits, 0, o->words * 8);
		if (dirty_log_collect(o->vm, o->bits) < 0) {
			snprintf(why, n, "cannot read the dirty page log");
			return -1;
		}
		int verdict = judge(o, &s, dirty_count(o->bits, o->words), why, n);
		if (verdict)
			return verdict < 0 ? -1 : 0;
		start_pass(o, &s);
		if (send_dirty(o, o->bits, why, n) < 0)
			return -1;
	}
}

/* ---- disks (copy_disks) ---- */

static bool chunk_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i += PAGE)
		if (!page_zero(p + i))
			return false;
	return true;
}

/* Send drive d's chunks: all of them (first time: zero ones are known
 * zero on the other side), or those whose checksum changed. */
static int send_disk(struct mig_out *o, unsigned d, bool first, char *why, size_t n)
{
	int fd = open(o->disk_path[d], O_RDONLY | O_CLOEXEC);
	uint8_t *chunk = malloc(MIG_DISK_CHUNK);
	int rc = fd < 0 || !chunk ? -1 : 0;
	if (rc < 0)
		snprintf(why, n, "copy_disks: %s: %s", o->disk_path[d], strerror(errno));
	for (uint64_t off = 0, i = 0; rc == 0 && off < o->disk_size[d];
	     off += MIG_DISK_CHUNK, i++) {
		size_t len =
		    o->disk_size[d] - off < MIG_DISK_CHUNK ? o->disk_size[d] - off : MIG_DISK_CHUNK;
		memset(chunk, 0, MIG_DISK_CHUNK);
		if (pread(fd, chunk, len, (off_t)off) < 0) {
			snprintf(why, n, "copy_disks: %s: %s", o->disk_path[d], strerror(errno));
			rc = -1;
			break;
		}
		uint32_t crc = crc32c(0, chunk, len);
		bool skip = first ? chunk_zero(chunk, len) : crc == o->disk_crc[d][i];
		o->disk_crc[d][i] = crc;
		if (!skip)
			rc = send_rec(o, MIG_REC_DISK, MIG_DISK_ARG(d, off), chunk, (uint32_t)len,
				      why, n);
	}
	free(chunk);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int send_disks(struct mig_out *o, bool first, char *why, size_t n)
{
	if (!o->req.copy_disks)
		return 0;
	if (first)
		set_phase(o, MIG_DISKS);
	for (unsigned d = 0; d < o->ndisks; d++)
		if (send_disk(o, d, first, why, n) < 0)
			return -1;
	return 0;
}

/* ---- the final copy ---- */

/* Ask the loop to stop the VM and take the last of it; wait for it. */
static int capture(struct mig_out *o, char *why, size_t n)
{
	set_phase(o, MIG_STOP_AND_COPY);
	pthread_mutex_lock(&o->lock);
	o->want_capture = true;
	uint64_t one = 1;
	if (write(o->efd, &one, sizeof(one)) < 0) {
	}
	while (!o->captured)
		pthread_cond_wait(&o->cond, &o->lock);
	int rc = o->capture_rc;
	if (rc < 0)
		snprintf(why, n, "%s", o->p.error);
	pthread_mutex_unlock(&o->lock);
	return rc;
}

static int send_final(struct mig_out *o, char *why, size_t n)
{
	struct mig_final *f = &o->final;
	uint64_t pages = o->vm->mem.size / PAGE, k = 0;
	for (uint64_t p = 0; p < pages;) {
		if (!f->bits[p / 64]) {
			p = (p / 64 + 1) * 64;
			continue;
		}
		if (!(f->bits[p / 64] >> (p % 64) & 1)) {
			p++;
			continue;
		}
		uint64_t q = p;
		while (q < pages && q - p < MIG_PAGES_MAX && (f->bits[q / 64] >> (q % 64) & 1))
			q++;
		if (send_pages(o, f->pages + k * PAGE, p, q - p, false, why, n) < 0)
			return -1;
		k += q - p;
		p = q;
	}
	if (send_disks(o, false, why, n) < 0 ||
	    send_rec(o, MIG_REC_STATE, 0, f->state.data, (uint32_t)f->state.len, why, n) < 0 ||
	    send_rec(o, MIG_REC_END, 0, &f->paused_ns, sizeof(f->paused_ns), why, n) < 0)
		return -1;
	return 0;
}

/* Wait until the destination says something (a cancel still counts
 * meanwhile). */
static int wait_answer(struct mig_out *o, int timeout_ms, char *why, size_t n)
{
	for (int waited = 0; waited < timeout_ms; waited += 100) {
		if (cancelled(o, why, n))
			return -1;
		struct pollfd pf = {.fd = o->fd, .events = POLLIN};
		int r = poll(&pf, 1, 100);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR) {
			snprintf(why, n, "poll: %s", strerror(errno));
			return -1;
		}
	}
	snprintf(why, n, "the destination did not confirm within %d s", timeout_ms / 1000);
	return -1;
}

/* The destination's answer to END: READY, or its reason. */
static int await_ready(struct mig_out *o, char *why, size_t n)
{
	struct mig_rec r;
	void *p;
	char inner[300];
	if (wait_answer(o, MIG_READY_TIMEOUT_MS, why, n) < 0)
		return -1;
	if (mig_recv(o->fd, &r, &p, MIG_READY_TIMEOUT_MS, inner, sizeof(inner)) < 0) {
		snprintf(why, n, "the destination did not confirm: %s", inner);
		return -1;
	}
	int rc = r.type == MIG_REC_READY ? 0 : -1;
	if (r.type == MIG_REC_ERROR)
		snprintf(why, n, "the destination refused: %.*s", (int)r.len, (const char *)p);
	else if (rc < 0)
		snprintf(why, n, "the destination answered record %u instead of READY", r.type);
	free(p);
	return rc;
}

/* ---- the thread ---- */

static int hello(struct mig_out *o, char *why, size_t n)
{
	struct mig_hello h;
	struct cpu_ident cpu;
	if (cpu_ident_host(o->vm->kvm_fd, &cpu) < 0) {
		snprintf(why, n, "cannot read this host's CPU features");
		return -1;
	}
	mig_hello_init(&h, &cpu, o->vm->mem.size, o->vm->ncpus);
	h.flags = o->req.copy_disks ? MIG_F_COPY_DISKS : 0;
	h.ndisks = o->ndisks;
	for (unsigned d = 0; d < o->ndisks; d++)
		h.disk_size[d] = o->disk_size[d];
	if (send_rec(o, MIG_REC_HELLO, 0, &h, sizeof(h), why, n) < 0 ||
	    send_rec(o, MIG_REC_CONFIG, 0, o->config, (uint32_t)strlen(o->config), why, n) < 0)
		return -1;
	return 0;
}

static int run(struct mig_out *o, char *why, size_t n)
{
	o->fd = mig_connect(o->req.uri, why, n);
	if (o->fd < 0 || hello(o, why, n) < 0 || send_disks(o, true, why, n) < 0 ||
	    precopy(o, why, n) < 0 || capture(o, why, n) < 0 || send_final(o, why, n) < 0 ||
	    await_ready(o, why, n) < 0)
		return -1;
	/* The point of no return: from here the guest is the destination's
	 * (running, or paused as it was here). */
	uint32_t run = o->was_running;
	if (mig_send(o->fd, MIG_REC_GO, 0, &run, sizeof(run)) < 0) {
		snprintf(why, n,
			 "the destination went away before it could take over (%s); the "
			 "guest is lost",
			 strerror(errno));
		return 1;
	}
	return 0;
}

static void *out_thread(void *arg)
{
	struct mig_out *o = arg;
	char why[400] = "";
	int rc = run(o, why, sizeof(why));
	if (rc < 0 && o->fd >= 0) /* tell the destination why, if it still listens */
		mig_send(o->fd, MIG_REC_ERROR, 0, why, (uint32_t)strlen(why));
	pthread_mutex_lock(&o->lock);
	o->finished = true;
	o->p.end_ns = now_ns(CLOCK_MONOTONIC);
	if (rc)
		snprintf(o->p.error, sizeof(o->p.error), "%s", why);
	/* After GO (rc >= 0) the guest is the destination's, whatever happened
	 * to the connection afterwards. */
	o->p.phase = rc >= 0 ? MIG_COMPLETED : atomic_load(&o->cancel) ? MIG_CANCELLED : MIG_FAILED;
	pthread_mutex_unlock(&o->lock);
	uint64_t one = 1;
	if (write(o->efd, &one, sizeof(one)) < 0) {
	}
	return NULL;
}

/* ---- the loop's side ---- */

static void mark_ring(void *opaque, uint64_t gpa, uint64_t len)
{
	void **a = opaque;
	dirty_mark_gpa(a[0], a[1], gpa, len);
}

/* Stop the VM and take its last pages and its state, at one instant. */
static int take_final(struct mig_out *o, char *why, size_t n)
{
	struct vm *vm = o->vm;
	struct mig_final *f = &o->final;
	if (vcpu_pause_hold(vm, "a migration is copying its final state", &o->was_running) < 0) {
		snprintf(why, n, "the vCPUs did not stop");
		return -1;
	}
	o->held = true;
	f->paused_ns = now_ns(CLOCK_REALTIME);
	if (virtio_state_quiesce(vm, 5000, why, n) < 0)
		return -1;
	f->bits = calloc(o->words, 8);
	if (!f->bits || dirty_log_collect(vm, f->bits) < 0) {
		snprintf(why, n, "cannot read the dirty page log");
		return -1;
	}
	/* The pages the thread collected last and judged small enough to send
	 * now: it waits for this capture, its bitmap is ours to read. */
	for (size_t i = 0; i < o->words; i++)
		f->bits[i] |= o->bits[i];
	void *args[2] = {&vm->mem, f->bits};
	virtio_state_rings(vm, mark_ring, args);
	f->npages = dirty_count(f->bits, o->words);
	f->pages = malloc(f->npages ? f->npages * PAGE : 1);
	if (!f->pages) {
		snprintf(why, n, "out of memory for the last %llu dirty pages",
			 (unsigned long long)f->npages);
		return -1;
	}
	uint64_t k = 0;
	for (size_t w = 0; w < o->words; w++) /* in the downtime: skip clean words */
		for (uint64_t bits = f->bits[w]; bits; bits &= bits - 1) {
			uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(bits);
			memcpy(f->pages + k++ * PAGE, vm->mem.host + p * PAGE, PAGE);
		}
	blob_init(&f->state);
	return vm_state_save(vm, &f->state, 1, why, n);
}

static void free_final(struct mig_final *f)
{
	free(f->bits);
	free(f->pages);
	blob_free(&f->state);
	memset(f, 0, sizeof(*f));
}

/* The thread is done: the VM exits (migrated) or runs on (failed). */
static void end(struct mig_out *o)
{
	struct vm *vm = o->vm;
	pthread_join(o->thread, NULL);
	o->thread_started = false;
	loop_del(&vm->loop, o->efd);
	free_final(&o->final);
	struct mig_progress p;
	mig_out_progress(o, &p);
	if (p.phase == MIG_COMPLETED) {
		vmm_info("migrated to %s (%llu bytes in %llu passes); this VMM exits", o->req.uri,
			 (unsigned long long)p.bytes_sent, (unsigned long long)p.passes);
		vm_request_exit(vm, VMM_EXIT_OK); /* the guest stays paused here */
		return;
	}
	vmm_warn("migration to %s %s: %s; the VM %s here", o->req.uri,
		 p.phase == MIG_CANCELLED ? "cancelled" : "failed", p.error,
		 o->held && !o->was_running ? "stays paused" : "runs on");
	dirty_log_stop(vm);
	if (o->held)
		vcpu_pause_release(vm, o->was_running);
	o->held = false;
}

static void on_event(void *opaque, uint32_t events)
{
	struct mig_out *o = opaque;
	uint64_t v;
	(void)events;
	if (read(o->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&o->lock);
	bool capture_now = o->want_capture && !o->captured, finished = o->finished;
	pthread_mutex_unlock(&o->lock);
	if (capture_now) {
		char why[400] = "";
		int rc = take_final(o, why, sizeof(why));
		pthread_mutex_lock(&o->lock);
		o->capture_rc = rc;
		if (rc < 0)
			snprintf(o->p.error, sizeof(o->p.error), "%s", why);
		o->captured = true;
		pthread_cond_broadcast(&o->cond);
		pthread_mutex_unlock(&o->lock);
	}
	if (finished)
		end(o);
}

/* ---- starting, stopping, progress ---- */

void mig_out_progress(struct mig_out *o, struct mig_progress *p)
{
	pthread_mutex_lock(&o->lock);
	*p = o->p;
	pthread_mutex_unlock(&o->lock);
}

bool mig_out_active(const struct mig_out *o)
{
	return o && o->thread_started;
}

bool mig_out_cancel(struct mig_out *o)
{
	if (!mig_out_active(o))
		return false;
	atomic_store(&o->cancel, true);
	return true;
}

static void out_free(struct mig_out *o)
{
	if (!o)
		return;
	free_final(&o->final);
	for (unsigned d = 0; d < o->ndisks; d++)
		free(o->disk_path[d]), free(o->disk_crc[d]);
	if (o->fd >= 0)
		close(o->fd);
	if (o->efd >= 0)
		close(o->efd);
	free(o->config);
	free(o->bits);
	free(o->buf);
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->cond);
	free(o);
}

void mig_out_stop(struct vm *vm, struct mig_vm *mv)
{
	struct mig_out *o = mv->out;
	(void)vm;
	if (!o)
		return;
	if (o->thread_started) {
		/* The loop is gone: nobody will capture. Unblock the thread. */
		atomic_store(&o->cancel, true);
		if (o->fd >= 0)
			shutdown(o->fd, SHUT_RDWR);
		pthread_mutex_lock(&o->lock);
		if (!o->captured) {
			o->captured = true;
			o->capture_rc = -1;
			snprintf(o->p.error, sizeof(o->p.error), "the VMM is stopping");
		}
		pthread_cond_broadcast(&o->cond);
		pthread_mutex_unlock(&o->lock);
		pthread_join(o->thread, NULL);
		loop_del(&o->vm->loop, o->efd);
	}
	out_free(o);
	mv->out = NULL;
}

static int setup_disks(struct mig_out *o, char *why, size_t n)
{
	const struct vm_config *cfg = o->vm->cfg;
	o->ndisks = cfg->ndisks;
	for (unsigned d = 0; d < o->ndisks; d++) {
		int fd = open(cfg->disks[d].path, O_RDONLY | O_CLOEXEC);
		off_t size = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
		if (fd >= 0)
			close(fd);
		o->disk_path[d] = strdup(cfg->disks[d].path);
		if (size < 0 || !o->disk_path[d]) {
			snprintf(why, n, "copy_disks: %s: %s", cfg->disks[d].path, strerror(errno));
			return -1;
		}
		o->disk_size[d] = (uint64_t)size;
		o->disk_crc[d] =
		    calloc((size_t)((size + MIG_DISK_CHUNK - 1) / MIG_DISK_CHUNK) + 1, 4);
		if (!o->disk_crc[d]) {
			snprintf(why, n, "out of memory");
			return -1;
		}
	}
	return 0;
}

static struct mig_out *out_new(struct vm *vm, const struct mig_request *req, char *why, size_t n)
{
	struct mig_out *o = calloc(1, sizeof(*o));
	if (!o) {
		snprintf(why, n, "out of memory");
		return NULL;
	}
	o->vm = vm;
	o->req = *req;
	o->fd = -1;
	o->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cond, NULL);
	o->words = dirty_words(&vm->mem);
	o->bits = calloc(o->words, 8);
	o->buf = malloc(MIG_PAGES_MAX * PAGE);
	o->p.start_ns = now_ns(CLOCK_MONOTONIC);
	if (o->efd < 0 || !o->bits || !o->buf) {
		snprintf(why, n, "out of memory");
		out_free(o);
		return NULL;
	}
	if (req->copy_disks && setup_disks(o, why, n) < 0) {
		out_free(o);
		return NULL;
	}
	return o;
}

int mig_out_begin(struct vm *vm, struct mig_vm *mv, const struct mig_request *req, char *why,
		  size_t n)
{
	if (mig_out_active(mv->out)) {
		snprintf(why, n, "a migration is already under way");
		return -1;
	}
	mig_out_stop(vm, mv); /* the report of a previous one */
	struct mig_out *o = out_new(vm, req, why, n);
	if (!o)
		return -1;
	json_t *cfg = cfgjson_dump(vm->cfg);
	o->config = cfg ? json_dumps(cfg, JSON_COMPACT) : NULL;
	json_decref(cfg);
	int rc = o->config ? 0 : -1;
	if (rc < 0)
		snprintf(why, n, "out of memory");
	if (rc == 0 && dirty_log_start(vm) < 0) {
		snprintf(why, n, "cannot log dirty pages: %s", vmm_log_last_error());
		rc = -1;
	}
	if (rc == 0 && loop_add(&vm->loop, o->efd, EPOLLIN, on_event, o) < 0) {
		snprintf(why, n, "the event loop is full");
		rc = -1;
	}
	if (rc == 0 && (errno = pthread_create(&o->thread, NULL, out_thread, o)) != 0) {
		snprintf(why, n, "cannot start the migration thread: %s", strerror(errno));
		loop_del(&vm->loop, o->efd);
		rc = -1;
	}
	if (rc < 0) {
		dirty_log_stop(vm);
		out_free(o);
		return -1;
	}
	pthread_setname_np(o->thread, "vmm-migrate");
	o->thread_started = true;
	mv->out = o;
	return 0;
}
