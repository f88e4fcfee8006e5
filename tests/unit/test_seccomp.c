/*
 * The sandbox (seccomp/): each thread kind's filter, installed in a forked
 * child that then makes allowed and forbidden calls; the report, the exit
 * status, log and off modes; the privileges dropped; the command line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/kvm.h>
#include <linux/netlink.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "clitest.h"
#include "config.h"
#include "seccomp/sandbox.h"
#include "vcpu.h"

/* ---- a child in a sandbox ---- */

struct child {
	int status;	/* waitpid()'s */
	char err[1024]; /* what it wrote to stderr */
};

/* Run fn(arg) in a child whose stderr is captured; fn's return value is
 * the child's exit status. */
static void run_child(int (*fn)(void *), void *arg, struct child *c)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		_exit(fn(arg));
	}
	close(p[1]);
	size_t len = 0;
	ssize_t n;
	while ((n = read(p[0], c->err + len, sizeof(c->err) - 1 - len)) > 0)
		len += (size_t)n;
	c->err[len] = 0;
	close(p[0]);
	assert_int_equal(waitpid(pid, &c->status, 0), pid);
}

static bool exited_with(const struct child *c, int status)
{
	return WIFEXITED(c->status) && WEXITSTATUS(c->status) == status;
}

/* What a child does once inside its sandbox. */
struct trial {
	enum sandbox_mode mode;
	enum sandbox_kind kind;
	int (*act)(void); /* returns the child's exit status */
	long long uid, gid;
};

/* The child's ids, taken before its filter forbids asking. */
static pid_t child_pid, child_tid;

static int in_sandbox(void *arg)
{
	const struct trial *t = arg;
	child_pid = getpid();
	child_tid = gettid();
	struct vm_config cfg;
	vm_config_init(&cfg);
	cfg.seccomp = t->mode;
	cfg.uid = t->uid;
	cfg.gid = t->gid;
	struct sandbox sb;
	if (sandbox_init(&sb, &cfg) || sandbox_enter(&sb, t->kind))
		return 100;
	return t->act();
}

static void trial_run(enum sandbox_mode mode, enum sandbox_kind kind, int (*act)(void),
		      struct child *c)
{
	struct trial t = {.mode = mode, .kind = kind, .act = act, .uid = -1, .gid = -1};
	run_child(in_sandbox, &t, c);
}

/* The report names the kind and the call, and the status is ours. */
static void assert_reported(const struct child *c, const char *kind, const char *call)
{
	char want[160];
	snprintf(want, sizeof(want), "vmm: seccomp: %s thread made a forbidden system call: %s (",
		 kind, call);
	if (!exited_with(c, VMM_EXIT_SECCOMP) || !strstr(c->err, want))
		fail_msg("status 0x%x, stderr: %s (wanted: %s...)", c->status, c->err, want);
}

/* ---- the calls ---- */

/* A family no thread may open, whatever the modules built in: routing
 * netlink reaches far into the kernel. */
static int act_netlink_socket(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	return fd >= 0 ? 0 : 1;
}

static int act_create_vm(void)
{
	/* KVM_CREATE_VM is a request no thread makes after set-up. */
	return ioctl(-1, KVM_CREATE_VM, 0) < 0 && errno == EBADF ? 0 : 1;
}

static int act_kvm_run(void)
{
	/* Allowed: the kernel answers (a bad descriptor), nothing is killed. */
	return ioctl(-1, KVM_RUN, 0) < 0 && errno == EBADF ? 0 : 1;
}

static int act_kvm_run_sign_extended(void)
{
	/* The kernel reads 32 bits of the request: so does the filter. */
	unsigned long req = (unsigned long)(long)(int)KVM_RUN;
	return syscall(SYS_ioctl, -1, req, 0) < 0 && errno == EBADF ? 0 : 1;
}

static int act_exec_mapping(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? 1 : 0;
}

static int act_data_mapping(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	if (mprotect(p, 4096, PROT_READ) < 0)
		return 2;
	return munmap(p, 4096) < 0 ? 3 : 0;
}

static int act_mprotect_exec(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	return mprotect(p, 4096, PROT_READ | PROT_EXEC) < 0 ? 2 : 0;
}

static int act_fork(void)
{
	pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
	if (pid == 0)
		_exit(0);
	return pid > 0 ? 0 : 1;
}

static int act_open(void)
{
	int fd = open("/dev/null", O_RDONLY);
	return fd >= 0 ? 0 : 1;
}

