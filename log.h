/* Diagnostics: every message the VMM prints to stderr starts with "vmm: ". */
#ifndef VMM_LOG_H
#define VMM_LOG_H

#include <stdarg.h>

void vmm_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vmm_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* errno-suffixed variant: "vmm: <msg>: <strerror(errno)>" */
void vmm_perr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Rate-limited warning for guest-triggerable conditions: a malicious guest
 * must not be able to flood the host's log.  One struct per call site.
 */
struct ratelimit {
	long last_sec;
	unsigned printed;
	unsigned suppressed;
};
void vmm_warn_ratelimited(struct ratelimit *rl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
