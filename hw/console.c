/*
 * The console backend: where COM1's output goes and where its input comes
 * from.
 *
 * With --console stdio and a terminal on stdin, the terminal is switched to
 * raw mode (so every key, Ctrl-C included, goes to the guest) and put back
 * on every way out of the process we can see: console_close(), exit()
 * (atexit), termination signals that would otherwise kill us silently, and
 * fatal signals (crash handlers restore it, then let the signal proceed).
 * Output post-processing (OPOST) is left as it was, so "\n" from the guest
 * still renders sanely.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "../log.h"
#include "devices.h"

struct console {
	enum console_kind kind;
	int out_fd;	   /* -1: output discarded */
	int in_fd;	   /* -1: no input */
	bool close_out;	   /* out_fd is ours (file) */
	bool in_tty;	   /* in_fd is a terminal we put in raw mode */
	bool escapes_only; /* console_open_fds(): in_tty without a terminal */
};

/*
 * The terminal to restore. Only one console at a time owns it. raw_fd is
 * read from signal handlers, so it is a sig_atomic_t and saved_tio is
 * written before raw_fd is set.
 */
static struct termios saved_tio;
static volatile sig_atomic_t raw_fd = -1;
static bool hooks_installed;

/* Crash signals: restore, then let the previous action (default, or a
 * sanitizer's handler) take the signal. */
static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
/* Termination signals: hooked only while their action is the default, so
 * whoever handles them on purpose (the VMM's signalfd) is not disturbed. */
static const int term_signals[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE};

#define NHOOKED                                                                                    \
	(sizeof(fatal_signals) / sizeof(fatal_signals[0]) +                                        \
	 sizeof(term_signals) / sizeof(term_signals[0]))
static int hooked_sig[NHOOKED];
static struct sigaction hooked_old[NHOOKED];
static unsigned nhooked;

/* Async-signal-safe: tcsetattr is on POSIX's list. */
static void tty_restore(void)
{
	int fd = raw_fd;
	if (fd >= 0) {
		int saved_errno = errno;
		tcsetattr(fd, TCSANOW, &saved_tio);
		errno = saved_errno;
	}
}

static void tty_restore_atexit(void)
{
	tty_restore();
	raw_fd = -1;
}

static void on_deadly_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	int saved_errno = errno;
	tty_restore();
	/* Give the signal back to whoever had it before us. */
	for (unsigned i = 0; i < nhooked; i++) {
		if (hooked_sig[i] == sig) {
			sigaction(sig, &hooked_old[i], NULL);
			break;
		}
	}
	/*
	 * A fault raised by the CPU (si_code > 0) happens again when we return
	 * and reaches the previous action with its real siginfo. Anything sent
	 * (kill, raise, abort) is re-raised; it is blocked in this handler, so
	 * it is delivered as soon as we return.
	 */
	if (si == NULL || si->si_code <= 0 || sig == SIGABRT || sig == SIGPIPE || sig == SIGHUP ||
	    sig == SIGINT || sig == SIGQUIT || sig == SIGTERM)
		raise(sig);
	errno = saved_errno;
}

/* Put on_deadly_signal() in front of sig's current action (once; again if
 * someone replaced it since). */
static void hook(int sig, bool only_if_default)
{
	struct sigaction old;
	if (sigaction(sig, NULL, &old) < 0)
		return;
	if ((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == on_deadly_signal)
		return; /* already ours */
	if (only_if_default && ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL))
		return;
	unsigned slot = 0;
	while (slot < nhooked && hooked_sig[slot] != sig)
		slot++;
	if (slot == NHOOKED)
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_deadly_signal;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	/* Record the previous action before the handler can run. */
	hooked_sig[slot] = sig;
	hooked_old[slot] = old;
	if (slot == nhooked)
		nhooked++;
	sigaction(sig, &sa, NULL);
}