static int act_kick_other_signal(void)
{
	/* The main thread signals vCPU threads with the kick signal only. */
	return syscall(SYS_tgkill, child_pid, child_tid, SIGTERM) < 0 ? 1 : 0;
}

static int act_sigsys_handler(void)
{
	/* Nobody may take SIGSYS away from the report. */
	signal(SIGSYS, SIG_IGN);
	return 0;
}

static int act_nothing(void)
{
	return 0;
}

/* ---- every kind: a forbidden call kills and is reported ---- */

static void forbidden_socket_every_kind(void **state)
{
	(void)state;
	for (int k = 0; k < SANDBOX_NKINDS; k++) {
		struct child c;
		trial_run(SANDBOX_KILL, (enum sandbox_kind)k, act_netlink_socket, &c);
		assert_reported(&c, sandbox_kind_name((enum sandbox_kind)k), "socket");
		assert_non_null(strstr(c.err, "(41)\n"));
	}
}

static void forbidden_fork_every_kind(void **state)
{
	(void)state;
	for (int k = 0; k < SANDBOX_NKINDS; k++) {
		struct child c;
		trial_run(SANDBOX_KILL, (enum sandbox_kind)k, act_fork, &c);
		assert_reported(&c, sandbox_kind_name((enum sandbox_kind)k), "clone");
	}
}

static void sigsys_cannot_be_taken(void **state)
{
	(void)state;
	for (int k = 0; k < SANDBOX_NKINDS; k++) {
		struct child c;
		trial_run(SANDBOX_KILL, (enum sandbox_kind)k, act_sigsys_handler, &c);
		assert_reported(&c, sandbox_kind_name((enum sandbox_kind)k), "rt_sigaction");
	}
}

static void an_allowed_call_is_not_killed(void **state)
{
	(void)state;
	for (int k = 0; k < SANDBOX_NKINDS; k++) {
		struct child c;
		trial_run(SANDBOX_KILL, (enum sandbox_kind)k, act_nothing, &c);
		if (!exited_with(&c, 0))
			fail_msg("%s: status 0x%x, stderr: %s", sandbox_kind_name(k), c.status,
				 c.err);
	}
}

/* ---- argument filters ---- */

static void ioctl_numbers_are_filtered(void **state)
{
	(void)state;
	struct child c;
	trial_run(SANDBOX_KILL, SANDBOX_VCPU, act_kvm_run, &c);
	assert_true(exited_with(&c, 0));
	trial_run(SANDBOX_KILL, SANDBOX_VCPU, act_kvm_run_sign_extended, &c);
	assert_true(exited_with(&c, 0));
	trial_run(SANDBOX_KILL, SANDBOX_VCPU, act_create_vm, &c);
	assert_reported(&c, "vcpu", "ioctl");
	/* KVM_RUN is the vCPUs' alone. */
	trial_run(SANDBOX_KILL, SANDBOX_MAIN, act_kvm_run, &c);
	assert_reported(&c, "main", "ioctl");
	trial_run(SANDBOX_KILL, SANDBOX_API, act_kvm_run, &c);
	assert_reported(&c, "api", "ioctl");
}

static void no_executable_memory(void **state)
{
	(void)state;
	struct child c;
	trial_run(SANDBOX_KILL, SANDBOX_API, act_data_mapping, &c);
	assert_true(exited_with(&c, 0));
	trial_run(SANDBOX_KILL, SANDBOX_API, act_exec_mapping, &c);
	assert_reported(&c, "api", "mmap");
	trial_run(SANDBOX_KILL, SANDBOX_API, act_mprotect_exec, &c);
	assert_reported(&c, "api", "mprotect");
	trial_run(SANDBOX_KILL, SANDBOX_MAIN, act_exec_mapping, &c);
	assert_reported(&c, "main", "mmap");
}

static void files_only_on_the_main_thread(void **state)
{
	(void)state;
	struct child c;
	trial_run(SANDBOX_KILL, SANDBOX_MAIN, act_open, &c);
	assert_true(exited_with(&c, 0));
	trial_run(SANDBOX_KILL, SANDBOX_VCPU, act_open, &c);
	assert_reported(&c, "vcpu", "openat");
	/* The API thread's open fails instead (glibc's malloc probes a file). */
	trial_run(SANDBOX_KILL, SANDBOX_API, act_open, &c);
	assert_true(exited_with(&c, 1));
}

