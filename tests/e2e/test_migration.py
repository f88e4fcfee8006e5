"""Live migration end to end (module migration), on this host only:
127.0.0.1 and Unix sockets. A guest that rewrites its memory (migtest)
checks every page on the destination; the counter goes on; a cancel, a
destination killed midway, a guest that dirties faster than the link
carries and a corrupt stream each leave the source running the guest, and
exactly one side runs it at any time. copy_disks brings the drives along.
Against a build without the module, --incoming and /migration are
refused as "not built in".
"""
import os
import pathlib
import socket
import struct
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import vmmrun  # noqa: E402
from apiclient import short_dir  # noqa: E402
from migcommon import COUNTER, MIGTEST, full, no_failure, wait_for  # noqa: E402

def last(v, pattern, group=1):
    m = full(v, pattern)
    return int(m[-1].group(group)) if m else -1


def unix_uri():
    return "unix:" + os.path.join(short_dir(), "mig.sock")


def tcp_uri():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"tcp:127.0.0.1:{port}"


def migtest(api, mib=16, dirty=20, mem=128, extra=(), disk_mib=0):
    cmdline = f"guest.test=migtest guest.mig_mib={mib} guest.dirty_mib_s={dirty}"
    if disk_mib:
        cmdline += f" guest.mig_disk_mib={disk_mib}"
    v = api("--kernel", GUEST, "--cmdline", cmdline,
             "--mem", mem, *extra)
    wait_for(lambda: last(v, MIGTEST) >= 2, 30, "migtest verifying on the source")
    return v


GUEST = str(pathlib.Path(__file__).resolve().parents[1] / "guest" / "out" / "guest.elf")


def incoming(api, uri, *args):
    """A destination; its API answers once it listens on uri."""
    v = api("--incoming", uri, *args)
    assert status(v)["phase"] == "waiting"
    return v


def status(v):
    r = v.get("/migration")
    assert r.status == 200, r.body
    return r.json


def migrate(src, uri, **kw):
    body = {"uri": uri}
    body.update(kw)
    r = src.put("/migration", body)
    assert r.status == 204, r.body


def wait_phase(v, phases, timeout=60):
    return wait_for(lambda: status(v) if status(v)["phase"] in phases else None, timeout,
                    f"migration phase in {phases}")


def source_runs_on(src):
    """The guest still runs on the source: its passes go on, it is not
    paused, and nothing failed."""
    assert src.proc.poll() is None, src.stderr
    assert src.state() == "Running"
    p = last(src, MIGTEST)
    wait_for(lambda: last(src, MIGTEST) >= p + 2, 30, "the source's guest going on")
    no_failure(src)


# ---- success ----

def check_handover(src, dst):
    """The source stopped for good, the destination took over where it
    stopped (guest time and passes go on), and verifies every page."""
    assert src.wait_exit(timeout=60) == vmmrun.EXIT_OK, src.stderr
    no_failure(src)
    st = wait_phase(dst, ["completed", "failed"])
    assert st["phase"] == "completed", st
    assert st["direction"] == "incoming" and st["downtime_ms"] >= 0
    src_last = full(src, MIGTEST)[-1]
    wait_for(lambda: len(full(dst, MIGTEST)) >= 3, 30, "migtest lines on the destination")
    first = full(dst, MIGTEST)[0]
    assert int(first.group(4)) >= int(src_last.group(4)), "guest time went back"
    assert int(first.group(1)) >= int(src_last.group(1))
    p = last(dst, MIGTEST)
    wait_for(lambda: last(dst, MIGTEST) >= p + 3, 30, "full verification passes on the destination")
    no_failure(dst)
    assert dst.state() == "Running"


def test_migrate_tcp_while_dirtying(api, needs_migration):
    uri = tcp_uri()
    dst = incoming(api, uri)
    src = migtest(api, mib=32, dirty=50)
    assert status(src) == {"phase": "none"}
    migrate(src, uri, max_downtime_ms=300)
    check_handover(src, dst)


