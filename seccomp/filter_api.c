/*
 * The API thread's allow-list (api/server.c), on top of filter_common.c.
 *
 * The API thread serves HTTP on sockets that already exist: it accepts,
 * reads, writes and closes connections and hands each request to the
 * event loop through an eventfd. It opens nothing and creates no socket:
 * the listener is bound before the thread starts.
 */
#include "sandbox.h"

static const struct sandbox_rule api[] = {
    SB_ALLOW(poll),
    SB_ALLOW(accept4),
    /* recv() and send() are these on x86_64. */
    SB_ALLOW(recvfrom),
    SB_ALLOW(sendto),
    SB_ALLOW(close),
    /* malloc: this thread's arena is reserved, grown and trimmed. Never
     * executable memory. */
    SB_NO_EXEC(mmap),
    SB_NO_EXEC(mprotect),
    SB_ALLOW(munmap),
    SB_IF(madvise, SB_EQ(2, MADV_DONTNEED)),
    /* glibc's malloc reads /proc/sys/vm/overcommit_memory once, from the
     * first thread whose arena shrinks. Refused, malloc takes the usual
     * path (madvise); the thread itself has no file to open. */
    SB_ERRNO(openat, EACCES),
    /* The thread's end: glibc blocks signals, frees its stack, exits. */
    SB_ALLOW(rt_sigprocmask),
    SB_ALLOW(exit),
};

SANDBOX_RULES(sandbox_rules_api, SANDBOX_API, "core", api);
