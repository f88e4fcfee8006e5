#include "vcpu.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "seccomp/sandbox.h"

int vcpu_create(struct vm *vm, unsigned index)
{
	struct vcpu *v = &vm->vcpus[index];
	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->index = index;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, index);
	if (v->fd < 0) {
		vmm_perr("KVM_CREATE_VCPU %u", index);
		return VMM_EXIT_RESOURCE;
	}
	v->run = mmap(NULL, vm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		vmm_perr("mmap of vCPU %u's kvm_run", index);
		return VMM_EXIT_RESOURCE;
	}
	return 0;
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, v->vm->vcpu_mmap_size);
	if (v->fd > 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

/* Wait on cond for up to ms milliseconds (CLOCK_REALTIME, as the
 * condition variable's default clock). */
static void timed_wait(pthread_cond_t *cond, pthread_mutex_t *lock, long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_cond_timedwait(cond, lock, &ts);
}

static void kick_handler(int sig)
{
	(void)sig; /* only here so KVM_RUN returns EINTR */
}

int vcpu_install_kick_handler(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0) {
		vmm_perr("sigaction");
		return VMM_EXIT_INTERNAL;
	}
	return 0;
}

static bool handle_io(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	uint32_t size = r->io.size;
	/* data_offset and count come from the kernel, but check them anyway:
	 * a bad value would make us read outside the kvm_run mapping. */
	uint64_t total = (uint64_t)size * r->io.count;
	if (size == 0 || size > 4 || r->io.data_offset >= (uint64_t)v->vm->vcpu_mmap_size ||
	    total > (uint64_t)v->vm->vcpu_mmap_size - r->io.data_offset) {
		vmm_err("vCPU %u: malformed port I/O exit from KVM", v->index);
		vm_request_exit(v->vm, VMM_EXIT_INTERNAL);
		return false;
	}
	uint8_t *data = (uint8_t *)r + r->io.data_offset;
	bool is_write = r->io.direction == KVM_EXIT_IO_OUT;
	for (uint32_t i = 0; i < r->io.count; i++)
		bus_access(&v->vm->pio, r->io.port, data + (uint64_t)i * size, size, is_write);
	return true;
}

static bool handle_mmio(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	uint32_t len = r->mmio.len;
	if (len == 0 || len > sizeof(r->mmio.data)) {
		vmm_err("vCPU %u: malformed MMIO exit from KVM", v->index);
		vm_request_exit(v->vm, VMM_EXIT_INTERNAL);
		return false;
	}
	bus_access(&v->vm->mmio, r->mmio.phys_addr, r->mmio.data, len, r->mmio.is_write);
	return true;
}

static void report_crash(struct vcpu *v, const char *what)
{
	struct kvm_regs regs;
	if (ioctl(v->fd, KVM_GET_REGS, &regs) == 0)
		vmm_err("vCPU %u: %s (rip=0x%llx rsp=0x%llx)", v->index, what,
			(unsigned long long)regs.rip, (unsigned long long)regs.rsp);
	else
		vmm_err("vCPU %u: %s", v->index, what);
	vm_request_exit(v->vm, VMM_EXIT_GUEST_CRASH);
}

static bool handle_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_exit(v->vm, VMM_EXIT_OK);
		return false;
	default:
		report_crash(v, "guest crashed (system event)");
		return false;
	}
}

static void count_exit(struct vcpu_stats *st, uint32_t reason)
{
	atomic_fetch_add_explicit(&st->exits, 1, memory_order_relaxed);
	atomic_uint_fast64_t *kind = reason == KVM_EXIT_IO     ? &st->io
				     : reason == KVM_EXIT_MMIO ? &st->mmio
				     : reason == KVM_EXIT_HLT  ? &st->hlt
							       : &st->other;
	atomic_fetch_add_explicit(kind, 1, memory_order_relaxed);
}

bool vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	count_exit(&v->stats, r->exit_reason);
	switch (r->exit_reason) {
	case KVM_EXIT_IO:
		return handle_io(v);
	case KVM_EXIT_MMIO:
		return handle_mmio(v);
	case KVM_EXIT_HLT:
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_SHUTDOWN:
		report_crash(v, "guest triple fault");
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		return handle_system_event(v);
	case KVM_EXIT_FAIL_ENTRY: {
		char msg[96];
		snprintf(msg, sizeof(msg), "KVM entry failed (hardware reason 0x%llx)",
			 (unsigned long long)r->fail_entry.hardware_entry_failure_reason);
		report_crash(v, msg);
		return false;
	}
	case KVM_EXIT_INTERNAL_ERROR: {
		char msg[96];
		snprintf(msg, sizeof(msg), "KVM internal error (suberror %u)",
			 r->internal.suberror);
		report_crash(v, msg);
		return false;
	}
	default:
		vmm_err("vCPU %u: unexpected KVM exit reason %u", v->index, r->exit_reason);
		vm_request_exit(v->vm, VMM_EXIT_INTERNAL);
		return false;
	}
}

