"""Guest RAM options: hugetlb pages (the hugepages module), transparent huge
pages, KSM merging, overcommit and vCPU pinning.

The tests that need a host setting (a hugetlb pool, THP "madvise", KSM
running) set it themselves and put it back afterwards. The guest's
`memhold` test fills guest.fill_mib MiB and then idles, so the host can
read the VMM's smaps while the memory is held.
"""
import contextlib
import os
import pathlib
import time

import pytest

from apiclient import Vmm

MIB = 1 << 20
HUGE2M = pathlib.Path("/sys/kernel/mm/hugepages/hugepages-2048kB")
THP = pathlib.Path("/sys/kernel/mm/transparent_hugepage/enabled")
KSM = pathlib.Path("/sys/kernel/mm/ksm")


@contextlib.contextmanager
def sysfs(path, value):
    """Write value into a sysfs knob for the duration; restore it after.
    THP's file reads "always [madvise] never": the bracketed word is the
    setting."""
    old = path.read_text().strip()
    if "[" in old:
        old = old.split("[")[1].split("]")[0]
    path.write_text(str(value))
    try:
        yield
    finally:
        path.write_text(old)


def hold(vmm_bin, guest, fill_mib, extra=(), seed=1, mem=128):
    """A VMM whose guest holds fill_mib MiB of filled RAM; returns it once
    the guest said so."""
    v = Vmm(vmm_bin, ["--kernel", guest["elf"], "--mem", mem, "--cmdline",
                      f"guest.test=memhold guest.fill_mib={fill_mib} guest.fill_seed={seed}",
                      *extra], api=False)
    v.wait_line("MEMHOLD filled_mib=", timeout=60)
    return v


def ram_mapping(pid, mem_mib):
    """The smaps fields (kB) of the mapping that is the guest's RAM: the
    one exactly mem_mib MiB long."""
    fields, current = None, None
    for line in pathlib.Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(x, 16) for x in head.split("-"))
            current = {"_size": hi - lo, "_line": line}
            if hi - lo == mem_mib * MIB:
                fields = current
            continue
        if current is not None and head.endswith(":") and len(line.split()) >= 2:
            try:
                current[head[:-1]] = int(line.split()[1])
            except ValueError:
                current[head[:-1]] = line.split()[1]
    assert fields, f"no {mem_mib} MiB mapping in /proc/{pid}/smaps"
    return fields


def rss_kib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# ---- hugepages (module) ----

def test_hugepages_back_guest_ram(vmm_bin, guest, modules):
    if "hugepages" not in modules:
        pytest.skip("covered by test_hugepages_not_built_in in this build")
    want = 64 + 8  # 128 MiB of guest RAM, plus slack for other users
    nr = int((HUGE2M / "nr_hugepages").read_text())
    with sysfs(HUGE2M / "nr_hugepages", nr + want):
        assert int((HUGE2M / "free_hugepages").read_text()) >= 64, "pool did not grow"
        v = hold(vmm_bin, guest, 32, ["--mem-hugepages", "2M"])
        try:
            m = ram_mapping(v.proc.pid, 128)
            assert m["KernelPageSize"] == 2048, m
            # What the guest filled sits on hugetlb pages; the rest of its
            # RAM is reserved in the pool, so it cannot fail later.
            assert m["Shared_Hugetlb"] + m["Private_Hugetlb"] >= 32 * 1024, m
            total = int((HUGE2M / "nr_hugepages").read_text())
            free = int((HUGE2M / "free_hugepages").read_text())
            resv = int((HUGE2M / "resv_hugepages").read_text())
            assert (total - free) + resv >= 64, (total, free, resv)
        finally:
            v.stop()
            v.close()


def test_hugepages_pool_too_small_says_how_many(vmm_bin, guest, modules, tmp_path):
    if "hugepages" not in modules:
        pytest.skip("covered by test_hugepages_not_built_in in this build")
    with sysfs(HUGE2M / "nr_hugepages", 0):
        v = Vmm(vmm_bin, ["--kernel", guest["elf"], "--mem", "256", "--mem-hugepages", "2M"],
                api=False)
        status = v.wait_exit()
        v.close()
    assert status == 12, v.stderr
    assert "needs 128 hugetlb pages of 2 MiB, but only 0" in v.stderr
    assert "echo 128 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages" in v.stderr


