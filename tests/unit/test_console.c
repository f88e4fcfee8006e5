/*
 * hw/console.c: file and none consoles, stdin selection, and the terminal
 * being put in raw mode and restored on every exit path (console_close,
 * exit(), a crash, a termination signal). Terminals are pseudo-terminals
 * made here; the real stdin is saved and put back around each test.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <cmocka.h>

#include "devtest.h"

static char tmpdir[64];

static int setup_tmpdir(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/vmm-test-console-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, cap - 1);
	assert_true(n >= 0);
	buf[n] = 0;
	close(fd);
	return (size_t)n;
}

static void guest_prints(struct console *con, const char *msg)
{
	struct vm *vm = devtest_vm_new();
	struct serial *s = serial_create(vm, con);
	assert_non_null(s);
	for (const char *p = msg; *p; p++)
		devtest_out8(vm, COM1_PORT, (uint8_t)*p);
	serial_destroy(s);
	devtest_vm_free(vm);
}

static void file_console(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof(path), "%s/out.txt", tmpdir);
	/* An existing file is truncated. */
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_int_equal(write(fd, "old contents that are long", 26), 26);
	close(fd);

	mode_t old_umask = umask(022);
	struct vm_config cfg = {.console = CONSOLE_FILE, .console_path = path};
	struct console *con = console_open(&cfg);
	assert_non_null(con);
	assert_true(console_out_fd(con) > 2);
	assert_int_equal(console_in_fd(con), -1);
	assert_false(console_in_is_tty(con));
	guest_prints(con, "guest output\n");
	console_close(con);
	char buf[128];
	read_file(path, buf, sizeof(buf));
	assert_string_equal(buf, "guest output\n");

	/* A new file gets 0644 (under umask 022). */
	snprintf(path, sizeof(path), "%s/new.txt", tmpdir);
	con = console_open(&cfg);
	assert_non_null(con);
	console_close(con);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	umask(old_umask);
}

static void file_console_error(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof(path), "%s/no/such/dir/out.txt", tmpdir);
	struct vm_config cfg = {.console = CONSOLE_FILE, .console_path = path};
	/* Capture stderr to check the message. */
	int errpipe[2];
	assert_int_equal(pipe2(errpipe, O_CLOEXEC | O_NONBLOCK), 0);
	fflush(stderr);
	int saved = dup(2);
	dup2(errpipe[1], 2);
	struct console *con = console_open(&cfg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	assert_null(con);
	char msg[512] = {0};
	assert_true(read(errpipe[0], msg, sizeof(msg) - 1) > 0);
	close(errpipe[0]);
	close(errpipe[1]);
	char want[512];
	snprintf(want, sizeof(want), "vmm: --console file:%s: cannot open: %s\n", path,
		 strerror(ENOENT));
	assert_string_equal(msg, want);
}

static void none_console(void **state)
{
	(void)state;
	struct vm_config cfg = {.console = CONSOLE_NONE};
	struct console *con = console_open(&cfg);
	assert_non_null(con);
	assert_int_equal(console_out_fd(con), -1);
	assert_int_equal(console_in_fd(con), -1);
	assert_false(console_in_is_tty(con));
	guest_prints(con, "into the void\n"); /* discarded, no crash */
	console_close(con);
}

/* Replace fd 0 with `fd` (or close it if fd < 0); returns the saved
 * stdin for restore_stdin(). The console refers to fd 0 by number, so the
 * replacement must stay until console_close(). */
static int replace_stdin(int fd)
{
	int saved = dup(0);
	if (fd >= 0)
		dup2(fd, 0);
	else
		close(0);
	return saved;
}

static void restore_stdin(int saved)
{
	dup2(saved, 0);
	close(saved);
}

static struct console *open_stdio(void)
{
	struct vm_config cfg = {.console = CONSOLE_STDIO};
	return console_open(&cfg);
}

static void stdio_stdin_choice(void **state)
{
	(void)state;
	/* /dev/null: readable, so it is the input (it just gives EOF). */
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int saved = replace_stdin(null);
	struct console *con = open_stdio();
	assert_non_null(con);
	assert_int_equal(console_out_fd(con), 1);
	assert_int_equal(console_in_fd(con), 0);
	assert_false(console_in_is_tty(con));
	console_close(con);
	restore_stdin(saved);
	close(null);
	/* Write-only stdin: no input. */
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	saved = replace_stdin(null);
	con = open_stdio();
	assert_int_equal(console_in_fd(con), -1);
	console_close(con);
	restore_stdin(saved);
	close(null);
	/* Closed stdin: no input. */
	saved = replace_stdin(-1);
	con = open_stdio();
	assert_non_null(con);
	assert_int_equal(console_in_fd(con), -1);
	console_close(con);
	restore_stdin(saved);
}

