"""Snapshots end to end (module migration): create from a paused guest,
restore with --restore or PUT /snapshot/load (File and Uffd backends),
the test guest's counter and memory checksums carrying on, a Diff
snapshot over its Full base, and every kind of bad file refused with a
clear message and nothing changed. Against a build without the module,
the flag and the endpoints are refused as "not built in".
"""
import os
import pathlib
import struct
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import vmmrun  # noqa: E402
from apiclient import Vmm, short_dir  # noqa: E402
from migcommon import COUNTER, MIGTEST, full, no_failure, wait_for  # noqa: E402

HEADER_SIZE = 80


def passes(v):
    m = full(v, MIGTEST)
    return int(m[-1].group(1)) if m else -1


def boot(api, guest, test, mem=128, cpus=1, track=False, extra_cmdline=""):
    """A guest started through the API (so machine-config can ask for
    dirty page tracking)."""
    v = api("--console", "stdio")
    assert v.put("/boot-source", {"kernel_image_path": str(guest["elf"]),
                                  "boot_args": f"guest.test={test} {extra_cmdline}"}).status == 204
    assert v.put("/machine-config", {"vcpu_count": cpus, "mem_size_mib": mem,
                                     "track_dirty_pages": track}).status == 204
    r = v.put("/actions", {"action_type": "InstanceStart"})
    assert r.status == 204, r.body
    return v


def pause(v):
    r = v.patch("/vm", {"state": "Paused"})
    assert r.status == 204, r.body


def create(v, d, name, kind="Full"):
    state, mem = os.path.join(d, name + ".state"), os.path.join(d, name + ".mem")
    r = v.put("/snapshot/create", {"snapshot_path": state, "mem_file_path": mem,
                                   "snapshot_type": kind})
    assert r.status == 204, r.body
    return state, mem


def load(v, state, mem, resume=True, backend="File"):
    return v.put("/snapshot/load", {"snapshot_path": state, "resume_vm": resume,
                                    "mem_backend": {"backend_type": backend,
                                                    "backend_path": mem}})


def migtest_snapshot(api, guest, tmp, **kw):
    """A migtest guest dirtying memory, paused and snapshotted; returns
    the snapshot files and the guest's pass count at the snapshot."""
    v = boot(api, guest, "migtest",
             extra_cmdline="guest.mig_mib=16 guest.dirty_mib_s=20", **kw)
    wait_for(lambda: passes(v) >= 2, 30, "migtest verifying")
    pause(v)
    at = passes(v)
    files = create(v, tmp, "full")
    assert v.stop() == vmmrun.EXIT_SIGNAL
    no_failure(v)
    return files, at


# ---- Full snapshots ----

def test_restore_counter_carries_on(api, guest, tmp_path, needs_migration):
    src = api("--kernel", guest["elf"], "--cmdline", "guest.test=counter", "--cpus", 2)
    wait_for(lambda: len(full(src, COUNTER)) >= 5, 10, "COUNTER lines")
    pause(src)
    time.sleep(0.1)
    last = full(src, COUNTER)[-1]
    state, mem = create(src, tmp_path, "snap")
    assert src.stop() == vmmrun.EXIT_SIGNAL
    assert os.path.getsize(mem) == 128 << 20

    dst = api("--restore", f"{state},{mem}")
    wait_for(lambda: len(full(dst, COUNTER)) >= 5, 10, "COUNTER lines after the restore")
    got = full(dst, COUNTER)
    first, n0 = int(got[0].group(1)), int(last.group(1))
    # The guest goes on from where it was (the line it was printing may
    # have been cut in two by the snapshot).
    assert first in (n0 + 1, n0 + 2), (n0, [m.group(0) for m in got[:3]])
    numbers = [int(m.group(1)) for m in got]
    assert numbers == list(range(first, first + len(numbers)))
    # Its clock too: no jump back to boot time.
    assert int(got[0].group(2)) >= int(last.group(2))
    assert dst.state() == "Running"
    assert dst.stop() == vmmrun.EXIT_SIGNAL


