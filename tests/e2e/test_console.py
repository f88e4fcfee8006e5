"""The console: where guest output goes (--console stdio|file:PATH|none),
clear errors for bad values, and a terminal on stdin that is put in raw
mode while the VMM runs and always given back as it was.
"""
import fcntl
import os
import select
import signal
import subprocess
import termios
import time

import pytest

import vmmrun
from vmmrun import run

HELLO = "Hello from the vmm test guest"
HELLO_ARGS = ["--cmdline", "guest.test=hello"]
# A guest that stays up (busy-waits a minute) after printing a start line.
LONG_ARGS = ["--cmdline", "guest.test=kvmclock guest.sleep_ms=60000"]
LONG_STARTED = "KVMCLOCK start"


def test_stdio_console_prints_guest_output(vmm_bin, guest):
    r = run(vmm_bin, ["--kernel", guest["elf"]] + HELLO_ARGS)
    assert r.status == vmmrun.EXIT_OK, r.stderr
    assert HELLO in r.stdout


def test_file_console_gets_output_not_stdout(vmm_bin, guest, tmp_path):
    out = tmp_path / "console.log"
    out.write_text("stale contents from an earlier run\n" * 10)
    r = run(vmm_bin, ["--kernel", guest["elf"], "--console", f"file:{out}"] + HELLO_ARGS)
    assert r.status == vmmrun.EXIT_OK, r.stderr
    text = out.read_text()
    assert HELLO in text
    assert "TEST hello PASS" in text
    assert "stale" not in text  # truncated, not appended to
    assert r.stdout == ""
    assert HELLO not in r.stderr


def test_file_console_unopenable(vmm_bin, guest, tmp_path):
    bad = tmp_path / "no" / "such" / "dir" / "console.log"
    r = run(vmm_bin, ["--kernel", guest["elf"], "--console", f"file:{bad}"] + HELLO_ARGS)
    assert r.status == vmmrun.EXIT_RESOURCE
    assert f"--console file:{bad}: cannot open: No such file or directory" in r.stderr
    assert r.stdout == ""


def test_none_console_prints_nothing(vmm_bin, guest):
    r = run(vmm_bin, ["--kernel", guest["elf"], "--console", "none"] + HELLO_ARGS)
    assert r.status == vmmrun.EXIT_OK, r.stderr
    assert r.stdout == ""
    assert r.stderr == ""


@pytest.mark.parametrize("value", ["bogus", "file:", "", "FILE:/tmp/x", "stdio:", "none "])
def test_bad_console_value_is_a_usage_error(vmm_bin, guest, value):
    r = run(vmm_bin, ["--kernel", guest["elf"], "--console", value] + HELLO_ARGS)
    assert r.status == vmmrun.EXIT_USAGE
    assert "--console" in r.stderr
    assert f"'{value}'" in r.stderr
    assert r.stdout == ""


def test_stdin_at_eof_does_not_disturb_the_guest(vmm_bin, guest):
    """stdin as an empty, closed pipe: EOF is seen once and reading stops."""
    r_fd, w_fd = os.pipe()
    os.close(w_fd)
    try:
        r = run(vmm_bin, ["--kernel", guest["elf"]] + HELLO_ARGS, stdin=r_fd)
    finally:
        os.close(r_fd)
    assert r.status == vmmrun.EXIT_OK, r.stderr
    assert HELLO in r.stdout


def test_unread_stdin_does_not_block_exit(vmm_bin, guest):
    """Input the guest never reads stays in the pipe; the VMM still exits."""
    r_fd, w_fd = os.pipe()
    os.write(w_fd, b"x" * 1000)
    try:
        r = run(vmm_bin, ["--kernel", guest["elf"]] + HELLO_ARGS, stdin=r_fd)
    finally:
        os.close(r_fd)
        os.close(w_fd)
    assert r.status == vmmrun.EXIT_OK, r.stderr
    assert HELLO in r.stdout


# ---- a terminal on stdin ----