static int open_pty(int *master, int *slave)
{
	*master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (*master < 0 || grantpt(*master) < 0 || unlockpt(*master) < 0)
		return -1;
	*slave = open(ptsname(*master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	return *slave < 0 ? -1 : 0;
}

static void assert_same_termios(const struct termios *a, const struct termios *b)
{
	assert_int_equal(a->c_iflag, b->c_iflag);
	assert_int_equal(a->c_oflag, b->c_oflag);
	assert_int_equal(a->c_cflag, b->c_cflag);
	assert_int_equal(a->c_lflag, b->c_lflag);
	assert_memory_equal(a->c_cc, b->c_cc, sizeof(a->c_cc));
}

static void assert_raw(int fd, const struct termios *orig)
{
	struct termios t;
	assert_int_equal(tcgetattr(fd, &t), 0);
	assert_int_equal(t.c_lflag & (ICANON | ECHO | ISIG | IEXTEN), 0);
	assert_int_equal(t.c_iflag & (ICRNL | IXON), 0);
	assert_int_equal(t.c_oflag, orig->c_oflag); /* output processing untouched */
	assert_int_equal(t.c_cc[VMIN], 1);
}

static void tty_raw_and_restored_on_close(void **state)
{
	(void)state;
	int master, slave;
	assert_int_equal(open_pty(&master, &slave), 0);
	struct termios before, after;
	assert_int_equal(tcgetattr(slave, &before), 0);
	assert_true(before.c_lflag & ICANON);
	int saved = replace_stdin(slave);
	struct console *con = open_stdio();
	assert_non_null(con);
	assert_int_equal(console_in_fd(con), 0);
	assert_true(console_in_is_tty(con));
	assert_raw(slave, &before);
	/* Only one console owns the terminal; a second leaves it alone. */
	struct console *other = open_stdio();
	assert_false(console_in_is_tty(other));
	console_close(other);
	assert_raw(slave, &before);
	console_close(con);
	restore_stdin(saved);
	assert_int_equal(tcgetattr(slave, &after), 0);
	assert_same_termios(&before, &after);
	close(slave);
	close(master);
}

enum child_exit { BY_EXIT, BY_SEGV, BY_ABORT, BY_SIGTERM };

/* A child takes the terminal raw and then dies in the given way; the
 * terminal must be back as it was. */
static void die_and_check(enum child_exit how)
{
	int master, slave;
	assert_int_equal(open_pty(&master, &slave), 0);
	struct termios before, after;
	assert_int_equal(tcgetattr(slave, &before), 0);
	int sync[2], go[2];
	assert_int_equal(pipe(sync), 0);
	assert_int_equal(pipe(go), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The test framework catches crashes in the parent; the child
		 * must die of them as a plain process would. */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGABRT, SIG_DFL);
		dup2(slave, 0);
		struct vm_config cfg = {.console = CONSOLE_STDIO};
		static struct console *con; /* static: still reachable at exit() */
		con = console_open(&cfg);
		char c = console_in_is_tty(con) ? 'r' : 'n';
		if (write(sync[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(99);
		switch (how) {
		case BY_EXIT:
			exit(0); /* no console_close: atexit restores */
		case BY_SEGV:
			raise(SIGSEGV);
			break;
		case BY_ABORT:
			abort();
		case BY_SIGTERM:
			raise(SIGTERM);
			break;
		}
		_exit(98);
	}
	char c = 0;
	assert_int_equal(read(sync[0], &c, 1), 1);
	assert_int_equal(c, 'r');
	assert_raw(slave, &before);
	assert_int_equal(write(go[1], "g", 1), 1);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	switch (how) {
	case BY_EXIT:
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		break;
	case BY_SIGTERM:
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
		break;
	default:
		/* Killed by the signal, or a sanitizer's report and exit. */
		assert_false(WIFEXITED(status) &&
			     (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) >= 98));
		break;
	}
	assert_int_equal(tcgetattr(slave, &after), 0);
	assert_same_termios(&before, &after);
	close(sync[0]);
	close(sync[1]);
	close(go[0]);
	close(go[1]);
	close(slave);
	close(master);
}

static void tty_restored_by_exit(void **state)
{
	(void)state;
	die_and_check(BY_EXIT);
}

static void tty_restored_after_crash(void **state)
{
	(void)state;
	die_and_check(BY_SEGV);
	die_and_check(BY_ABORT);
}

static void tty_restored_after_sigterm(void **state)
{
	(void)state;
	die_and_check(BY_SIGTERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(file_console),
	    cmocka_unit_test(file_console_error),
	    cmocka_unit_test(none_console),
	    cmocka_unit_test(stdio_stdin_choice),
	    cmocka_unit_test(tty_raw_and_restored_on_close),
	    cmocka_unit_test(tty_restored_by_exit),
	    cmocka_unit_test(tty_restored_after_crash),
	    cmocka_unit_test(tty_restored_after_sigterm),
	};
	return cmocka_run_group_tests(tests, setup_tmpdir, remove_tmpdir);
}
