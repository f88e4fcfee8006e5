/*
 * Diagnostics. Every message starts with "vmm: " and goes to stderr, or to
 * the file PUT /logger named. Messages below the configured level are
 * dropped (default: warnings and errors only).
 */
#ifndef VMM_LOG_H
#define VMM_LOG_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>

enum vmm_log_level {
	VMM_LOG_OFF,
	VMM_LOG_ERROR,
	VMM_LOG_WARNING,
	VMM_LOG_INFO,
	VMM_LOG_DEBUG,
	VMM_LOG_TRACE,
};

/* err: an errno value to append as ": <strerror>", or 0. */
void vmm_log(enum vmm_log_level level, const char *file, int line, int err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define vmm_err(...) vmm_log(VMM_LOG_ERROR, __FILE__, __LINE__, 0, __VA_ARGS__)
#define vmm_warn(...) vmm_log(VMM_LOG_WARNING, __FILE__, __LINE__, 0, __VA_ARGS__)
#define vmm_info(...) vmm_log(VMM_LOG_INFO, __FILE__, __LINE__, 0, __VA_ARGS__)
#define vmm_debug(...) vmm_log(VMM_LOG_DEBUG, __FILE__, __LINE__, 0, __VA_ARGS__)
/* errno-suffixed variant: "vmm: <msg>: <strerror(errno)>" */
#define vmm_perr(...) vmm_log(VMM_LOG_ERROR, __FILE__, __LINE__, errno, __VA_ARGS__)

/* Where messages go: fd (-1: stderr; the caller keeps ownership until the
 * next call), the most verbose level shown, and the "[Level file:line]"
 * decorations. Callable from any thread. */
void vmm_log_configure(int fd, enum vmm_log_level level, bool show_level, bool show_origin);
/* "Error", "Warning", ... and back (case-insensitive); -1 if unknown. */
const char *vmm_log_level_name(enum vmm_log_level level);
int vmm_log_level_parse(const char *name);

/* The text of the last error this thread logged ("" if none since the last
 * vmm_log_clear_error()): the API returns it as a fault_message. */
const char *vmm_log_last_error(void);
void vmm_log_clear_error(void);

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