def test_migrate_unix_counter_two_vcpus(api, needs_migration):
    uri = unix_uri()
    dst = incoming(api, uri)
    src = api("--kernel", GUEST, "--cmdline", "guest.test=counter", "--cpus", 2)
    wait_for(lambda: len(full(src, COUNTER)) >= 5, 10, "COUNTER lines")
    migrate(src, uri)
    assert src.wait_exit(timeout=60) == vmmrun.EXIT_OK, src.stderr
    n0 = last(src, COUNTER)
    wait_for(lambda: len(full(dst, COUNTER)) >= 5, 10, "COUNTER lines on the destination")
    got = [int(m.group(1)) for m in full(dst, COUNTER)]
    assert got[0] in (n0 + 1, n0 + 2), (n0, got[:3])
    assert got == list(range(got[0], got[0] + len(got)))
    cfg = dst.get("/vm/config").json
    assert cfg["machine-config"]["vcpu_count"] == 2


def test_migrate_paused_guest_stays_paused(api, needs_migration):
    uri = unix_uri()
    dst = incoming(api, uri)
    src = migtest(api)
    assert src.patch("/vm", {"state": "Paused"}).status == 204
    migrate(src, uri)
    assert src.wait_exit(timeout=60) == vmmrun.EXIT_OK, src.stderr
    wait_phase(dst, ["completed"])
    assert dst.state() == "Paused"
    p = last(dst, MIGTEST)
    time.sleep(0.3)
    assert last(dst, MIGTEST) == p, "a paused guest must not run on the destination"
    assert dst.patch("/vm", {"state": "Resumed"}).status == 204
    wait_for(lambda: last(dst, MIGTEST) >= last(src, MIGTEST) + 2, 30, "passes after resuming")
    no_failure(dst)


def test_copy_disks(api, needs_migration, tmp_path):
    src_img, dst_img = tmp_path / "src.img", tmp_path / "dst.img"
    with open(src_img, "wb") as f:
        f.truncate(16 << 20)
    uri = unix_uri()
    dst = incoming(api, uri, "--disk", dst_img)
    src = migtest(api, mib=8, dirty=10, extra=("--disk", src_img), disk_mib=4)
    wait_for(lambda: last(src, MIGTEST, 3) >= 1, 30, "a disk verification pass on the source")
    migrate(src, uri, copy_disks=True)
    check_handover(src, dst)
    d0 = last(dst, MIGTEST, 3)
    wait_for(lambda: last(dst, MIGTEST, 3) >= d0 + 1, 60, "a whole disk pass on the destination")
    no_failure(dst)
    assert dst.get("/vm/config").json["drives"][0]["path_on_host"] == str(dst_img)


def test_copy_disks_needs_a_place(api, needs_migration, tmp_path):
    img = tmp_path / "src.img"
    with open(img, "wb") as f:
        f.truncate(8 << 20)
    uri = unix_uri()
    dst = incoming(api, uri)  # no --disk to receive into
    src = migtest(api, mib=4, dirty=0, extra=("--disk", img), disk_mib=1)
    migrate(src, uri, copy_disks=True)
    st = wait_phase(src, ["failed", "completed"])
    assert st["phase"] == "failed" and "--disk" in st["error"], st
    assert dst.wait_exit(timeout=30) == vmmrun.EXIT_BOOT_IMAGE
    assert "--disk" in dst.stderr
    source_runs_on(src)


def test_migrate_a_restored_vm(api, needs_migration, tmp_path):
    """RAM mapped from a snapshot's memory file (copy-on-write) migrates
    too, and a migrated VM snapshots."""
    src = migtest(api, mib=8, dirty=10)
    assert src.patch("/vm", {"state": "Paused"}).status == 204
    state, mem = str(tmp_path / "s.state"), str(tmp_path / "s.mem")
    assert src.put("/snapshot/create", {"snapshot_path": state,
                                        "mem_file_path": mem}).status == 204
    src.stop()
    restored = api()
    assert restored.put("/snapshot/load", {"snapshot_path": state, "resume_vm": True,
                                           "mem_file_path": mem}).status == 204
    wait_for(lambda: last(restored, MIGTEST) >= last(src, MIGTEST) + 1, 30, "the restored guest")
    uri = unix_uri()
    dst = incoming(api, uri)
    migrate(restored, uri)
    check_handover(restored, dst)
    assert dst.patch("/vm", {"state": "Paused"}).status == 204
    r = dst.put("/snapshot/create", {"snapshot_path": str(tmp_path / "d.state"),
                                     "mem_file_path": str(tmp_path / "d.mem")})
    assert r.status == 204, r.body