def test_load_migtest_memory_intact(api, guest, tmp_path, needs_migration):
    (state, mem), at = migtest_snapshot(api, guest, tmp_path, cpus=2)
    dst = api()
    r = load(dst, state, mem)
    assert r.status == 204, r.body
    assert dst.state() == "Running"
    wait_for(lambda: passes(dst) >= at + 3, 30, "migtest passes after the restore")
    no_failure(dst)
    # The configuration is the snapshot's.
    cfg = dst.get("/vm/config").json
    assert cfg["machine-config"]["vcpu_count"] == 2
    assert cfg["machine-config"]["mem_size_mib"] == 128
    assert dst.stop() == vmmrun.EXIT_SIGNAL


def test_load_paused_until_resumed(api, guest, tmp_path, needs_migration):
    (state, mem), at = migtest_snapshot(api, guest, tmp_path)
    dst = api()
    assert load(dst, state, mem, resume=False).status == 204
    assert dst.state() == "Paused"
    time.sleep(0.3)
    assert passes(dst) == -1, "a guest loaded paused must not run"
    assert dst.patch("/vm", {"state": "Resumed"}).status == 204
    wait_for(lambda: passes(dst) >= at + 2, 30, "migtest passes after resuming")
    no_failure(dst)


def test_uffd_backend(api, vmm_bin, guest, tmp_path, needs_migration):
    (state, mem), at = migtest_snapshot(api, guest, tmp_path)
    sock = os.path.join(short_dir(), "uffd.sock")
    handler = subprocess.Popen([str(vmm_bin), "uffd-handler", "--socket", sock,
                                "--mem-file", mem], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: os.path.exists(sock), 10, "the handler's socket")
        dst = api()
        r = load(dst, state, sock, backend="Uffd")
        assert r.status == 204, r.body
        wait_for(lambda: passes(dst) >= at + 3, 30, "migtest passes over Uffd")
        no_failure(dst)
        assert dst.stop() == vmmrun.EXIT_SIGNAL
        # The handler sees the VMM go and leaves on its own.
        assert handler.wait(timeout=10) == 0
        assert "pages served" in handler.stderr.read()
    finally:
        if handler.poll() is None:
            handler.kill()
            handler.wait()


def test_create_needs_a_paused_vm(api, guest, tmp_path, needs_migration):
    v = api("--kernel", guest["elf"], "--cmdline", "guest.test=counter")
    r = v.put("/snapshot/create", {"snapshot_path": str(tmp_path / "s"),
                                   "mem_file_path": str(tmp_path / "m")})
    assert r.status == 400 and "paused" in r.fault
    assert not (tmp_path / "s").exists()
    idle = api()
    r = idle.put("/snapshot/create", {"snapshot_path": str(tmp_path / "s"),
                                      "mem_file_path": str(tmp_path / "m")})
    assert r.status == 400 and "not started" in r.fault


@pytest.mark.parametrize("body, text", [
    ({}, "snapshot_path: missing"),
    ({"snapshot_path": "/tmp/x"}, "mem_file_path: missing"),
    ({"snapshot_path": "/tmp/x", "mem_file_path": "/tmp/y", "snapshot_type": "Half"},
     "not one of Full, Diff"),
    ({"snapshot_path": 1, "mem_file_path": "/tmp/y"}, "snapshot_path: expected a string"),
    ({"snapshot_path": "/tmp/x", "mem_file_path": "/tmp/y", "extra": 1}, "extra: unknown"),
])
def test_create_bodies(api, body, text, needs_migration):
    v = api()
    r = v.put("/snapshot/create", body)
    assert r.status == 400 and text in r.fault, r.fault


@pytest.mark.parametrize("body, text", [
    ({"snapshot_path": "/tmp/x"}, "exactly one of mem_backend and mem_file_path"),
    ({"snapshot_path": "/tmp/x", "mem_backend": {"backend_type": "Disk", "backend_path": "y"}},
     "not one of File, Uffd"),
    ({"snapshot_path": "/tmp/x", "mem_backend": {"backend_type": "File"}},
     "mem_backend.backend_path: missing"),
    ({"snapshot_path": "/tmp/x", "mem_file_path": "/y", "resume_vm": "yes"},
     "resume_vm: expected a boolean"),
    ({"snapshot_path": "/nonexistent/x", "mem_file_path": "/y"}, "No such file"),
])
def test_load_bodies(api, body, text, needs_migration):
    v = api()
    r = v.put("/snapshot/load", body)
    assert r.status == 400 and text in r.fault, r.fault
    assert v.state() == "Not started"


