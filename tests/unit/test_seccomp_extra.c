/*
 * SANDBOX_EXTRA(): rules from outside seccomp/ join a kind's filter, as a
 * compile-time module's would. The rules here (this test binary's only)
 * give the API kind what a worker-starting, socket-using module needs, in
 * the filtered forms: one socket family, clone with pthread's flags only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <linux/netlink.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "seccomp/sandbox.h"

static const struct sandbox_rule extra_rules[] = {
    SB_SOCKET(AF_UNIX),
    SB_CLONE_THREAD,
    SB_CLONE3_FALLBACK,
    /* What a new thread does before its function runs. */
    SB_ALLOW(set_robust_list),
    SB_ALLOW(rseq),
};
static SANDBOX_RULES(extra_api, SANDBOX_API, "test", extra_rules);
SANDBOX_EXTRA(extra_api);

static void *worker(void *arg)
{
	return arg;
}

/* In a child: the API sandbox, then act(); the child's status, and what
 * it wrote to stderr (the report) in err. */
static char err[512];

static int run_sandboxed(int (*act)(void))
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDERR_FILENO);
		/* Like the VMM, which has started threads before any filter:
		 * glibc's first pthread_create sets up signal handling. */
		pthread_t t;
		if (pthread_create(&t, NULL, worker, NULL) || pthread_join(t, NULL))
			_exit(101);
		struct vm_config cfg;
		vm_config_init(&cfg);
		struct sandbox sb;
		if (sandbox_init(&sb, &cfg) || sandbox_enter(&sb, SANDBOX_API))
			_exit(100);
		_exit(act());
	}
	close(p[1]);
	ssize_t n, len = 0;
	while ((n = read(p[0], err + len, sizeof(err) - 1 - (size_t)len)) > 0)
		len += n;
	err[len] = 0;
	close(p[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static bool exited_with(int status, int code)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == code;
}

static int act_unix_socket(void)
{
	return socket(AF_UNIX, SOCK_STREAM, 0) >= 0 ? 0 : 1;
}

static int act_netlink_socket(void)
{
	return socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE) >= 0 ? 0 : 1;
}

static int act_thread(void)
{
	pthread_t t;
	void *ret = NULL;
	if (pthread_create(&t, NULL, worker, (void *)7) != 0)
		return 1;
	if (pthread_join(t, &ret) != 0)
		return 2;
	return ret == (void *)7 ? 0 : 3;
}

static int act_fork(void)
{
	pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
	if (pid == 0)
		_exit(0);
	return pid > 0 ? 0 : 1;
}

static void extras_join_the_filter(void **state)
{
	(void)state;
	assert_true(sandbox_count(SANDBOX_API, true) > sandbox_count(SANDBOX_API, false));
	assert_true(sandbox_count(SANDBOX_VCPU, true) >= sandbox_count(SANDBOX_VCPU, false));
}

static void one_socket_family(void **state)
{
	(void)state;
	assert_true(exited_with(run_sandboxed(act_unix_socket), 0));
	assert_true(exited_with(run_sandboxed(act_netlink_socket), VMM_EXIT_SECCOMP));
}

static void threads_but_no_processes(void **state)
{
	(void)state;
	int st = run_sandboxed(act_thread);
	if (!exited_with(st, 0))
		fail_msg("pthread_create under the filter: status 0x%x: %s", st, err);
	assert_true(exited_with(run_sandboxed(act_fork), VMM_EXIT_SECCOMP));
}

static void other_kinds_unchanged(void **state)
{
	(void)state;
	const struct sandbox_rules *t[16];
	size_t n = sandbox_tables(SANDBOX_MAIN, true, t, 16);
	for (size_t i = 0; i < n; i++)
		assert_true(strcmp(t[i]->what, "test") != 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(extras_join_the_filter),
	    cmocka_unit_test(one_socket_family),
	    cmocka_unit_test(threads_but_no_processes),
	    cmocka_unit_test(other_kinds_unchanged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
