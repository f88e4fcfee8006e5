/*
 * What every kind of thread may do, whatever its work (sandbox.h).
 */
#include <signal.h>
#include <sys/ioctl.h>

#include "sandbox.h"

/* A crash handler (hw/console.c restores the terminal on SIGSEGV & co)
 * puts the signal's previous action back and returns, so the fault is
 * taken again: a crash stays a crash (core dump, sanitizer report) rather
 * than turning into a seccomp report. Only these signals: no thread may
 * change how SIGSYS, or any other signal, is handled. */
#define SB_CRASH_SIGACTION(sig) SB_IF(rt_sigaction, SB_EQ(0, (sig)))

static const struct sandbox_rule common[] = {
    /* The SIGSYS report (sigsys.c) is one write() and _exit(); every
     * thread also logs. */
    SB_ALLOW(write),
    SB_ALLOW(exit_group),
    /* pthread mutexes and condition variables. */
    SB_ALLOW(futex),
    /* The vDSO answers without a system call, except on hosts whose
     * clocksource user space cannot read. */
    SB_ALLOW(clock_gettime),
    /* Returning from a signal handler: the vCPU kick, crash handlers. */
    SB_ALLOW(rt_sigreturn),
    SB_CRASH_SIGACTION(SIGSEGV),
    SB_CRASH_SIGACTION(SIGBUS),
    SB_CRASH_SIGACTION(SIGFPE),
    SB_CRASH_SIGACTION(SIGILL),
    /* ... and the terminal a crash handler puts back (glibc's tcsetattr
     * reads the settings back to check them). */
    SB_IOCTL(TCSETS),
    SB_IOCTL(TCGETS),
};

/* The kind is ignored: these go into every kind's filter. */
SANDBOX_RULES(sandbox_rules_common, SANDBOX_NKINDS, "common", common);