static bool stopping(const struct vcpu *v)
{
	return atomic_load(&v->vm->exit_status) != -1;
}

/* ---- pause and resume ---- */

void vcpu_pause_init(struct vm *vm)
{
	struct vcpu_pause *p = &vm->pause;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	atomic_init(&p->requested, false);
	p->paused = false;
	p->parked = 0;
	p->released = false;
}

void vcpu_pause_destroy(struct vm *vm)
{
	pthread_mutex_destroy(&vm->pause.lock);
	pthread_cond_destroy(&vm->pause.cond);
}

/* On the vCPU's thread, out of KVM_RUN: wait while the VM is paused. */
static void park(struct vcpu *v)
{
	struct vcpu_pause *p = &v->vm->pause;
	pthread_mutex_lock(&p->lock);
	if (!p->paused || stopping(v)) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	/* An exit just handled (port or MMIO I/O) completes only on the next
	 * KVM_RUN: enter once with immediate_exit so it does, and the state a
	 * snapshot reads meanwhile is whole (api.rst, KVM_RUN). */
	v->run->immediate_exit = 1;
	if (ioctl(v->fd, KVM_RUN, 0) == 0)
		vcpu_handle_exit(v); /* not expected: KVM ran no guest code */
	v->run->immediate_exit = 0;
	/* Tell the guest's kvmclock it was stopped, so its watchdogs do not
	 * report a soft lockup for the time spent here. EINVAL: the guest
	 * has not enabled kvmclock. */
	if (ioctl(v->fd, KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
		vmm_debug("vCPU %u: KVM_KVMCLOCK_CTRL: %s", v->index, strerror(errno));
	atomic_store(&v->state, VCPU_PAUSED);
	p->parked++;
	pthread_cond_broadcast(&p->cond);
	while (p->paused && !stopping(v))
		pthread_cond_wait(&p->cond, &p->lock);
	p->parked--;
	v->run->immediate_exit = 0; /* a late kick of the pause must not linger */
	atomic_store(&v->state, VCPU_RUNNING);
	pthread_mutex_unlock(&p->lock);
}

static unsigned started_vcpus(const struct vm *vm)
{
	unsigned n = 0;
	for (unsigned i = 0; i < vm->ncpus; i++)
		n += vm->vcpus[i].started;
	return n;
}

static void kick_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (!v->started || atomic_load(&v->state) == VCPU_PAUSED)
			continue;
		/* immediate_exit: a thread about to enter KVM_RUN; the signal:
		 * one inside it. */
		v->run->immediate_exit = 1;
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
	}
}

int vcpu_pause_all(struct vm *vm)
{
	struct vcpu_pause *p = &vm->pause;
	unsigned want = started_vcpus(vm);
	pthread_mutex_lock(&p->lock);
	p->paused = true;
	atomic_store(&p->requested, true);
	pthread_mutex_unlock(&p->lock);
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += VCPU_PAUSE_TIMEOUT_S;
	int rc = 0;
	pthread_mutex_lock(&p->lock);
	while (p->parked < want && rc == 0 && atomic_load(&vm->exit_status) == -1) {
		pthread_mutex_unlock(&p->lock);
		kick_all(vm); /* again: a kick can land just before KVM_RUN */
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > deadline.tv_sec ||
		    (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec))
			rc = -1;
		pthread_mutex_lock(&p->lock);
		if (p->parked < want && rc == 0)
			timed_wait(&p->cond, &p->lock, 1);
	}
	bool ok = p->parked >= want;
	pthread_mutex_unlock(&p->lock);
	if (!ok) {
		vcpu_resume_all(vm);
		return -1;
	}
	return 0;
}

/* ---- the start gate ---- */

/* On the vCPU's thread: wait for vcpu_release_all(). False if the VM
 * stops first. */
static bool wait_released(struct vcpu *v)
{
	struct vcpu_pause *p = &v->vm->pause;
	pthread_mutex_lock(&p->lock);
	while (!p->released && !stopping(v))
		pthread_cond_wait(&p->cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
	return !stopping(v);
}

void vcpu_release_all(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause.lock);
	vm->pause.released = true;
	pthread_cond_broadcast(&vm->pause.cond);
	pthread_mutex_unlock(&vm->pause.lock);
}

