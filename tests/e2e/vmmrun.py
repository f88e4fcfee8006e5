"""Run the VMM the way a user would and collect what it printed.

Every run has a hard timeout: a hung guest fails its test instead of
hanging the suite.
"""
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field

# Exit statuses, mirrored from vmm.h (enum vmm_exit).
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NO_KVM = 4
EXIT_KVM_PERM = 6
EXIT_KVM_CAP = 8
EXIT_BOOT_IMAGE = 10
EXIT_RESOURCE = 12
EXIT_GUEST_CRASH = 14
EXIT_SIGNAL = 16
EXIT_INTERNAL = 18
EXIT_DISK = 20
EXIT_SECCOMP = 22


def debug_exit_status(value):
    """The status a guest's debug-exit write of `value` produces."""
    return ((value << 1) | 1) & 0xFF


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str
    wall: float
    # (monotonic seconds since start, line) for each stdout line, so tests
    # can compare guest-reported time with host time.
    lines: list = field(default_factory=list)

    def line_starting(self, prefix):
        for _, line in self.lines:
            if line.startswith(prefix):
                return line
        return None


def run(vmm, args, timeout=60, stdin=subprocess.DEVNULL, env=None):
    """Run `vmm args...`; stdout is read line by line with timestamps."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [str(vmm)] + [str(a) for a in args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env if env is not None else os.environ.copy(),
    )
    lines = []
    err_chunks = []

    def read_stdout():
        for raw in iter(proc.stdout.readline, b""):
            text = raw.decode("utf-8", "replace")
            lines.append((time.monotonic() - start, text.rstrip("\r\n")))

    def read_stderr():
        err_chunks.append(proc.stderr.read().decode("utf-8", "replace"))

    readers = [threading.Thread(target=read_stdout), threading.Thread(target=read_stderr)]
    for t in readers:
        t.start()
    try:
        status = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        for t in readers:
            t.join()
        raise AssertionError(
            f"vmm did not exit within {timeout}s; output so far:\n"
            + "\n".join(l for _, l in lines) + "\nstderr:\n" + "".join(err_chunks)
        )
    for t in readers:
        t.join()
    stdout = "".join(l + "\n" for _, l in lines)
    return Result(status, stdout, "".join(err_chunks), time.monotonic() - start, lines)