# ---- Diff snapshots ----

def test_diff_over_full(api, guest, tmp_path, needs_migration):
    v = boot(api, guest, "migtest", track=True,
             extra_cmdline="guest.mig_mib=32 guest.dirty_mib_s=10")
    wait_for(lambda: passes(v) >= 2, 30, "migtest verifying")
    pause(v)
    base_state, base_mem = create(v, tmp_path, "base")
    assert v.patch("/vm", {"state": "Resumed"}).status == 204
    time.sleep(0.5)  # about 5 MiB of the 32 rewritten
    pause(v)
    at = passes(v)
    diff_state, diff_mem = create(v, tmp_path, "diff", "Diff")
    assert v.stop() == vmmrun.EXIT_SIGNAL
    no_failure(v)
    # The Diff holds only what changed: far less than the Full.
    full_blocks = os.stat(base_mem).st_blocks
    diff_blocks = os.stat(diff_mem).st_blocks
    assert diff_blocks * 2 < full_blocks, (diff_blocks, full_blocks)

    dst = api()
    r = load(dst, diff_state, diff_mem)
    assert r.status == 204, r.body
    wait_for(lambda: passes(dst) >= at + 3, 30, "migtest passes after the Diff restore")
    no_failure(dst)
    # A Diff on top of the restored Diff works too (layers stack).
    pause(dst)
    at2 = passes(dst)
    d2_state, d2_mem = create(dst, tmp_path, "diff2", "Diff")
    assert dst.stop() == vmmrun.EXIT_SIGNAL
    dst2 = api()
    assert load(dst2, d2_state, d2_mem).status == 204
    wait_for(lambda: passes(dst2) >= at2 + 2, 30, "migtest passes after the second Diff")
    no_failure(dst2)


def test_diff_needs_tracking_and_a_base(api, guest, tmp_path, needs_migration):
    v = boot(api, guest, "counter")
    pause(v)
    r = v.put("/snapshot/create", {"snapshot_path": str(tmp_path / "d.state"),
                                   "mem_file_path": str(tmp_path / "d.mem"),
                                   "snapshot_type": "Diff"})
    assert r.status == 400 and "track_dirty_pages" in r.fault
    t = boot(api, guest, "counter", track=True)
    pause(t)
    r = t.put("/snapshot/create", {"snapshot_path": str(tmp_path / "d.state"),
                                   "mem_file_path": str(tmp_path / "d.mem"),
                                   "snapshot_type": "Diff"})
    assert r.status == 400 and "Full one first" in r.fault


def test_diff_base_missing(api, guest, tmp_path, needs_migration):
    v = boot(api, guest, "counter", track=True)
    pause(v)
    _, base_mem = create(v, tmp_path, "base")
    diff_state, diff_mem = create(v, tmp_path, "diff", "Diff")
    os.unlink(base_mem)
    dst = api()
    r = load(dst, diff_state, diff_mem)
    assert r.status == 400 and "base.mem" in r.fault and "No such file" in r.fault
    assert dst.state() == "Not started"


# ---- bad files ----

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def reseal_header(data):
    """Recompute the header checksum after an edit of the header."""
    h = bytearray(data[:HEADER_SIZE])
    h[76:80] = b"\0\0\0\0"
    h[76:80] = struct.pack("<I", crc32c(bytes(h)))
    return bytes(h) + data[HEADER_SIZE:]


def other_cpu(data):
    d = bytearray(data)
    d[32:44] = b"AuthenticAMD" if bytes(d[32:44]) != b"AuthenticAMD" else b"GenuineIntel"
    return reseal_header(bytes(d))


def other_features(data):
    d = bytearray(data)
    d[48] ^= 0xFF  # the feature hash
    return reseal_header(bytes(d))