@pytest.mark.parametrize("args,text", [
    (["--mem", "1000", "--mem-hugepages", "1G"], "must be a multiple of 1024 MiB"),
    (["--mem-hugepages", "2G"], "--mem-hugepages: invalid value '2G' (expected 2M or 1G)"),
    (["--mem-merge", "--mem-hugepages", "2M"], "KSM does not merge hugetlb pages"),
    (["--mem-thp", "--mem-hugepages", "2M"], "cannot be combined with --mem-thp"),
])
def test_hugepages_bad_options(vmm_bin, guest, modules, args, text):
    if "hugepages" not in modules:
        pytest.skip("covered by test_hugepages_not_built_in in this build")
    v = Vmm(vmm_bin, ["--kernel", guest["elf"], *args], api=False)
    status = v.wait_exit()
    v.close()
    assert status == 2 and text in v.stderr, v.stderr


def test_hugepages_not_built_in(vmm_bin, guest, modules, tmp_path):
    if "hugepages" in modules:
        pytest.skip("the module is built in")
    v = Vmm(vmm_bin, ["--kernel", guest["elf"], "--mem-hugepages", "2M"], api=False)
    assert v.wait_exit() == 2
    v.close()
    assert "--mem-hugepages: not built in (module hugepages" in v.stderr
    # The config file reaches the same field another way.
    cfg = tmp_path / "vm.json"
    cfg.write_text('{"boot-source": {"kernel_image_path": "%s"}, "machine-config": '
                   '{"vcpu_count": 1, "mem_size_mib": 128, "huge_pages": "2M"}}' % guest["elf"])
    v = Vmm(vmm_bin, ["--config-file", cfg], api=False)
    assert v.wait_exit() == 2
    v.close()
    assert "huge_pages: '2M' needs hugetlb pages: not built in (module hugepages)" in v.stderr


def test_hugepages_through_the_api(vmm_bin, guest, modules):
    """machine-config's huge_pages: accepted with the module, refused by
    name without it; either way the VMM goes on serving."""
    v = Vmm(vmm_bin, ["--console", "none"])
    try:
        r = v.put("/machine-config", {"vcpu_count": 1, "mem_size_mib": 128, "huge_pages": "2M"})
        if "hugepages" in modules:
            assert r.status == 204, r.fault
            assert v.get("/machine-config").json["huge_pages"] == "2M"
        else:
            assert r.status == 400
            assert "huge_pages: '2M' needs hugetlb pages: not built in (module hugepages)" \
                in r.fault
            assert v.get("/machine-config").json["huge_pages"] == "None"
        r = v.put("/machine-config", {"vcpu_count": 1, "mem_size_mib": 128,
                                      "huge_pages": "Transparent"})
        assert r.status == 204, r.fault
        assert v.get("/machine-config").json["huge_pages"] == "Transparent"
    finally:
        v.stop()
        v.close()


# ---- transparent huge pages, KSM, overcommit ----

def test_thp_backs_guest_ram(vmm_bin, guest):
    with sysfs(THP, "madvise"):
        v = hold(vmm_bin, guest, 64, ["--mem-thp"])
        try:
            m = ram_mapping(v.proc.pid, 128)
            # At least half of what the guest filled sits on 2 MiB pages.
            assert m["AnonHugePages"] >= 32 * 1024, m
        finally:
            v.stop()
            v.close()


def test_without_thp_no_huge_pages(vmm_bin, guest):
    with sysfs(THP, "madvise"):
        v = hold(vmm_bin, guest, 64)
        try:
            m = ram_mapping(v.proc.pid, 128)
            assert m.get("AnonHugePages", 0) == 0 and m.get("ShmemPmdMapped", 0) == 0, m
        finally:
            v.stop()
            v.close()


def ksm_sharing():
    return int((KSM / "pages_sharing").read_text())