def _make_ctty():
    # Runs in the child after setsid(): the pty on fd 0 becomes its
    # controlling terminal, with the VMM in the foreground, as in a shell.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyVmm:
    """The VMM with stdin, stdout and stderr on a pseudo-terminal."""

    def __init__(self, vmm, args):
        self.master, self.slave = os.openpty()
        self.before = termios.tcgetattr(self.slave)
        self.output = b""
        self.proc = subprocess.Popen(
            [str(vmm)] + [str(a) for a in args],
            stdin=self.slave, stdout=self.slave, stderr=self.slave,
            start_new_session=True, preexec_fn=_make_ctty, close_fds=True,
        )

    def attrs(self):
        return termios.tcgetattr(self.slave)

    def pump(self, timeout):
        """Read whatever the VMM printed within `timeout` seconds."""
        r, _, _ = select.select([self.master], [], [], timeout)
        if r:
            try:
                self.output += os.read(self.master, 65536)
            except OSError:
                pass

    def wait_for_output(self, text, timeout=30):
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.pump(0.1)
                return text.encode() in self.output
            self.pump(0.1)
        return True

    def wait(self, timeout=30):
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.pump(0.05)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"vmm did not exit; output:\n{self.text()}")
        self.pump(0.05)
        return self.proc.returncode

    def text(self):
        return self.output.decode("utf-8", "replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def pty_vmm(vmm_bin):
    made = []

    def start(args):
        p = PtyVmm(vmm_bin, args)
        made.append(p)
        return p

    yield start
    for p in made:
        p.close()


def _assert_raw(attrs, before):
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = attrs
    assert lflag & (termios.ICANON | termios.ECHO | termios.ISIG | termios.IEXTEN) == 0
    assert iflag & (termios.ICRNL | termios.IXON) == 0
    assert oflag == before[1], "output processing must be left alone"


def test_tty_restored_after_guest_exits(pty_vmm, guest):
    p = pty_vmm(["--kernel", guest["elf"]] + HELLO_ARGS)
    assert p.wait() == vmmrun.EXIT_OK, p.text()
    assert HELLO in p.text()
    assert p.attrs() == p.before


def test_tty_raw_while_running_and_restored_after_sigterm(pty_vmm, guest):
    p = pty_vmm(["--kernel", guest["elf"]] + LONG_ARGS)
    assert p.wait_for_output(LONG_STARTED), p.text()
    _assert_raw(p.attrs(), p.before)
    p.proc.send_signal(signal.SIGTERM)
    assert p.wait() == vmmrun.EXIT_SIGNAL, p.text()
    assert p.attrs() == p.before


def test_tty_restored_after_sighup(pty_vmm, guest):
    p = pty_vmm(["--kernel", guest["elf"]] + LONG_ARGS)
    assert p.wait_for_output(LONG_STARTED), p.text()
    p.proc.send_signal(signal.SIGHUP)
    assert p.wait() == vmmrun.EXIT_SIGNAL, p.text()
    assert p.attrs() == p.before


def test_ctrl_c_goes_to_the_guest_not_the_vmm(pty_vmm, guest):
    """In raw mode ^C is a byte for the guest: the VMM keeps running."""
    p = pty_vmm(["--kernel", guest["elf"]] + LONG_ARGS)
    assert p.wait_for_output(LONG_STARTED), p.text()
    os.write(p.master, b"\x03")
    p.pump(0.5)
    assert p.proc.poll() is None, p.text()
    p.proc.send_signal(signal.SIGTERM)
    assert p.wait() == vmmrun.EXIT_SIGNAL
    assert p.attrs() == p.before


def test_ctrl_a_x_stops_the_vmm(pty_vmm, guest):
    p = pty_vmm(["--kernel", guest["elf"]] + LONG_ARGS)
    assert p.wait_for_output(LONG_STARTED), p.text()
    os.write(p.master, b"\x01x")
    assert p.wait(timeout=10) == vmmrun.EXIT_SIGNAL, p.text()
    assert p.attrs() == p.before


def test_background_vmm_leaves_the_tty_alone(vmm_bin, guest, tmp_path):
    """Started as a background job of a terminal session: no raw mode (and
    no SIGTTOU stop), the guest still runs and its output still arrives."""
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    out = tmp_path / "out"
    # A job-control shell on the terminal runs the VMM as a background job
    # (own process group, not the terminal's foreground group).
    script = f'set -m; "$0" "$@" > "{out}" 2>&1 & wait $!'
    try:
        proc = subprocess.Popen(
            ["sh", "-c", script, str(vmm_bin), "--kernel", str(guest["elf"])] + HELLO_ARGS,
            stdin=slave, stdout=slave, stderr=slave,
            start_new_session=True, preexec_fn=_make_ctty,
        )
        try:
            status = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert status == vmmrun.EXIT_OK, out.read_text()
        assert HELLO in out.read_text()
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)