BAD_FILES = [
    ("truncated", lambda d: d[:len(d) // 2], "truncated"),
    ("tiny", lambda d: d[:6], "truncated"),
    ("empty", lambda d: b"", "truncated"),
    ("bad_magic", lambda d: b"XMMSNAP\0" + d[8:], "bad magic"),
    ("bad_version", lambda d: d[:8] + struct.pack("<I", 99) + d[12:], "version 99 is not supported"),
    ("flipped_payload", lambda d: d[:-100] + bytes([d[-100] ^ 1]) + d[-99:], "checksum mismatch"),
    ("flipped_header", lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:], "corrupt header"),
    ("trailing", lambda d: d + b"\0" * 8, "trailing bytes"),
    ("other_cpu", other_cpu, "different CPU"),
    ("other_features", other_features, "other features"),
]


@pytest.fixture(scope="module")
def good_snapshot(vmm_bin, guest, modules, tmp_path_factory):
    if "migration" not in modules:
        pytest.skip("module migration not built in")
    d = tmp_path_factory.mktemp("snap")
    v = Vmm(vmm_bin, ["--kernel", str(guest["elf"]), "--cmdline", "guest.test=counter"])
    try:
        wait_for(lambda: full(v, COUNTER), 10, "COUNTER")
        pause(v)
        state, mem = create(v, str(d), "good")
    finally:
        v.close()
    return state, mem


@pytest.mark.parametrize("name, edit, text", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_state_file_refused(api, vmm_bin, good_snapshot, tmp_path, name, edit, text):
    state, mem = good_snapshot
    bad = tmp_path / "bad.state"
    bad.write_bytes(edit(pathlib.Path(state).read_bytes()))
    # Through the API: 400 with the reason, and nothing changed.
    v = api()
    before = v.get("/vm/config").json
    r = load(v, str(bad), mem)
    assert r.status == 400, r.body
    assert text in r.fault and "refused" in r.fault, r.fault
    assert v.state() == "Not started"
    assert v.get("/vm/config").json == before
    # On the command line: the VMM does not start.
    res = vmmrun.run(vmm_bin, ["--restore", f"{bad},{mem}"], timeout=20)
    assert res.status == vmmrun.EXIT_BOOT_IMAGE, res.stderr
    assert text in res.stderr


def test_bad_memory_file_refused(api, vmm_bin, good_snapshot, tmp_path):
    state, mem = good_snapshot
    short = tmp_path / "short.mem"
    with open(mem, "rb") as f:
        short.write_bytes(f.read(1 << 20))
    v = api()
    for path, text in [(short, "wrong size"), (tmp_path / "none.mem", "No such file")]:
        r = load(v, state, str(path))
        assert r.status == 400 and text in r.fault, r.fault
        assert v.state() == "Not started"
    # A good load still works on the same VMM afterwards.
    r = load(v, state, mem)
    assert r.status == 204, r.body
    wait_for(lambda: full(v, COUNTER), 10, "COUNTER after the refusals")


def test_load_only_before_start(api, guest, good_snapshot):
    state, mem = good_snapshot
    v = api("--kernel", guest["elf"], "--cmdline", "guest.test=counter")
    r = load(v, state, mem)
    assert r.status == 400 and "has not started" in r.fault


def test_restore_flag_conflicts(vmm_bin, guest, good_snapshot):
    state, mem = good_snapshot
    for args in (["--restore", f"{state},{mem}", "--kernel", str(guest["elf"])],
                 ["--restore", state], ["--restore", f"{state},{mem},fast"]):
        res = vmmrun.run(vmm_bin, args, timeout=20)
        assert res.status == vmmrun.EXIT_USAGE, (args, res.stderr)
        assert "--restore" in res.stderr


# ---- without the module ----

def test_minimal_build_refuses(api, vmm_bin, modules, tmp_path):
    if "migration" in modules:
        pytest.skip("module migration is built in")
    res = vmmrun.run(vmm_bin, ["--restore", "a,b"], timeout=20)
    assert res.status == vmmrun.EXIT_USAGE
    assert "--restore: not built in (module migration" in res.stderr
    v = api()
    for method, path in (("PUT", "/snapshot/create"), ("PUT", "/snapshot/load")):
        r = v.request(method, path, {"snapshot_path": "x"})
        assert r.status == 400 and "not built in (module migration" in r.fault, r.fault
