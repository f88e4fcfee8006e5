/*
 * The sandbox's life: filters compiled at start-up (sandbox_init), then
 * entered by each thread once its set-up is over (sandbox_enter).
 */
#include "internal.h"

#include <errno.h>
#include <jansson.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../log.h"

static const char *const kind_names[SANDBOX_NKINDS] = {
    [SANDBOX_MAIN] = "main",
    [SANDBOX_VCPU] = "vcpu",
    [SANDBOX_API] = "api",
};

const char *sandbox_kind_name(enum sandbox_kind kind)
{
	return (unsigned)kind < SANDBOX_NKINDS ? kind_names[kind] : "?";
}

/* Can this kernel run filters with this default action? */
static bool action_available(uint32_t action)
{
	return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
}

static int compile_all(struct sandbox *sb)
{
	uint32_t action = sb->mode == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
	if (!action_available(action)) {
		vmm_err("--seccomp=%s: this kernel cannot run seccomp filters with %s (%s); "
			"--seccomp=off runs without them",
			sb->mode == SANDBOX_LOG ? "log" : "kill",
			sb->mode == SANDBOX_LOG ? "SECCOMP_RET_LOG" : "SECCOMP_RET_TRAP",
			strerror(errno));
		return -1;
	}
	for (int k = 0; k < SANDBOX_NKINDS; k++)
		if (sandbox_compile((enum sandbox_kind)k, action, &sb->prog[k]) < 0)
			return -1;
	return 0;
}

/* VMM_TEST_SECCOMP_TRIP: which kind trips, or -1. */
static int trip_kind(void)
{
	const char *env = getenv("VMM_TEST_SECCOMP_TRIP");
	for (int k = 0; env && k < SANDBOX_NKINDS; k++)
		if (strcmp(env, kind_names[k]) == 0)
			return k;
	return -1;
}

/* A call no kind may make: a routing netlink socket. Under --seccomp=log
 * it runs. */
static void trip(void)
{
	long fd = syscall(SYS_socket, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	if (fd >= 0)
		close((int)fd);
}

int sandbox_init(struct sandbox *sb, const struct vm_config *cfg)
{
	memset(sb, 0, sizeof(*sb));
	sb->mode = cfg->seccomp;
	sb->chroot = cfg->chroot;
	sb->set_ids = cfg->uid >= 0 && cfg->gid >= 0;
	sb->uid = (uid_t)cfg->uid;
	sb->gid = (gid_t)cfg->gid;
	sb->trip = trip_kind();
	/* Inherited by every thread created from now on. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		vmm_perr("sandbox: PR_SET_NO_NEW_PRIVS");
		return VMM_EXIT_RESOURCE;
	}
	/* jansson seeds its hash function from /dev/urandom when the first
	 * object is made, which may be on the API thread, which opens nothing:
	 * seed it now. */
	json_object_seed(0);
	if (sb->mode == SANDBOX_OFF)
		return 0;
	if (compile_all(sb) < 0 || (sb->mode == SANDBOX_KILL && sandbox_sigsys_init() < 0)) {
		sandbox_destroy(sb);
		return VMM_EXIT_RESOURCE;
	}
	return 0;
}

void sandbox_destroy(struct sandbox *sb)
{
	for (int k = 0; k < SANDBOX_NKINDS; k++) {
		free(sb->prog[k].filter);
		sb->prog[k].filter = NULL;
		sb->prog[k].len = 0;
	}
}

/* Per thread, and for good. No TSYNC: each thread has its own. */
static int install(const struct sandbox *sb, enum sandbox_kind kind)
{
	const struct sock_fprog *prog = &sb->prog[kind];
	if (sb->mode == SANDBOX_OFF)
		return 0;
	if (!prog->filter) {
		vmm_err("seccomp: no %s filter was built", sandbox_kind_name(kind));
		return -1;
	}
	sandbox_sigsys_set_kind(kind);
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0) {
		vmm_perr("seccomp: cannot install the %s thread's filter", sandbox_kind_name(kind));
		return -1;
	}
	return 0;
}

int sandbox_enter(const struct sandbox *sb, enum sandbox_kind kind)
{
	if (!sb)
		return 0;
	if ((unsigned)kind >= SANDBOX_NKINDS) {
		vmm_err("sandbox: no thread kind %d", (int)kind);
		return VMM_EXIT_INTERNAL;
	}
	/* The chroot holds for every thread (they share one fs_struct); the
	 * main thread is the last to enter, after all set-up. */
	if (kind == SANDBOX_MAIN && sb->chroot && sandbox_apply_chroot(sb->chroot) < 0)
		return VMM_EXIT_RESOURCE;
	if (sandbox_drop_privileges(sb) < 0 || install(sb, kind) < 0)
		return VMM_EXIT_RESOURCE;
	if (sb->trip == (int)kind)
		trip();
	vmm_debug("sandbox: %s thread entered (seccomp %s)", sandbox_kind_name(kind),
		  sb->mode == SANDBOX_KILL  ? "kill"
		  : sb->mode == SANDBOX_LOG ? "log"
					    : "off");
	return 0;
}