static void signals_only_the_kick(void **state)
{
	(void)state;
	struct child c;
	trial_run(SANDBOX_KILL, SANDBOX_MAIN, act_kick_other_signal, &c);
	assert_reported(&c, "main", "tgkill");
}

/* ---- log and off ---- */

static void log_mode_lets_it_run(void **state)
{
	(void)state;
	struct child c;
	trial_run(SANDBOX_LOG, SANDBOX_VCPU, act_netlink_socket, &c);
	assert_true(exited_with(&c, 0));
	trial_run(SANDBOX_LOG, SANDBOX_API, act_create_vm, &c);
	assert_true(exited_with(&c, 0));
	assert_string_equal(c.err, "");
}

static int act_seccomp_state(void)
{
	return prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
}

static void off_mode_installs_nothing(void **state)
{
	(void)state;
	struct child c;
	trial_run(SANDBOX_OFF, SANDBOX_VCPU, act_netlink_socket, &c);
	assert_true(exited_with(&c, 0));
	trial_run(SANDBOX_OFF, SANDBOX_MAIN, act_seccomp_state, &c);
	assert_true(exited_with(&c, 0)); /* SECCOMP_MODE_DISABLED */
	trial_run(SANDBOX_LOG, SANDBOX_MAIN, act_seccomp_state, &c);
	assert_true(exited_with(&c, 2)); /* SECCOMP_MODE_FILTER */
}

/* ---- privileges ---- */

static int act_report_privileges(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return 10;
	if (d[0].effective || d[0].permitted || d[0].inheritable || d[1].effective ||
	    d[1].permitted || d[1].inheritable)
		return 11;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return 12;
	/* Root could shrink the bounding set: it did. */
	if (prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0 && geteuid() == 0)
		return 13;
	return 0;
}

static void capabilities_dropped(void **state)
{
	(void)state;
	struct child c;
	/* off: no filter, so capget and prctl can be asked. */
	trial_run(SANDBOX_OFF, SANDBOX_VCPU, act_report_privileges, &c);
	if (!exited_with(&c, 0))
		fail_msg("status 0x%x, stderr: %s", c.status, c.err);
}

static int act_report_ids(void)
{
	uid_t r, e, s;
	gid_t gr, ge, gs;
	if (getresuid(&r, &e, &s) || getresgid(&gr, &ge, &gs))
		return 10;
	if (r != 65534 || e != 65534 || s != 65534 || gr != 65533 || ge != 65533 || gs != 65533)
		return 11;
	return getgroups(0, NULL) == 0 ? 0 : 12;
}

static void ids_taken(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	struct trial t = {.mode = SANDBOX_OFF,
			  .kind = SANDBOX_API,
			  .act = act_report_ids,
			  .uid = 65534,
			  .gid = 65533};
	struct child c;
	run_child(in_sandbox, &t, &c);
	if (!exited_with(&c, 0))
		fail_msg("status 0x%x, stderr: %s", c.status, c.err);
}

/* ---- counts: fewer than Firecracker, on every kind ---- */

/* The kind's allowed calls by name, for the README. */
static void print_allowed(enum sandbox_kind kind, bool with_extras)
{
	const struct sandbox_rules *t[16];
	size_t nt = sandbox_tables(kind, with_extras, t, 16);
	int seen[256];
	unsigned n = 0;
	printf("  %s:", sandbox_kind_name(kind));
	for (size_t i = 0; i < nt; i++) {
		for (size_t j = 0; j < t[i]->n; j++) {
			const struct sandbox_rule *r = &t[i]->rules[j];
			bool dup = r->err != 0;
			for (unsigned k = 0; k < n && !dup; k++)
				dup = seen[k] == r->nr;
			if (dup || n == 256)
				continue;
			seen[n++] = r->nr;
			char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, r->nr);
			printf(" %s", name ? name : "?");
			free(name);
		}
	}
	printf(" (%u)\n", n);
}

