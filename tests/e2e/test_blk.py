"""virtio-blk end to end: the test guest's polling virtio-blk driver (see
tests/guest/README.md) against the VMM, on fresh images in tmp_path.

Covers both engines, read-only disks, ranges, several disks, durability
across a SIGKILL, the image errors (missing, unreadable, locked) and bad
--disk values.
"""
import fcntl
import hashlib
import os
import pathlib
import re
import signal
import struct
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import vmmrun  # noqa: E402

EXIT_DISK = 20
MIB = 1 << 20
SECTOR = 512
BLOCK = 4096
ENGINES = ["", ",engine=sync", ",engine=io_uring"]  # "": the default (io_uring)
LAYOUTS = 6          # tests/guest/blk.h: enum blk_layout
SIGNATURE_SECTOR = 1024
SIGNATURE_SEED = 0xB10C


def pattern(seed, nbytes):
    """tests/guest/blkdev.c blk_pattern(): words seed * 0x9E3779B1 + i."""
    n = nbytes // 4
    return struct.pack(f"<{n}I", *(((seed * 0x9E3779B1) + i) & 0xFFFFFFFF for i in range(n)))


def make_image(path, size=8 * MIB, fill=None):
    with open(path, "wb") as f:
        if fill is None:
            f.truncate(size)
        else:
            f.write(fill(size))
    return path


def noise(size):
    return bytes((i * 131 + (i >> 9)) & 0xFF for i in range(size))


def read_at(path, offset, length):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def boot(vmm_bin, guest, test, disks, cmdline="", timeout=60, extra=()):
    args = ["--kernel", guest["elf"], "--debug-exit",
            "--cmdline", f"guest.test={test} {cmdline}".strip()]
    for d in disks:
        args += ["--disk", d]
    args += list(extra)
    return vmmrun.run(vmm_bin, args, timeout=timeout)


def explain(r):
    return f"status {r.status}\n--- stdout:\n{r.stdout}--- stderr:\n{r.stderr}"


def assert_pass(r, test):
    assert f"TEST {test} PASS" in r.stdout.splitlines(), explain(r)
    assert r.status == vmmrun.EXIT_OK, explain(r)


def assert_disk_error(r, path, what):
    assert r.status == EXIT_DISK, explain(r)
    assert f"disk {path}: {what}" in r.stderr, explain(r)
    assert "GUEST" not in r.stdout  # refused before boot


# ---- the guest's tests --------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_read_write(vmm_bin, guest, tmp_path, engine):
    img = make_image(tmp_path / "disk.img")
    serial = "vmm-disk-0001" if engine else ""
    opts = f",serial={serial}" if serial else ""
    r = boot(vmm_bin, guest, "blk", [f"{img}{engine}{opts}"],
             f"guest.blk_sectors={8 * MIB // SECTOR}"
             + (f" guest.blk_serial={serial}" if serial else ""))
    assert_pass(r, "blk")
    assert f"BLK id={serial}" in r.stdout.splitlines(), explain(r)
    # What the guest wrote is in the image, where it wrote it.
    for w in range(LAYOUTS):
        assert read_at(img, w * BLOCK, BLOCK) == pattern(100 + w, BLOCK), f"layout {w}"
    for i in range(16):  # the batch
        assert read_at(img, 512 * SECTOR + i * BLOCK, BLOCK) == pattern(200 + i, BLOCK)
    assert read_at(img, 64 * SECTOR, 2 * BLOCK) == bytes(2 * BLOCK)  # write zeroes
    assert read_at(img, SIGNATURE_SECTOR * SECTOR, BLOCK) == pattern(SIGNATURE_SEED, BLOCK)


def test_cache_unsafe(vmm_bin, guest, tmp_path):
    img = make_image(tmp_path / "disk.img")
    assert_pass(boot(vmm_bin, guest, "blk", [f"{img},cache=unsafe"]), "blk")
    assert read_at(img, SIGNATURE_SECTOR * SECTOR, BLOCK) == pattern(SIGNATURE_SEED, BLOCK)