@pytest.mark.parametrize("merge", [True, False])
def test_ksm_merges_identical_guests(vmm_bin, guest, merge):
    """Two guests fill 32 MiB with the same pages: with --mem-merge KSM
    shares them (pages_sharing rises by thousands of their 8192 pages); without it,
    nothing is shared."""
    extra = ["--mem-merge"] if merge else []
    with sysfs(KSM / "pages_to_scan", 20000), sysfs(KSM / "sleep_millisecs", 10), \
            sysfs(KSM / "run", 1):
        before = ksm_sharing()
        vms = [hold(vmm_bin, guest, 32, extra, seed=7) for _ in range(2)]
        try:
            want = 8192 // 2  # KSM scans slowly on a busy host: half is proof
            end = time.monotonic() + (60 if merge else 3)
            while time.monotonic() < end and ksm_sharing() - before < want:
                time.sleep(0.2)
            gained = ksm_sharing() - before
        finally:
            for v in vms:
                v.stop()
                v.close()
    if merge:
        assert gained >= want, f"pages_sharing rose by {gained}, want >= {want}"
    else:
        assert gained < 256, f"pages_sharing rose by {gained} without --mem-merge"


def test_overcommit_guest_larger_than_host(vmm_bin, guest):
    """A guest with more RAM than the host has: it boots, sees all of it in
    its memory map, and the host pays only for what it touches."""
    host_kib = int(pathlib.Path("/proc/meminfo").read_text().split()[1])
    mem_mib = ((host_kib // 1024) * 2 // 1024 + 1) * 1024  # 2x the host, in GiB steps
    v = hold(vmm_bin, guest, 64, mem=mem_mib)
    try:
        m = ram_mapping(v.proc.pid, mem_mib)
        assert m["_size"] == mem_mib * MIB
        assert rss_kib(v.proc.pid) < 256 * 1024, rss_kib(v.proc.pid)
    finally:
        v.stop()
        v.close()


# ---- vCPU pinning ----

def vcpu_cpus(pid):
    """{thread name: Cpus_allowed_list} of the vCPU threads."""
    out = {}
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        name = (task / "comm").read_text().strip()
        if name.startswith("vcpu"):
            for line in (task / "status").read_text().splitlines():
                if line.startswith("Cpus_allowed_list:"):
                    out[name] = line.split()[1]
    return out


@pytest.mark.skipif(os.cpu_count() < 2, reason="needs two host CPUs")
def test_cpu_affinity_pins_vcpus(vmm_bin, guest):
    v = Vmm(vmm_bin, ["--kernel", guest["elf"], "--cpus", "2", "--cpu-affinity", "1,0",
                      "--cmdline", "guest.test=counter"], api=False)
    try:
        v.wait_line("COUNTER 2 ")
        assert vcpu_cpus(v.proc.pid) == {"vcpu0": "1", "vcpu1": "0"}
    finally:
        v.stop()
        v.close()


def test_no_affinity_leaves_vcpus_free(vmm_bin, guest):
    v = Vmm(vmm_bin, ["--kernel", guest["elf"], "--cpus", "2", "--cmdline",
                      "guest.test=counter"], api=False)
    try:
        v.wait_line("COUNTER 2 ")
        allowed = vcpu_cpus(v.proc.pid)
        assert set(allowed) == {"vcpu0", "vcpu1"}
        assert all(a == f"0-{os.cpu_count() - 1}" for a in allowed.values()), allowed
    finally:
        v.stop()
        v.close()


@pytest.mark.parametrize("args,text", [
    (["--cpus", "2", "--cpu-affinity", "0"], "cpu affinity lists 1 host CPUs for 2 vCPUs"),
    (["--cpu-affinity", "1023"], "vCPU 0 cannot run on host CPU 1023"),
    (["--cpu-affinity", "0,x"], "--cpu-affinity: invalid value '0,x'"),
])
def test_cpu_affinity_errors(vmm_bin, guest, args, text):
    v = Vmm(vmm_bin, ["--kernel", guest["elf"], *args], api=False)
    status = v.wait_exit()
    v.close()
    assert status == 2 and text in v.stderr, v.stderr
