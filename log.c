#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void vlog(const char *prefix, const char *fmt, va_list ap, int err)
{
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (err)
		fprintf(stderr, "vmm: %s%s: %s\n", prefix, buf, strerror(err));
	else
		fprintf(stderr, "vmm: %s%s\n", prefix, buf);
}

void vmm_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog("", fmt, ap, 0);
	va_end(ap);
}

void vmm_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog("warning: ", fmt, ap, 0);
	va_end(ap);
}

void vmm_perr(const char *fmt, ...)
{
	int err = errno;
	va_list ap;
	va_start(ap, fmt);
	vlog("", fmt, ap, err);
	va_end(ap);
}

/* At most 5 messages per second per call site; the rest are counted. */
void vmm_warn_ratelimited(struct ratelimit *rl, const char *fmt, ...)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	if (now.tv_sec != rl->last_sec) {
		if (rl->suppressed)
			fprintf(stderr, "vmm: warning: %u similar messages suppressed\n",
				rl->suppressed);
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
	vlog("warning: ", fmt, ap, 0);
	va_end(ap);
}