def test_destination_takes_nothing_else(api, needs_migration, tmp_path):
    dst = incoming(api, unix_uri())
    r = dst.put("/snapshot/load", {"snapshot_path": str(tmp_path / "s"),
                                   "mem_file_path": str(tmp_path / "m")})
    assert r.status == 400 and "incoming migration" in r.fault, r.fault
    r = dst.put("/actions", {"action_type": "InstanceStart"})
    assert r.status == 400
    assert status(dst)["phase"] == "waiting"


# ---- failures leave the source running ----

def test_cancel_midway(api, needs_migration):
    uri = unix_uri()
    dst = incoming(api, uri)
    src = migtest(api, mib=32, dirty=10)
    migrate(src, uri, max_bandwidth_mib_s=8)  # about 4 s for the first pass
    wait_for(lambda: status(src)["bytes_sent"] > (4 << 20), 20, "a few MiB sent")
    assert status(src)["phase"] == "precopy"
    r = src.put("/migration/cancel", {})
    assert r.status == 204, r.body
    st = wait_phase(src, ["cancelled", "failed", "completed"])
    assert st["phase"] == "cancelled" and st["error"] == "cancelled", st
    source_runs_on(src)
    assert dst.wait_exit(timeout=30) == vmmrun.EXIT_BOOT_IMAGE
    assert "cancelled" in dst.stderr
    assert src.put("/migration/cancel", {}).status == 400


def test_kill_destination_midway(api, needs_migration):
    uri = unix_uri()
    dst = incoming(api, uri)
    src = migtest(api, mib=32, dirty=10)
    migrate(src, uri, max_bandwidth_mib_s=8)
    wait_for(lambda: status(src)["bytes_sent"] > (4 << 20), 20, "a few MiB sent")
    dst.proc.kill()
    dst.proc.wait()
    st = wait_phase(src, ["failed", "completed"])
    assert st["phase"] == "failed" and "went away" in st["error"], st
    source_runs_on(src)
    # The next try, to a live destination, works.
    uri2 = unix_uri()
    dst2 = incoming(api, uri2)
    migrate(src, uri2)
    check_handover(src, dst2)


def test_does_not_converge(api, needs_migration):
    uri = unix_uri()
    dst = incoming(api, uri)
    src = migtest(api, mib=8, dirty=400)
    migrate(src, uri, max_bandwidth_mib_s=20, max_downtime_ms=50)
    st = wait_phase(src, ["failed", "completed"], timeout=90)
    assert st["phase"] == "failed", st
    assert "does not converge" in st["error"] and "max_downtime_ms 50" in st["error"], st
    assert st["passes"] >= 2
    source_runs_on(src)
    assert dst.wait_exit(timeout=30) == vmmrun.EXIT_BOOT_IMAGE


def test_destination_missing(api, needs_migration):
    src = migtest(api, mib=4, dirty=0)
    migrate(src, unix_uri())
    st = wait_phase(src, ["failed"])
    assert "cannot connect" in st["error"], st
    source_runs_on(src)


# ---- bad streams are refused by the destination ----

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def record(rtype, payload, arg=0):
    hdr = struct.pack("<IIQII", rtype, len(payload), arg, crc32c(payload), 0)
    hdr = hdr[:20] + struct.pack("<I", crc32c(hdr))
    return hdr + payload


def send_raw(uri, data):
    path = uri[len("unix:"):]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    wait_for(lambda: os.path.exists(path), 10, "the destination's socket")
    s.connect(path)
    try:
        s.sendall(data)
        s.settimeout(10)
        try:
            return s.recv(4096)
        except OSError:
            return b""
    finally:
        s.close()


def hello(version=1, mem=128 << 20):
    magic = b"VMMMIGR\0"
    cpu = b"\0" * 32  # not this host's: only checked after magic and version
    return magic + struct.pack("<II", version, 1) + cpu + struct.pack("<QII", mem, 0, 0) + \
        b"\0" * 64


@pytest.mark.parametrize("name, data, text", [
    ("garbage", b"GET / HTTP/1.1\r\n\r\n" + b"x" * 64, "fails its checksum"),
    ("bad_magic", record(1, b"XMMMIGR\0" + hello()[8:]), "bad magic"),
    ("bad_version", record(1, hello(version=9)), "version 9 is not supported"),
    ("other_cpu", record(1, hello()), "different CPU"),
    ("truncated", record(1, hello())[:30], "ended early"),
])
def test_bad_stream_refused(api, needs_migration, name, data, text):
    uri = unix_uri()
    dst = incoming(api, uri)
    answer = send_raw(uri, data)
    assert dst.wait_exit(timeout=30) == vmmrun.EXIT_BOOT_IMAGE
    assert "incoming migration failed" in dst.stderr and text in dst.stderr, dst.stderr
    if name not in ("truncated",):
        assert b"ERROR" not in answer  # an ERROR record, not text
        assert len(answer) >= 24


