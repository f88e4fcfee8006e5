#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1; /* -1: stderr */
static enum vmm_log_level log_level = VMM_LOG_WARNING;
static bool log_show_level, log_show_origin;

static __thread char last_error[1024]; /* a fault_message for the API */

static const char *const level_names[] = {
    [VMM_LOG_OFF] = "Off",   [VMM_LOG_ERROR] = "Error", [VMM_LOG_WARNING] = "Warning",
    [VMM_LOG_INFO] = "Info", [VMM_LOG_DEBUG] = "Debug", [VMM_LOG_TRACE] = "Trace",
};

const char *vmm_log_level_name(enum vmm_log_level level)
{
	return (unsigned)level <= VMM_LOG_TRACE ? level_names[level] : "?";
}

int vmm_log_level_parse(const char *name)
{
	for (int i = 0; i <= VMM_LOG_TRACE; i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

void vmm_log_configure(int fd, enum vmm_log_level level, bool show_level, bool show_origin)
{
	pthread_mutex_lock(&log_lock);
	log_fd = fd;
	log_level = level;
	log_show_level = show_level;
	log_show_origin = show_origin;
	pthread_mutex_unlock(&log_lock);
}

const char *vmm_log_last_error(void)
{
	return last_error;
}

void vmm_log_clear_error(void)
{
	last_error[0] = 0;
}

/* "[Level file:line] " as configured; "" when neither is shown. */
static void decoration(char *buf, size_t size, enum vmm_log_level level, const char *file, int line)
{
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	if (log_show_level && log_show_origin)
		snprintf(buf, size, "[%s %s:%d] ", vmm_log_level_name(level), base, line);
	else if (log_show_level)
		snprintf(buf, size, "[%s] ", vmm_log_level_name(level));
	else if (log_show_origin)
		snprintf(buf, size, "[%s:%d] ", base, line);
	else
		buf[0] = 0;
}

static void vlog(enum vmm_log_level level, const char *file, int line, int err, const char *fmt,
		 va_list ap)
{
	char msg[1024], deco[96], out[1200];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (err) {
		size_t n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(err));
	}
	if (level == VMM_LOG_ERROR)
		snprintf(last_error, sizeof(last_error), "%s", msg);
	pthread_mutex_lock(&log_lock);
	if (level > log_level || level == VMM_LOG_OFF) {
		pthread_mutex_unlock(&log_lock);
		return;
	}
	decoration(deco, sizeof(deco), level, file, line);
	const char *warn = level == VMM_LOG_WARNING && !log_show_level ? "warning: " : "";
	int n = snprintf(out, sizeof(out), "vmm: %s%s%s\n", deco, warn, msg);
	if (n >= (int)sizeof(out)) {
		n = sizeof(out) - 1;
		out[n - 1] = '\n';
	}
	int fd = log_fd >= 0 ? log_fd : STDERR_FILENO;
	/* One write per message, so lines from different threads never mix. */
	if (write(fd, out, (size_t)n) < 0) {
		/* Nowhere left to report it. */
	}
	pthread_mutex_unlock(&log_lock);
}

void vmm_log(enum vmm_log_level level, const char *file, int line, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(level, file, line, err, fmt, ap);
	va_end(ap);
}

/* At most 5 messages per second per call site; the rest are counted. */
void vmm_warn_ratelimited(struct ratelimit *rl, const char *fmt, ...)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	if (now.tv_sec != rl->last_sec) {
		if (rl->suppressed)
			vmm_warn("%u similar messages suppressed", rl->suppressed);
		rl->last_sec = now.tv_sec;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	if (rl->printed >= 5) {
		rl->suppressed++;
		return;
	}
	rl->printed++;
	va_list ap;
	va_start(ap, fmt);
	vlog(VMM_LOG_WARNING, __FILE__, __LINE__, 0, fmt, ap);
	va_end(ap);
}
