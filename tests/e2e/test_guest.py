"""End-to-end tests: boot the test guest (tests/guest) in all three formats.

The guest prints "TEST <name> PASS" and resets through the i8042 (status 0),
or prints "TEST <name> FAIL: <why>" and writes 1 to the debug-exit port
(status 3). See tests/guest/README.md for the guest's options.
"""
import pathlib
import re
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import vmmrun  # noqa: E402

IMAGES = ["elf", "pvh", "bzimage"]
GIB = 1 << 30
MIB = 1 << 20
HOLE_START = 0xC0000000
GUEST_FAIL = vmmrun.debug_exit_status(1)       # a test failed
GUEST_EXCEPTION = vmmrun.debug_exit_status(2)  # CPU exception in the guest


def boot(vmm_bin, image, cmdline, *extra, timeout=60, debug_exit=True):
    args = ["--kernel", image]
    if cmdline is not None:
        args += ["--cmdline", cmdline]
    if debug_exit:
        args.append("--debug-exit")
    args += [str(a) for a in extra]
    return vmmrun.run(vmm_bin, args, timeout=timeout)


def explain(r):
    return f"status {r.status}\n--- stdout:\n{r.stdout}--- stderr:\n{r.stderr}"


def assert_pass(r, test):
    lines = r.stdout.splitlines()
    assert f"TEST {test} PASS" in lines, explain(r)
    assert r.status == vmmrun.EXIT_OK, explain(r)
    assert not any(l.startswith("EXCEPTION") for l in lines), explain(r)


def e820(r):
    """[(start, end, type)] from the guest's E820 lines (end exclusive)."""
    out = []
    for _, line in r.lines:
        m = re.fullmatch(r"E820 (0x[0-9a-f]+) (0x[0-9a-f]+) (\d+)", line)
        if m:
            out.append((int(m[1], 16), int(m[2], 16), int(m[3])))
    return out


# ---- boot formats ----------------------------------------------------------

@pytest.mark.parametrize("fmt", IMAGES)
def test_hello(vmm_bin, guest, fmt):
    r = boot(vmm_bin, guest[fmt], "guest.test=hello")
    assert_pass(r, "hello")
    assert "Hello from the vmm test guest" in r.stdout.splitlines(), explain(r)
    banner = r.line_starting("GUEST ")
    assert banner, explain(r)
    assert f"boot={'pvh' if fmt == 'pvh' else 'linux64'} " in banner, banner
    assert " cpl=3 " in banner, banner


def test_default_cmdline_runs_hello(vmm_bin, guest):
    # No --cmdline: the VMM's default command line has no guest.test.
    r = boot(vmm_bin, guest["elf"], None)
    assert_pass(r, "hello")


# ---- command line ----------------------------------------------------------

CMDLINES = [
    "guest.test=cmdline",
    'guest.test=cmdline  two  spaces foo="bar baz" q=\'single quoted\' tab\tend',
    "guest.test=cmdline x=" + "a" * 3000,
]


@pytest.mark.parametrize("fmt", IMAGES)
@pytest.mark.parametrize("cmdline", CMDLINES, ids=["plain", "quotes", "long"])
def test_cmdline_exact(vmm_bin, guest, fmt, cmdline):
    r = boot(vmm_bin, guest[fmt], cmdline)
    assert_pass(r, "cmdline")
    line = r.line_starting("CMDLINE ")
    assert line is not None, explain(r)
    assert line == "CMDLINE " + cmdline, explain(r)


# ---- memory map ------------------------------------------------------------

@pytest.mark.parametrize("fmt", IMAGES)
@pytest.mark.parametrize("mem", [128, 4096])
def test_e820(vmm_bin, guest, fmt, mem):
    r = boot(vmm_bin, guest[fmt], f"guest.test=e820 guest.expect_mem_mib={mem}",
             "--mem", mem)
    assert_pass(r, "e820")
    entries = e820(r)
    assert entries, explain(r)
    ram = [(s, e) for s, e, t in entries if t == 1]
    total = sum(e - s for s, e in ram)
    assert mem * MIB - MIB <= total <= mem * MIB, explain(r)
    assert r.line_starting("E820 total_mib=") == f"E820 total_mib={total >> 20}"
    # Sorted, disjoint; RAM at 0 and at 1 MiB; nothing usable in the hole.
    for (s0, e0, _), (s1, _, _) in zip(entries, entries[1:]):
        assert e0 <= s1, explain(r)
    assert any(s <= 0 < e for s, e in ram), explain(r)
    assert any(s <= MIB < e for s, e in ram), explain(r)
    assert not any(s < 4 * GIB and e > HOLE_START for s, e in ram), explain(r)
    high = sum(e - s for s, e in ram if s >= 4 * GIB)
    if mem * MIB > HOLE_START:
        # RAM that does not fit below the hole continues at 4 GiB.
        assert high == mem * MIB - HOLE_START, explain(r)
    else:
        assert high == 0, explain(r)


