/*
 * Privileges after set-up: no capabilities (libcap-ng), the jail's user
 * and group (--uid/--gid), the jail itself (--chroot).
 *
 * Capabilities and ids belong to each thread in Linux. glibc's setuid()
 * makes them process-wide by signalling every other thread to repeat the
 * call, which would put setresuid & co in every filter; instead each
 * thread drops its own as it enters the sandbox (sandbox_enter), with the
 * raw system calls, before its filter goes in. Nothing the VMM does after
 * set-up needs a capability: files opened later (PATCH /drives, the
 * logger, metrics) are opened with the plain permissions of the VMM's user,
 * and paths resolve inside the jail once --chroot is applied.
 */
#include <cap-ng.h>
#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../log.h"
#include "internal.h"

int sandbox_apply_chroot(const char *dir)
{
	if (chroot(dir) < 0) {
		vmm_perr("--chroot %s", dir);
		return -1;
	}
	if (chdir("/") < 0) {
		vmm_perr("--chroot %s: chdir", dir);
		return -1;
	}
	return 0;
}

/* The bounding set limits what an exec could ever grant. Shrinking it
 * needs CAP_SETPCAP; without it (an unprivileged VMM) there is nothing to
 * shrink it for: no_new_privs already keeps exec from granting anything. */
static int drop_bounding_set(void)
{
	if (capng_get_caps_process() < 0 || !capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP))
		return 0;
	capng_clear(CAPNG_SELECT_BOUNDS);
	if (capng_apply(CAPNG_SELECT_BOUNDS) < 0) {
		vmm_err("sandbox: cannot clear the capability bounding set");
		return -1;
	}
	return 0;
}

/* This thread only: see the top of the file. */
static int take_ids(const struct sandbox *sb)
{
	if (!sb->set_ids)
		return 0;
	if (syscall(SYS_setgroups, 0, NULL) < 0 ||
	    syscall(SYS_setresgid, sb->gid, sb->gid, sb->gid) < 0 ||
	    syscall(SYS_setresuid, sb->uid, sb->uid, sb->uid) < 0) {
		vmm_perr("--uid %u --gid %u", (unsigned)sb->uid, (unsigned)sb->gid);
		return -1;
	}
#ifdef __SANITIZE_ADDRESS__
	/* A change of ids makes the process undumpable, and LeakSanitizer's
	 * exit-time check must ptrace the threads to see their stacks. */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
	return 0;
}

int sandbox_drop_privileges(const struct sandbox *sb)
{
	if (drop_bounding_set() < 0 || take_ids(sb) < 0)
		return -1;
	/* Effective, permitted and inheritable (ambient follows): all empty. */
	capng_clear(CAPNG_SELECT_CAPS);
	if (capng_apply(CAPNG_SELECT_CAPS) < 0) {
		vmm_perr("sandbox: cannot drop capabilities");
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		vmm_perr("sandbox: PR_SET_NO_NEW_PRIVS");
		return -1;
	}
	return 0;
}