static void fewer_calls_than_firecracker(void **state)
{
	(void)state;
	unsigned main_n = sandbox_count(SANDBOX_MAIN, false);
	unsigned vcpu_n = sandbox_count(SANDBOX_VCPU, false);
	unsigned api_n = sandbox_count(SANDBOX_API, false);
	printf("seccomp allow-lists (system calls): main %u (Firecracker vmm %d), vcpu %u "
	       "(Firecracker %d), api %u (Firecracker %d)\n",
	       main_n, FIRECRACKER_SYSCALLS_MAIN, vcpu_n, FIRECRACKER_SYSCALLS_VCPU, api_n,
	       FIRECRACKER_SYSCALLS_API);
	for (int k = 0; k < SANDBOX_NKINDS; k++)
		print_allowed((enum sandbox_kind)k, false);
	/* Modules (and a sanitizer's runtime) add to these in their builds. */
	printf("with this build's additions (modules, sanitizer): main %u, vcpu %u, api %u\n",
	       sandbox_count(SANDBOX_MAIN, true), sandbox_count(SANDBOX_VCPU, true),
	       sandbox_count(SANDBOX_API, true));
	for (int k = 0; k < SANDBOX_NKINDS; k++)
		print_allowed((enum sandbox_kind)k, true);
	assert_true(main_n < FIRECRACKER_SYSCALLS_MAIN);
	assert_true(vcpu_n < FIRECRACKER_SYSCALLS_VCPU);
	assert_true(api_n < FIRECRACKER_SYSCALLS_API);
	assert_true(vcpu_n > 0 && api_n > 0 && main_n > 0);
}

/* ---- the command line ---- */

static void command_line(void **state)
{
	(void)state;
	struct vm_config cfg;
	const char *dflt[] = {"--kernel", "k", NULL};
	assert_int_equal(clt_parse(&cfg, dflt), CLI_RUN);
	assert_int_equal(cfg.seccomp, SANDBOX_KILL);
	assert_null(cfg.chroot);
	assert_true(cfg.uid == -1 && cfg.gid == -1);
	vm_config_free(&cfg);

	const char *all[] = {"--kernel", "k",	 "--seccomp", "log", "--chroot", "/srv/jail",
			     "--uid",	 "1000", "--gid",     "100", NULL};
	assert_int_equal(clt_parse(&cfg, all), CLI_RUN);
	assert_int_equal(cfg.seccomp, SANDBOX_LOG);
	assert_string_equal(cfg.chroot, "/srv/jail");
	assert_true(cfg.uid == 1000 && cfg.gid == 100);
	vm_config_free(&cfg);

	const char *off[] = {"--kernel", "k", "--seccomp=off", NULL};
	assert_int_equal(clt_parse(&cfg, off), CLI_RUN);
	assert_int_equal(cfg.seccomp, SANDBOX_OFF);
	vm_config_free(&cfg);

	struct {
		const char *args[6];
		const char *msg;
	} bad[] = {
	    {{"--kernel", "k", "--seccomp", "trap", NULL},
	     "vmm: --seccomp: invalid value 'trap' (expected kill, log or off)"},
	    {{"--kernel", "k", "--chroot", "jail", NULL},
	     "vmm: --chroot: invalid value 'jail' (expected an absolute directory)"},
	    {{"--kernel", "k", "--uid", "-1", "--gid", "0"}, "vmm: --uid: invalid value '-1'"},
	    {{"--kernel", "k", "--uid", "4294967295", "--gid", "0"},
	     "vmm: --uid: invalid value '4294967295'"},
	    {{"--kernel", "k", "--uid", "1000", NULL}, "vmm: --uid: needs --gid too"},
	    {{"--kernel", "k", "--gid", "1000", NULL}, "vmm: --gid: needs --uid too"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *args[8] = {0};
		memcpy(args, bad[i].args, sizeof(bad[i].args));
		assert_int_equal(clt_parse(&cfg, args), CLI_ERROR);
		if (!strstr(clt_err, bad[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, clt_err, bad[i].msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(forbidden_socket_every_kind),
	    cmocka_unit_test(forbidden_fork_every_kind),
	    cmocka_unit_test(sigsys_cannot_be_taken),
	    cmocka_unit_test(an_allowed_call_is_not_killed),
	    cmocka_unit_test(ioctl_numbers_are_filtered),
	    cmocka_unit_test(no_executable_memory),
	    cmocka_unit_test(files_only_on_the_main_thread),
	    cmocka_unit_test(signals_only_the_kick),
	    cmocka_unit_test(log_mode_lets_it_run),
	    cmocka_unit_test(off_mode_installs_nothing),
	    cmocka_unit_test(capabilities_dropped),
	    cmocka_unit_test(ids_taken),
	    cmocka_unit_test(fewer_calls_than_firecracker),
	    cmocka_unit_test(command_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