class FlipProxy:
    """Forwards a Unix-socket stream and flips one bit past `at` bytes."""

    def __init__(self, target, at):
        self.path = os.path.join(short_dir(), "proxy.sock")
        self.target, self.at = target, at
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.path)
        self.srv.listen(1)
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        a, _ = self.srv.accept()
        b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        b.connect(self.target)
        threading.Thread(target=self.pipe, args=(b, a, None), daemon=True).start()
        self.pipe(a, b, self.at)

    @staticmethod
    def pipe(src, dst, at):
        seen = 0
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                if at is not None and seen <= at < seen + len(d):
                    d = bytearray(d)
                    d[at - seen] ^= 0x10
                    d = bytes(d)
                seen += len(d)
                dst.sendall(d)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_corrupt_stream_refused_source_runs_on(api, needs_migration):
    uri = unix_uri()
    dst = incoming(api, uri)
    proxy = FlipProxy(uri[len("unix:"):], at=3 << 20)
    src = migtest(api, mib=16, dirty=10)
    migrate(src, "unix:" + proxy.path)
    st = wait_phase(src, ["failed", "completed"])
    assert st["phase"] == "failed", st
    assert dst.wait_exit(timeout=30) == vmmrun.EXIT_BOOT_IMAGE
    assert "checksum" in dst.stderr, dst.stderr
    source_runs_on(src)


# ---- the API ----

@pytest.mark.parametrize("body, text", [
    ({}, "uri: missing"),
    ({"uri": "http://x"}, "expected tcp:HOST:PORT or unix:PATH"),
    ({"uri": "tcp:127.0.0.1"}, "expected tcp:HOST:PORT"),
    ({"uri": "tcp:example.com:80"}, "an IP address"),
    ({"uri": "unix:/x", "max_downtime_ms": 0}, "at least 1"),
    ({"uri": "unix:/x", "max_bandwidth_mib_s": -1}, "max_bandwidth_mib_s: expected"),
    ({"uri": "unix:/x", "copy_disks": 1}, "copy_disks: expected a boolean"),
    ({"uri": "unix:/x", "speed": 1}, "speed: unknown field"),
])
def test_migration_bodies(api, needs_migration, body, text):
    v = api("--kernel", GUEST, "--cmdline", "guest.test=counter")
    r = v.put("/migration", body)
    assert r.status == 400 and text in r.fault, r.fault


def test_migration_needs_a_started_vm(api, needs_migration):
    v = api()
    r = v.put("/migration", {"uri": "unix:/tmp/nothing"})
    assert r.status == 400 and "has not started" in r.fault
    assert v.get("/migration").json == {"phase": "none"}
    assert v.put("/migration/cancel", {}).status == 400
    assert v.request("DELETE", "/migration").status == 405
    assert v.get("/migration/other").status == 404


def test_incoming_flag_checks(vmm_bin, needs_migration):
    for args, text in ((["--incoming", "tcp:nohost"], "--incoming: invalid value"),
                       (["--incoming", "unix:/tmp/x", "--kernel", GUEST], "cannot be combined")):
        res = vmmrun.run(vmm_bin, args, timeout=20)
        assert res.status == vmmrun.EXIT_USAGE and text in res.stderr, res.stderr


# ---- without the module ----

def test_minimal_build_refuses(api, vmm_bin, modules):
    if "migration" in modules:
        pytest.skip("module migration is built in")
    res = vmmrun.run(vmm_bin, ["--incoming", "unix:/tmp/x"], timeout=20)
    assert res.status == vmmrun.EXIT_USAGE
    assert "--incoming: not built in (module migration" in res.stderr
    v = api()
    for method, path in (("PUT", "/migration"), ("GET", "/migration"),
                         ("PUT", "/migration/cancel")):
        r = v.request(method, path, {} if method == "PUT" else None)
        assert r.status == 400 and "not built in (module migration" in r.fault, r.fault