void vcpu_resume_all(struct vm *vm)
{
	struct vcpu_pause *p = &vm->pause;
	pthread_mutex_lock(&p->lock);
	p->paused = false;
	atomic_store(&p->requested, false);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

int vcpu_pause_hold(struct vm *vm, const char *why, bool *was_running)
{
	*was_running = !vcpu_paused(vm);
	if (*was_running && vcpu_pause_all(vm) < 0)
		return -1;
	pthread_mutex_lock(&vm->pause.lock);
	vm->pause.hold = why;
	pthread_mutex_unlock(&vm->pause.lock);
	return 0;
}

void vcpu_pause_release(struct vm *vm, bool resume)
{
	pthread_mutex_lock(&vm->pause.lock);
	vm->pause.hold = NULL;
	pthread_mutex_unlock(&vm->pause.lock);
	if (resume)
		vcpu_resume_all(vm);
}

const char *vcpu_pause_held(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause.lock);
	const char *why = vm->pause.hold;
	pthread_mutex_unlock(&vm->pause.lock);
	return why;
}

bool vcpu_paused(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause.lock);
	bool paused = vm->pause.paused;
	pthread_mutex_unlock(&vm->pause.lock);
	return paused;
}

/* ---- the vCPU thread ---- */

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	/* The filter goes in before the guest's first instruction, and the
	 * thread waits until every other thread has its own too. */
	int rc = sandbox_enter(v->vm->sandbox, SANDBOX_VCPU);
	if (rc) {
		vm_request_exit(v->vm, rc);
		return NULL;
	}
	if (!wait_released(v))
		return NULL;
	atomic_store(&v->state, VCPU_RUNNING);
	while (!stopping(v)) {
		if (atomic_load_explicit(&v->vm->pause.requested, memory_order_acquire)) {
			park(v);
			continue;
		}
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			/* A kick. If nobody wants us out any more (a pause that
			 * was already lifted), run again: the kicker repeats its
			 * kicks for as long as it waits. */
			if ((errno == EINTR || errno == EAGAIN) &&
			    !atomic_load(&v->vm->pause.requested) && !stopping(v))
				v->run->immediate_exit = 0;
			if (errno == EINTR || errno == EAGAIN)
				continue;
			vmm_perr("vCPU %u: KVM_RUN", v->index);
			vm_request_exit(v->vm, VMM_EXIT_INTERNAL);
			break;
		}
		if (!vcpu_handle_exit(v))
			break;
	}
	atomic_store(&v->state, VCPU_STOPPED);
	return NULL;
}

/* Thread attributes: pinned to one host CPU if --cpu-affinity says so, from
 * its first instruction (so its first KVM_RUN already runs there). */
static int vcpu_thread_attr(const struct vcpu *v, pthread_attr_t *attr)
{
	const struct vm_config *cfg = v->vm->cfg;
	pthread_attr_init(attr);
	if (v->index >= cfg->ncpu_affinity)
		return 0;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cfg->cpu_affinity[v->index], &set);
	return pthread_attr_setaffinity_np(attr, sizeof(set), &set);
}

int vcpu_start(struct vcpu *v)
{
	char name[16];
	pthread_attr_t attr;
	int err = vcpu_thread_attr(v, &attr);
	if (!err)
		err = pthread_create(&v->thread, &attr, vcpu_thread, v);
	pthread_attr_destroy(&attr);
	if (err == EINVAL && v->index < v->vm->cfg->ncpu_affinity) {
		vmm_err("--cpu-affinity: vCPU %u cannot run on host CPU %u (no such CPU, or not "
			"in this process's CPU set)",
			v->index, v->vm->cfg->cpu_affinity[v->index]);
		return VMM_EXIT_USAGE;
	}
	if (err) {
		vmm_err("cannot start vCPU %u thread: %s", v->index, strerror(err));
		return VMM_EXIT_RESOURCE;
	}
	snprintf(name, sizeof(name), "vcpu%u", v->index);
	pthread_setname_np(v->thread, name);
	v->started = true;
	return 0;
}

void vcpu_stop_all(struct vm *vm)
{
	/* Parked threads wait on the condition variable, not in KVM_RUN:
	 * wake them (they see the exit status and leave). */
	pthread_mutex_lock(&vm->pause.lock);
	pthread_cond_broadcast(&vm->pause.cond);
	pthread_mutex_unlock(&vm->pause.lock);
	/* immediate_exit covers a thread that is about to enter KVM_RUN; the
	 * signal covers one already inside it (halted or running). Keep
	 * kicking until each thread has left: a single signal can land just
	 * before the thread re-checks the exit flag. */
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (!v->started)
			continue;
		v->run->immediate_exit = 1;
		while (pthread_tryjoin_np(v->thread, NULL) == EBUSY) {
			pthread_kill(v->thread, VCPU_KICK_SIGNAL);
			usleep(200);
		}
		v->started = false;
	}
}