def test_e820_expectation_is_checked(vmm_bin, guest):
    r = boot(vmm_bin, guest["elf"], "guest.test=e820 guest.expect_mem_mib=512", "--mem", 256)
    assert r.status == GUEST_FAIL, explain(r)
    assert (r.line_starting("TEST e820 FAIL:") or "").startswith("TEST e820 FAIL: RAM is"), explain(r)


# ---- SMP -------------------------------------------------------------------

@pytest.mark.parametrize("fmt", IMAGES)
@pytest.mark.parametrize("cpus", [1, 2, 4])
def test_smp(vmm_bin, guest, fmt, cpus):
    r = boot(vmm_bin, guest[fmt], "guest.test=smp", "--cpus", cpus)
    assert_pass(r, "smp")
    assert r.line_starting("SMP cpus=") == f"SMP cpus={cpus} online={cpus}", explain(r)


# ---- kvmclock --------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["elf", "pvh"])
def test_kvmclock(vmm_bin, guest, fmt):
    sleep_ms = 500
    r = boot(vmm_bin, guest[fmt], f"guest.test=kvmclock guest.sleep_ms={sleep_ms}")
    assert_pass(r, "kvmclock")
    times = {}
    for t, line in r.lines:
        if line.startswith("KVMCLOCK start ") or line.startswith("KVMCLOCK end "):
            times[line.split()[1]] = (t, line)
    assert set(times) == {"start", "end"}, explain(r)
    host_ms = (times["end"][0] - times["start"][0]) * 1000
    assert 0.6 * sleep_ms <= host_ms <= 1.4 * sleep_ms, f"host saw {host_ms:.0f} ms\n" + explain(r)
    m = re.search(r"elapsed_ms=(\d+)", times["end"][1])
    assert m and int(m[1]) >= sleep_ms, explain(r)


# ---- RAM -------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["elf", "pvh"])
def test_memtest(vmm_bin, guest, fmt):
    r = boot(vmm_bin, guest[fmt], "guest.test=memtest", "--mem", 256, timeout=180)
    assert_pass(r, "memtest")
    m = re.match(r"MEMTEST tested_mib=(\d+)", r.line_starting("MEMTEST") or "")
    assert m, explain(r)
    # All of RAM but the guest image (< 1 MiB) and the bit below 1 MiB.
    assert int(m[1]) >= 250, explain(r)


# ---- exit status plumbing --------------------------------------------------

def test_exit_code(vmm_bin, guest):
    r = boot(vmm_bin, guest["elf"], "guest.exit_code=5")
    assert r.status == vmmrun.debug_exit_status(5) == 11, explain(r)
    assert r.line_starting("EXIT_CODE 5"), explain(r)
    assert "TEST" not in r.stdout, explain(r)


def test_exit_debug_zero(vmm_bin, guest):
    r = boot(vmm_bin, guest["elf"], "guest.test=hello guest.exit=debug")
    assert "TEST hello PASS" in r.stdout.splitlines(), explain(r)
    assert r.status == vmmrun.debug_exit_status(0) == 1, explain(r)


def test_exit_debug_without_device_falls_back_to_reset(vmm_bin, guest):
    r = boot(vmm_bin, guest["elf"], "guest.test=hello guest.exit=debug", debug_exit=False)
    assert_pass(r, "hello")


@pytest.mark.parametrize("fmt", IMAGES)
def test_unknown_test_fails(vmm_bin, guest, fmt):
    r = boot(vmm_bin, guest[fmt], "guest.test=no_such_test")
    assert r.status == GUEST_FAIL, explain(r)
    assert "TEST no_such_test FAIL: unknown test" in r.stdout.splitlines(), explain(r)


def test_guest_exception_is_reported(vmm_bin, guest):
    r = boot(vmm_bin, guest["elf"], "guest.test=fault")
    assert r.status == GUEST_EXCEPTION, explain(r)
    assert (r.line_starting("EXCEPTION ") or "").startswith("EXCEPTION 6 rip="), explain(r)
    assert r.line_starting("TEST fault FAIL: exception 6"), explain(r)