/* Called each time a terminal goes raw. */
static void install_hooks(void)
{
	if (!hooks_installed) {
		hooks_installed = true;
		atexit(tty_restore_atexit);
	}
	for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
		hook(fatal_signals[i], false);
	for (size_t i = 0; i < sizeof(term_signals) / sizeof(term_signals[0]); i++)
		hook(term_signals[i], true);
}

/* Like cfmakeraw(), but output processing is left alone. */
static void make_raw(struct termios *t)
{
	t->c_iflag &=
	    ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXOFF);
	t->c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t->c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
	t->c_cflag |= CS8;
	t->c_cc[VMIN] = 1;
	t->c_cc[VTIME] = 0;
}

/* stdin is usable as input: open for reading, and if it is our controlling
 * terminal, we are in its foreground (a background read would stop us). */
static bool stdin_usable(bool *is_tty)
{
	*is_tty = false;
	int fl = fcntl(STDIN_FILENO, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) == O_WRONLY)
		return false;
	if (!isatty(STDIN_FILENO))
		return true;
	pid_t fg = tcgetpgrp(STDIN_FILENO);
	if (fg >= 0 && fg != getpgrp())
		return false; /* started in the background: leave the terminal be */
	*is_tty = true;
	return true;
}

static bool tty_make_raw(int fd)
{
	if (raw_fd >= 0)
		return false; /* another console owns the terminal */
	struct termios t;
	if (tcgetattr(fd, &t) < 0)
		return false;
	install_hooks();
	saved_tio = t;
	raw_fd = fd; /* from here on, every exit path restores saved_tio */
	make_raw(&t);
	if (tcsetattr(fd, TCSANOW, &t) < 0) {
		raw_fd = -1;
		return false;
	}
	return true;
}

struct console *console_open(const struct vm_config *cfg)
{
	struct console *c = calloc(1, sizeof(*c));
	if (!c) {
		vmm_err("console: out of memory");
		return NULL;
	}
	c->kind = cfg->console;
	c->out_fd = -1;
	c->in_fd = -1;
	switch (cfg->console) {
	case CONSOLE_STDIO: {
		c->out_fd = STDOUT_FILENO;
		bool tty;
		if (stdin_usable(&tty)) {
			c->in_fd = STDIN_FILENO;
			if (tty)
				c->in_tty = tty_make_raw(STDIN_FILENO);
		}
		break;
	}
	case CONSOLE_FILE: {
		const char *path = cfg->console_path ? cfg->console_path : "";
		int fd = *path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
		if (fd < 0) {
			vmm_err("--console file:%s: cannot open: %s", path,
				strerror(*path ? errno : ENOENT));
			free(c);
			return NULL;
		}
		c->out_fd = fd;
		c->close_out = true;
		break;
	}
	case CONSOLE_NONE:
		break;
	default:
		vmm_err("--console: unknown kind %d", (int)cfg->console);
		free(c);
		return NULL;
	}
	return c;
}

struct console *console_open_fds(int out_fd, int in_fd, bool escapes)
{
	struct console *c = calloc(1, sizeof(*c));
	if (!c) {
		vmm_err("console: out of memory");
		return NULL;
	}
	c->kind = CONSOLE_STDIO;
	c->out_fd = out_fd;
	c->in_fd = in_fd;
	c->in_tty = escapes && in_fd >= 0;
	c->escapes_only = c->in_tty;
	return c;
}

int console_out_fd(const struct console *c)
{
	return c ? c->out_fd : -1;
}

int console_in_fd(const struct console *c)
{
	return c ? c->in_fd : -1;
}

bool console_in_is_tty(const struct console *c)
{
	return c && c->in_tty;
}

void console_close(struct console *c)
{
	if (!c)
		return;
	if (c->in_tty && !c->escapes_only && raw_fd == c->in_fd) {
		tty_restore();
		raw_fd = -1;
	}
	if (c->close_out && c->out_fd >= 0)
		close(c->out_fd);
	free(c);
}
