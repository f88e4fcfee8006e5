"""The sandbox end to end (seccomp/): every thread of a running VMM has its
own filter, no capabilities and no_new_privs; the API thread is sandboxed
before InstanceStart, the others once the VM is built; a forbidden call
ends the VMM with status 22 and a report naming the thread and the call;
--seccomp=log and off; pause/resume and device I/O under the filters;
--chroot and --uid/--gid.

The rest of the suite runs under the default --seccomp=kill, which is what
shows the allow-lists are complete.
"""
import os
import pathlib
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import vmmrun  # noqa: E402
from apiclient import short_dir  # noqa: E402

KINDS = ["main", "vcpu", "api"]
NOBODY = 65534


def threads(pid):
    """{name: {field: value}} for every thread of pid that is ours: "main"
    (the process's first thread), "vmm-api" and "vcpuN" (the kernel's own
    workers, io_uring's and KVM's, are left out)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            comm = pathlib.Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            text = pathlib.Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except OSError:
            continue  # gone meanwhile
        if tid == str(pid):
            comm = "main"
        elif comm != "vmm-api" and not comm.startswith("vcpu"):
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        out[comm] = {k: v.strip() for k, v in fields.items()}
    return out


def assert_sandboxed(t, name, seccomp="2"):
    assert t["Seccomp"] == seccomp, (name, t)
    assert t["NoNewPrivs"] == "1", (name, t)
    for caps in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert int(t[caps], 16) == 0, (name, caps, t)


def start_counter(api, guest, *extra, cpus=2, env=None):
    v = api("--kernel", guest["elf"], "--cmdline", "guest.test=counter", "--cpus", cpus,
            *extra, env=env)
    v.wait_line("COUNTER 2 ")
    return v


def test_every_thread_has_its_filter(api, guest):
    v = start_counter(api, guest)
    t = threads(v.proc.pid)
    assert sorted(t) == ["main", "vcpu0", "vcpu1", "vmm-api"], t
    for name, fields in t.items():
        assert_sandboxed(fields, name)
        assert fields["Seccomp_filters"] == "1", (name, fields)  # its own, not stacked
    assert v.stop() == vmmrun.EXIT_SIGNAL


def test_api_thread_first_then_the_rest_at_instance_start(api, guest):
    v = api()
    assert v.state() == "Not started"
    t = threads(v.proc.pid)
    assert_sandboxed(t["vmm-api"], "vmm-api")
    # The main thread still builds the VM when asked: not yet filtered.
    assert t["main"]["Seccomp"] == "0", t["main"]
    assert v.put("/boot-source", {"kernel_image_path": str(guest["elf"]),
                                  "boot_args": "guest.test=counter"}).status == 204
    assert v.put("/machine-config", {"vcpu_count": 2, "mem_size_mib": 64}).status == 204
    assert v.put("/actions", {"action_type": "InstanceStart"}).status == 204
    v.wait_line("COUNTER 2 ")
    t = threads(v.proc.pid)
    for name in ("main", "vmm-api", "vcpu0", "vcpu1"):
        assert_sandboxed(t[name], name)
    assert v.stop() == vmmrun.EXIT_SIGNAL


def hello(vmm_bin, guest, *extra, env=None):
    """The hello guest, with an API socket (so there is an API thread)."""
    d = short_dir()
    try:
        e = os.environ.copy()
        e.update(env or {})
        return vmmrun.run(vmm_bin, ["--kernel", guest["elf"], "--cmdline", "guest.test=hello",
                                    "--debug-exit", "--api-sock", os.path.join(d, "s"),
                                    *extra], env=e)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("kind", KINDS)
def test_forbidden_call_ends_the_vmm(vmm_bin, guest, kind):
    r = hello(vmm_bin, guest, env={"VMM_TEST_SECCOMP_TRIP": kind})
    assert r.status == vmmrun.EXIT_SECCOMP, (r.status, r.stderr)
    want = f"vmm: seccomp: {kind} thread made a forbidden system call: socket (41)"
    assert want in r.stderr.splitlines(), r.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_log_mode_lets_it_run(vmm_bin, guest, kind):
    r = hello(vmm_bin, guest, "--seccomp", "log", env={"VMM_TEST_SECCOMP_TRIP": kind})
    assert r.status == vmmrun.EXIT_OK, (r.status, r.stderr)
    assert "seccomp" not in r.stderr


@pytest.mark.parametrize("mode,seccomp", [("kill", "2"), ("log", "2"), ("off", "0")])
def test_modes(api, guest, mode, seccomp):
    v = start_counter(api, guest, "--seccomp", mode, cpus=1)
    t = threads(v.proc.pid)
    for name in ("main", "vmm-api", "vcpu0"):
        assert_sandboxed(t[name], name, seccomp)
    assert v.stop() == vmmrun.EXIT_SIGNAL


def test_pause_resume_under_the_filters(api, guest):
    v = start_counter(api, guest)
    for _ in range(2):
        assert v.patch("/vm", {"state": "Paused"}).status == 204
        assert v.get("/vm/info").json["vcpus"][1]["state"] == "paused"
        before = v.counters()[-1]
        assert v.patch("/vm", {"state": "Resumed"}).status == 204
        v.wait_line(f"COUNTER {before + 2} ")
    # Paused, the guest's memory can be read; a metrics file can be opened.
    assert v.patch("/vm", {"state": "Paused"}).status == 204
    assert v.get("/debug/memory?gpa=0x100000&len=16").status == 200
    m = os.path.join(v.dir, "metrics")
    assert v.put("/metrics", {"metrics_path": m}).status == 204
    assert v.put("/actions", {"action_type": "FlushMetrics"}).status == 204
    assert v.patch("/vm", {"state": "Resumed"}).status == 204
    assert pathlib.Path(m).read_text().count("\n") >= 1
    assert v.stop() == vmmrun.EXIT_SIGNAL


def test_device_io_under_the_filters(vmm_bin, guest, tmp_path):
    img = tmp_path / "disk.img"
    with open(img, "wb") as f:
        f.truncate(8 << 20)
    for engine in ("", ",engine=sync"):
        r = vmmrun.run(vmm_bin, ["--kernel", guest["elf"], "--debug-exit", "--disk",
                                 f"{img}{engine}", "--cmdline", "guest.test=blk"])
        assert "TEST blk PASS" in r.stdout.splitlines(), (r.status, r.stdout, r.stderr)
        assert r.status == vmmrun.EXIT_OK, r.stderr


@pytest.fixture
def jail():
    if os.geteuid() != 0:
        pytest.skip("--chroot and --uid need root")
    d = tempfile.mkdtemp(prefix="vmm-jail-")
    os.chown(d, NOBODY, NOBODY - 1)  # the jailed VMM writes its metrics there
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_jail(api, guest, jail):
    # LeakSanitizer lists /proc/PID/task at exit, which the jail hides.
    opts = [o for o in os.environ.get("ASAN_OPTIONS", "").split(":") if o]
    env = {"ASAN_OPTIONS": ":".join(opts + ["detect_leaks=0"])}
    v = start_counter(api, guest, "--chroot", jail, "--uid", NOBODY, "--gid", NOBODY - 1,
                      env=env)
    t = threads(v.proc.pid)
    for name, fields in t.items():
        assert_sandboxed(fields, name)
        assert fields["Uid"].split() == [str(NOBODY)] * 4, (name, fields["Uid"])
        assert fields["Gid"].split() == [str(NOBODY - 1)] * 4, (name, fields["Gid"])
        assert fields["Groups"] == "", (name, fields["Groups"])
    assert os.readlink(f"/proc/{v.proc.pid}/root") == jail
    # Paths now resolve inside the jail: a metrics file lands there.
    assert v.put("/metrics", {"metrics_path": "/m"}).status == 204
    assert v.put("/actions", {"action_type": "FlushMetrics"}).status == 204
    st = os.stat(os.path.join(jail, "m"))
    assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY - 1)
    assert v.patch("/vm", {"state": "Paused"}).status == 204
    assert v.patch("/vm", {"state": "Resumed"}).status == 204
    assert v.stop() == vmmrun.EXIT_SIGNAL


def test_uid_alone_is_refused(vmm_bin, guest):
    r = vmmrun.run(vmm_bin, ["--kernel", guest["elf"], "--uid", "1000"])
    assert r.status == vmmrun.EXIT_USAGE
    assert "vmm: --uid: needs --gid too" in r.stderr


def test_bad_mode_is_refused(vmm_bin, guest):
    r = vmmrun.run(vmm_bin, ["--kernel", guest["elf"], "--seccomp", "trap"])
    assert r.status == vmmrun.EXIT_USAGE
    assert "vmm: --seccomp: invalid value 'trap' (expected kill, log or off)" in r.stderr


def test_help_names_the_status(vmm_bin):
    r = vmmrun.run(vmm_bin, ["--help"])
    assert "22 a forbidden system call (seccomp)" in r.stdout
    assert "--seccomp MODE" in r.stdout
