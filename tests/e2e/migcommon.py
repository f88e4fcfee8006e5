"""What the snapshot and migration tests share: the test guest's output
lines they read (counter, migtest), and waiting on them."""
import re
import time

COUNTER = re.compile(r"COUNTER (\d+) ns=(\d+)")
MIGTEST = re.compile(r"MIGTEST pass=(\d+) dirtied_mib=(\d+) disk_pass=(\d+) ns=(\d+)")


def full(v, pattern):
    """Every stdout line that is wholly a match (a line cut by a snapshot
    or a switch-over is not)."""
    return [pattern.fullmatch(line) for _, line in list(v.lines) if pattern.fullmatch(line)]


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r = cond()
        if r:
            return r
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def no_failure(v):
    bad = [line for _, line in v.lines if "FAIL" in line or "EXCEPTION" in line]
    assert not bad, f"the guest failed: {bad}\nstderr: {v.stderr}"
