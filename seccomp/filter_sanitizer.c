/*
 * What the ASan/UBSan runtime does behind the VMM's back, in sanitizer
 * builds only: the production filters stay as the code needs them.
 *
 * Every thread: the sanitizer's allocator maps, unmaps and advises memory
 * (never executable), and a thread's end frees its alternate signal
 * stack. The main thread, at exit: LeakSanitizer clones a helper (same
 * memory, another thread group, so that it may ptrace the threads), which
 * lists /proc/self/task, stops each thread with ptrace and reads its
 * registers, while the main thread waits for it.
 */
#include "sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#include <signal.h>

#define LSAN_CLONE_FLAGS (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED)

/* The allocator; a thread's start (it registers with the runtime and reads
 * its stack's bounds: gettid, sched_getaffinity via pthread_getattr_np)
 * and end (its alternate signal stack). */
#define THREAD_RULES                                                                               \
	SB_NO_EXEC(mmap), SB_NO_EXEC(mprotect), SB_ALLOW(munmap), SB_ALLOW(madvise),               \
	    SB_ALLOW(mremap), SB_ALLOW(sigaltstack), SB_ALLOW(rt_sigprocmask), SB_ALLOW(gettid),   \
	    SB_ALLOW(sched_getaffinity), SB_ALLOW(exit)

static const struct sandbox_rule thread_rules[] = {THREAD_RULES};

static const struct sandbox_rule main_rules[] = {
    THREAD_RULES,
    /* LeakSanitizer's helper, with any exit signal. */
    SB_IF(clone, SB_MASKED(0, ~(unsigned long)CSIGNAL, LSAN_CLONE_FLAGS)),
    SB_ALLOW(ptrace),
    SB_ALLOW(wait4),
    SB_ALLOW(prctl),
    SB_ALLOW(sched_yield),
    SB_ALLOW(getppid),
    /* The helper's own crash handlers; SIGSYS stays the report's. */
    SB_IF(rt_sigaction, SB_NE(0, SIGSYS)),
    /* The runtime's own wrappers use the old calls: open, getdents. */
    SB_ALLOW(open),
    SB_ALLOW(getdents),
    SB_ALLOW(lseek),
    SB_ALLOW(read),
    SB_ALLOW(close),
};

const struct sandbox_rules sandbox_rules_sanitizer[SANDBOX_NKINDS] = {
    [SANDBOX_MAIN] = {SANDBOX_MAIN, "sanitizer", main_rules,
		      sizeof(main_rules) / sizeof(main_rules[0])},
    [SANDBOX_VCPU] = {SANDBOX_VCPU, "sanitizer", thread_rules,
		      sizeof(thread_rules) / sizeof(thread_rules[0])},
    [SANDBOX_API] = {SANDBOX_API, "sanitizer", thread_rules,
		     sizeof(thread_rules) / sizeof(thread_rules[0])},
};
#else
const struct sandbox_rules sandbox_rules_sanitizer[SANDBOX_NKINDS] = {
    [SANDBOX_MAIN] = {SANDBOX_MAIN, "sanitizer", NULL, 0},
    [SANDBOX_VCPU] = {SANDBOX_VCPU, "sanitizer", NULL, 0},
    [SANDBOX_API] = {SANDBOX_API, "sanitizer", NULL, 0},
};
#endif