@pytest.mark.parametrize("engine", ENGINES[1:])
def test_read_only(vmm_bin, guest, tmp_path, engine):
    img = make_image(tmp_path / "ro.img", 1 * MIB, fill=noise)
    before = hashlib.sha256(img.read_bytes()).hexdigest()
    img.chmod(0o444)
    r = boot(vmm_bin, guest, "blk_ro", [f"{img},ro{engine}"])
    assert_pass(r, "blk_ro")
    assert hashlib.sha256(img.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("engine", ENGINES[1:])
def test_range(vmm_bin, guest, tmp_path, engine):
    # An odd size: the capacity rounds down to whole sectors.
    img = make_image(tmp_path / "odd.img", 1 * MIB + 700)
    r = boot(vmm_bin, guest, "blk_range", [f"{img}{engine}"])
    assert_pass(r, "blk_range")
    assert "BLK range checks ok (capacity 2049)" in r.stdout, explain(r)


def test_several_disks(vmm_bin, guest, tmp_path):
    a = make_image(tmp_path / "a.img", 1 * MIB)
    b = make_image(tmp_path / "b.img", 8 * MIB)
    c = make_image(tmp_path / "c.img", 1 * MIB, fill=noise)
    r = boot(vmm_bin, guest, "blk", [str(a), f"{b},serial=second", f"{c},ro"],
             "guest.blk_index=1 guest.blk_serial=second guest.blk_sectors=16384")
    assert_pass(r, "blk")
    cmdline = " ".join(f"virtio_mmio.device=4K@0x{0xd0000000 + n * 0x1000:x}:{irq}"
                       for n, irq in enumerate([5, 6, 7]))
    r2 = boot(vmm_bin, guest, "cmdline", [str(a), str(b), f"{c},ro"])
    assert cmdline in r2.stdout, explain(r2)
    assert read_at(b, SIGNATURE_SECTOR * SECTOR, BLOCK) == pattern(SIGNATURE_SEED, BLOCK)
    assert a.read_bytes() == bytes(1 * MIB)  # the other disks are untouched
    assert c.read_bytes() == noise(1 * MIB)


@pytest.mark.parametrize("engine", ENGINES[1:])
def test_misbehaving_driver(vmm_bin, guest, tmp_path, engine):
    """Malformed chains fail alone; protocol violations end in NEEDS_RESET;
    a reset recovers; the VMM never falls over."""
    img = make_image(tmp_path / "evil.img", 1 * MIB)
    r = boot(vmm_bin, guest, "blk_evil", [f"{img}{engine}"])
    assert_pass(r, "blk_evil")
    assert "descriptor loop" in r.stderr, explain(r)
    assert "device needs a reset" in r.stderr, explain(r)


def test_bench_smoke(vmm_bin, guest, tmp_path):
    img = make_image(tmp_path / "bench.img", 16 * MIB)
    for mode, qd, bs in [("randread", 32, 4096), ("seqwrite", 4, 1 << 20)]:
        r = boot(vmm_bin, guest, "blk_bench", [str(img)],
                 f"guest.blk_bench={mode} guest.blk_qd={qd} guest.blk_bs={bs} guest.blk_secs=1")
        assert_pass(r, "blk_bench")
        m = re.search(r"^BENCH iops=(\d+) mbps=(\d+) mode=(\w+) qd=(\d+) bs=(\d+)",
                      r.stdout, re.M)
        assert m and int(m[1]) > 0 and m[3] == mode and int(m[4]) == qd, explain(r)


# ---- durability ---------------------------------------------------------------

def test_flushed_writes_survive_sigkill(vmm_bin, guest, tmp_path):
    """Kill the VMM mid-way: every block reported flushed is in the image."""
    blocks = 4096
    img = make_image(tmp_path / "durable.img", blocks * BLOCK)
    proc = subprocess.Popen(
        [str(vmm_bin), "--kernel", str(guest["elf"]), "--debug-exit", "--disk", str(img),
         "--cmdline", f"guest.test=blk_durable guest.blk_n={blocks}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    flushed = 0
    deadline = time.monotonic() + 60
    try:
        for raw in iter(proc.stdout.readline, b""):
            m = re.match(rb"FLUSHED (\d+)", raw)
            if m:
                flushed = int(m[1])
            if flushed >= 40 or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert flushed >= 40, f"only {flushed} flushes reported"
    data = img.read_bytes()
    for i in range(flushed):
        assert data[i * BLOCK:(i + 1) * BLOCK] == pattern(i, BLOCK), f"block {i} lost"


# ---- image errors -------------------------------------------------------------

def test_missing_image(vmm_bin, guest, tmp_path):
    missing = tmp_path / "no-such.img"
    r = boot(vmm_bin, guest, "hello", [str(missing)])
    assert_disk_error(r, missing, "no such file")


def test_directory_is_not_an_image(vmm_bin, guest, tmp_path):
    r = boot(vmm_bin, guest, "hello", [str(tmp_path)])
    assert_disk_error(r, tmp_path, "is a directory")


def test_unreadable_image(vmm_bin, guest, tmp_path):
    img = make_image(tmp_path / "secret.img", 1 * MIB)
    img.chmod(0)
    args = [str(vmm_bin), "--kernel", guest["elf"], "--disk", str(img)]
    if os.geteuid() == 0:
        # Root ignores file modes: drop the capabilities that let it.
        args = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"] + args
    r = vmmrun.run(args[0], args[1:])
    assert_disk_error(r, img, "permission denied")


def test_read_only_file_needs_ro(vmm_bin, guest, tmp_path):
    img = make_image(tmp_path / "ro-file.img", 1 * MIB)
    img.chmod(0o444)
    if os.geteuid() == 0:
        args = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--",
                str(vmm_bin), "--kernel", guest["elf"], "--disk", str(img)]
        r = vmmrun.run(args[0], args[1:])
        assert_disk_error(r, img, "permission denied")
    r = boot(vmm_bin, guest, "blk_ro", [f"{img},ro"])
    assert_pass(r, "blk_ro")


def hold_lock(path, exclusive):
    """An OFD-compatible POSIX lock held by this process (as another VMM would)."""
    f = open(path, "r+b" if exclusive else "rb")
    fcntl.lockf(f, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    return f


def test_locked_image(vmm_bin, guest, tmp_path):
    img = make_image(tmp_path / "locked.img", 1 * MIB)
    with hold_lock(img, exclusive=True):
        assert_disk_error(boot(vmm_bin, guest, "hello", [str(img)]), img, "locked")
        assert_disk_error(boot(vmm_bin, guest, "hello", [f"{img},ro"]), img, "locked")
    with hold_lock(img, exclusive=False):  # readers share, a writer waits
        assert_disk_error(boot(vmm_bin, guest, "hello", [str(img)]), img, "locked")
        assert_pass(boot(vmm_bin, guest, "blk_ro", [f"{img},ro"]), "blk_ro")
    assert_pass(boot(vmm_bin, guest, "blk_range", [str(img)]), "blk_range")


def test_same_image_twice_in_one_vmm(vmm_bin, guest, tmp_path):
    img = make_image(tmp_path / "twice.img", 1 * MIB)
    assert_disk_error(boot(vmm_bin, guest, "hello", [str(img), str(img)]), img, "locked")
    assert_pass(boot(vmm_bin, guest, "blk_ro", [f"{img},ro", f"{img},ro"]), "blk_ro")


def test_two_vmms_one_image(vmm_bin, guest, tmp_path):
    """A running VMM's lock keeps a second one off its image."""
    img = make_image(tmp_path / "shared.img", 16 * MIB)
    first = subprocess.Popen(
        [str(vmm_bin), "--kernel", str(guest["elf"]), "--debug-exit", "--disk", str(img),
         "--cmdline", "guest.test=blk_durable guest.blk_n=4096"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = b""
        while not line.startswith(b"FLUSHED"):
            line = first.stdout.readline()
            assert line, "first VMM ended early"
        r = boot(vmm_bin, guest, "hello", [str(img)])
        assert_disk_error(r, img, "locked")
        r = boot(vmm_bin, guest, "hello", [f"{img},ro"])
        assert_disk_error(r, img, "locked")
    finally:
        first.kill()
        first.wait()
        first.stdout.close()


# ---- bad --disk values ----------------------------------------------------------

@pytest.mark.parametrize("value,why", [
    ("", "empty path"),
    ("disk.img,bogus", "unknown option 'bogus'"),
    ("disk.img,cache=none", "bad value in 'cache=none'"),
    ("disk.img,engine=aio", "bad value in 'engine=aio'"),
    ("disk.img,serial=" + "x" * 21, "serial must be 1..20"),
    ("disk.img,,ro", "empty option"),
])
def test_bad_disk_value(vmm_bin, guest, value, why):
    r = vmmrun.run(vmm_bin, ["--kernel", guest["elf"], "--disk", value])
    assert r.status == vmmrun.EXIT_USAGE, explain(r)
    assert f"--disk: invalid value '{value}' ({why}" in r.stderr, explain(r)
    assert r.stdout == ""


def test_too_many_disks(vmm_bin, guest, tmp_path):
    args = ["--kernel", guest["elf"]]
    for i in range(9):
        args += ["--disk", str(tmp_path / f"{i}.img")]
    r = vmmrun.run(vmm_bin, args)
    assert r.status == vmmrun.EXIT_USAGE, explain(r)
    assert "--disk: too many disks" in r.stderr


def test_help_mentions_disk(vmm_bin):
    r = vmmrun.run(vmm_bin, ["--help"])
    assert "--disk PATH[,ro][,serial=ID][,cache=unsafe|writeback][,engine=sync|io_uring]" \
        in r.stdout
