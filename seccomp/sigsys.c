/*
 * Reporting a forbidden system call (--seccomp=kill).
 *
 * The filters' default action is SECCOMP_RET_TRAP: the call is not run,
 * and the thread gets SIGSYS, whose handler here writes one line naming
 * the thread's kind and the call, then ends the process with
 * VMM_EXIT_SECCOMP. RET_KILL_PROCESS would end it too, silently, as
 * "killed by SIGSYS"; the trap is how the report is made (Firecracker
 * does the same). Nothing continues after a forbidden call: if the
 * handler cannot run (SIGSYS blocked, or the handler itself makes a
 * forbidden call) the kernel kills the process with SIGSYS instead.
 *
 * The handler may run in any thread at any point, so it takes no lock,
 * allocates nothing and calls only write() and _exit(): what it needs is
 * prepared beforehand, in static storage, because a signal handler has no
 * other way to reach it. The system call names are looked up once, before
 * any filter exists (libseccomp's lookup allocates); each thread's kind
 * is a thread-local set when its filter goes in.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../log.h"
#include "internal.h"

#define NAMES_MAX 512 /* x86_64 numbers are below this */

static const char *syscall_names[NAMES_MAX];
static bool names_ready;
static __thread const char *thread_kind;

static void put(char *buf, size_t size, size_t *len, const char *s)
{
	while (*s && *len < size)
		buf[(*len)++] = *s++;
}

static void put_number(char *buf, size_t size, size_t *len, unsigned long v)
{
	char digits[24];
	size_t n = 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n && *len < size)
		buf[(*len)++] = digits[--n];
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	int nr = si->si_syscall;
	const char *name = nr >= 0 && nr < NAMES_MAX ? syscall_names[nr] : NULL;
	char msg[192];
	size_t len = 0;
	put(msg, sizeof(msg), &len, "vmm: seccomp: ");
	put(msg, sizeof(msg), &len, thread_kind ? thread_kind : "a");
	put(msg, sizeof(msg), &len, " thread made a forbidden system call: ");
	put(msg, sizeof(msg), &len, name ? name : "unknown");
	put(msg, sizeof(msg), &len, " (");
	put_number(msg, sizeof(msg), &len, (unsigned long)(unsigned)nr);
	put(msg, sizeof(msg), &len, ")\n");
	if (write(STDERR_FILENO, msg, len) < 0) {
		/* nowhere else to say it */
	}
	_exit(VMM_EXIT_SECCOMP);
}

static void resolve_names(void)
{
	if (names_ready)
		return;
	/* Kept for the life of the process: the handler may need any of them. */
	for (int nr = 0; nr < NAMES_MAX; nr++)
		syscall_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	names_ready = true;
}

int sandbox_sigsys_init(void)
{
	resolve_names();
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	/* Nothing else interrupts the report. */
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		vmm_perr("seccomp: sigaction(SIGSYS)");
		return -1;
	}
	return 0;
}

void sandbox_sigsys_set_kind(enum sandbox_kind kind)
{
	thread_kind = sandbox_kind_name(kind);
}
