"""virtio-balloon end to end: the test guest's polling balloon driver (see
tests/guest/README.md) against the VMM, driven through the API.

The VMM's RSS must drop by (nearly) what the guest gives back and come
back when the guest takes it again; the guest's statistics must reach
GET /balloon/statistics; PATCH /balloon must move the guest; the feature
bits must follow the options; bad --balloon values are refused; a
malicious driver must not hurt the VMM. Also the API's /balloon rules,
GET /vm/config and the config file.
"""
import json
import pathlib
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import vmmrun  # noqa: E402

MIB = 1 << 20
PAGES_PER_MIB = 256
F_STATS_VQ = 1 << 1
F_DEFLATE_ON_OOM = 1 << 2
F_REPORTING = 1 << 5


def rss(pid):
    """Resident bytes of the VMM, guest RAM (a memfd: RssShmem) included."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def fields(line):
    """'BALLOON a=1 b=0x2 c' -> {'a': '1', 'b': '0x2'}."""
    return dict(w.split("=", 1) for w in line.split() if "=" in w)


def boot_balloon(api, guest, balloon, cmdline="", mem=256, extra=()):
    return api("--kernel", guest["elf"], "--debug-exit", "--mem", mem, "--console", "stdio",
               "--balloon", balloon, "--cmdline", f"guest.test=balloon {cmdline}".strip(),
               *extra)


def wait_stats(v, pred, timeout=10):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        r = v.get("/balloon/statistics")
        assert r.status == 200, r.body
        last = r.json
        if pred(last):
            return last
        time.sleep(0.1)
    raise AssertionError(f"statistics never matched: {last}")


# Guest RAM as a shared memfd (holes punched), or anonymous memory
# (MADV_DONTNEED) as --mem-merge and --mem-thp make it.
BACKINGS = {"memfd": (), "anonymous": ("--mem-merge",), "thp": ("--mem-thp",)}


@pytest.mark.parametrize("backing", BACKINGS)
def test_inflate_gives_memory_back_and_deflate_takes_it(api, guest, backing):
    """48 MiB touched; the host asks for 32 MiB, then for none, then 1 MiB."""
    v = boot_balloon(api, guest, "size=0,deflate_on_oom,stats=1,free_page_reporting",
                     extra=BACKINGS[backing])
    info = fields(v.wait_line("BALLOON base="))
    assert int(info["offered"], 16) & (F_STATS_VQ | F_DEFLATE_ON_OOM | F_REPORTING) == \
        F_STATS_VQ | F_DEFLATE_ON_OOM | F_REPORTING
    assert int(info["features"], 16) & F_DEFLATE_ON_OOM
    v.wait_line("BALLOON reported mib=4 zeroed")
    v.wait_line("BALLOON waiting round=1")
    touched = rss(v.proc.pid)

    assert v.patch("/balloon", {"amount_mib": 32}).status == 204
    v.wait_line("BALLOON round=1 target=8192 actual=8192")
    v.wait_line("BALLOON waiting round=2")
    inflated = rss(v.proc.pid)
    drop = touched - inflated
    print(f"{backing}: RSS touched {touched / MIB:.1f} MiB, inflated 32 MiB: "
          f"{inflated / MIB:.1f} MiB "
          f"(drop {drop / MIB:.1f} MiB)")
    assert drop >= 0.9 * 32 * MIB, (touched, inflated)
    st = wait_stats(v, lambda s: s["actual_pages"] == 8192)
    assert st["target_pages"] == 8192 and st["target_mib"] == 32 and st["actual_mib"] == 32
    assert v.get("/balloon").json["amount_mib"] == 32
    assert v.get("/vm/config").json["balloon"]["amount_mib"] == 32

    assert v.patch("/balloon", {"amount_mib": 0}).status == 204
    v.wait_line("BALLOON round=2 target=0 actual=0")
    v.wait_line("BALLOON waiting round=3")
    deflated = rss(v.proc.pid)
    print(f"{backing}: RSS after deflating and touching again: {deflated / MIB:.1f} MiB")
    assert deflated - inflated >= 0.9 * 32 * MIB, (inflated, deflated)

    assert v.patch("/balloon", {"amount_mib": 1}).status == 204
    v.wait_line("BALLOON round=3 target=256 actual=256")
    assert v.wait_exit() == vmmrun.EXIT_OK, v.stderr
    assert any(l == "TEST balloon PASS" for _, l in v.lines)
    assert "vmm: " not in v.stderr  # a well-behaved driver causes no warning


def test_statistics_reach_the_api(api, guest):
    v = boot_balloon(api, guest, "size=0,stats=1")
    info = fields(v.wait_line("BALLOON base="))
    total = int(info["total"])
    v.wait_line("BALLOON waiting round=1")
    # The first figures came before the guest touched its 48 MiB; the
    # next ones (the host asks every second) after.
    st = wait_stats(v, lambda s: s.get("free_memory") == total - 48 * MIB)
    assert st["total_memory"] == total
    assert st["available_memory"] == total - 48 * MIB
    # Only what the guest sent, plus the sizes.
    assert set(st) == {"target_pages", "actual_pages", "target_mib", "actual_mib",
                       "minor_faults", "free_memory", "total_memory", "available_memory"}
    # The host asks again every second: the guest's counter moves on.
    first = st["minor_faults"]
    wait_stats(v, lambda s: s["minor_faults"] >= first + 2, timeout=10)
    # A new interval asks at once.
    now = v.get("/balloon/statistics").json["minor_faults"]
    assert v.patch("/balloon/statistics", {"stats_polling_interval_s": 60}).status == 204
    wait_stats(v, lambda s: s["minor_faults"] > now, timeout=5)
    assert v.get("/balloon").json["stats_polling_interval_s"] == 60
    r = v.patch("/balloon/statistics", {"stats_polling_interval_s": 0})
    assert r.status == 400 and "cannot be turned off" in r.fault
    # The figures follow the balloon.
    assert v.patch("/balloon", {"amount_mib": 8}).status == 204
    v.wait_line("BALLOON round=1 target=2048")
    assert v.patch("/balloon/statistics", {"stats_polling_interval_s": 1}).status == 204
    wait_stats(v, lambda s: s["free_memory"] == total - 40 * MIB and s["actual_mib"] == 8)
    v.stop()


def test_no_options_no_feature_bits(api, guest):
    v = boot_balloon(api, guest, "size=0", cmdline="guest.balloon_rounds=1")
    info = fields(v.wait_line("BALLOON base="))
    assert int(info["offered"], 16) & 0xffffff == 0
    assert info["stats"] == "0" and info["reporting"] == "0"
    v.wait_line("BALLOON waiting round=1")
    r = v.get("/balloon/statistics")
    assert r.status == 400 and "statistics are not enabled" in r.fault
    r = v.patch("/balloon/statistics", {"stats_polling_interval_s": 1})
    assert r.status == 400 and "statistics are not enabled" in r.fault
    r = v.patch("/balloon", {"amount_mib": 257})
    assert r.status == 400 and "more than the guest's RAM (256 MiB)" in r.fault
    r = v.put("/balloon", {"amount_mib": 1, "deflate_on_oom": False})
    assert r.status == 400 and "can only be set before InstanceStart" in r.fault
    assert v.patch("/balloon", {"amount_mib": 2}).status == 204
    v.wait_line("BALLOON round=1 target=512 actual=512")
    assert v.wait_exit() == vmmrun.EXIT_OK, v.stderr


def test_target_at_boot(vmm_bin, guest):
    """The size given at boot is the first target: the guest follows it
    without the API."""
    r = vmmrun.run(vmm_bin, ["--kernel", guest["elf"], "--debug-exit", "--mem", "128",
                             "--balloon", "size=16,deflate_on_oom",
                             "--cmdline", "guest.test=balloon guest.balloon_rounds=1 "
                             "guest.balloon_touch_mib=20"], timeout=60)
    assert "BALLOON round=1 target=4096 actual=4096" in r.stdout, r.stdout + r.stderr
    assert r.status == vmmrun.EXIT_OK, r.stderr


def test_evil_driver(api, guest):
    v = api("--kernel", guest["elf"], "--debug-exit", "--mem", "256", "--console", "stdio",
            "--balloon", "size=0,stats=3600,free_page_reporting",
            "--cmdline", "guest.test=balloon_evil")
    v.wait_line("BALLOON evil: bad PFNs and page lists refused")
    v.wait_line("BALLOON evil: bad statistics, reports and config writes refused")
    v.wait_line("BALLOON evil: runaway avail index -> NEEDS_RESET, reset recovers")
    assert v.wait_exit() == vmmrun.EXIT_OK, v.stderr
    assert any(l == "TEST balloon_evil PASS" for _, l in v.lines), v.lines[-10:]
    # Warned, but rate-limited: a guest cannot flood the host's log.
    warnings = [l for l in v.err if "virtio-balloon" in l]
    assert warnings and len(warnings) < 40, v.stderr


def test_evil_driver_keeps_the_api_serving(api, guest, tmp_path):
    """The same guest, configured through the API: afterwards the VMM still
    answers, with the damage counted, and the guest still follows it."""
    metrics = tmp_path / "metrics.json"
    v = api("--console", "stdio", "--debug-exit")
    assert v.put("/boot-source", {"kernel_image_path": str(guest["elf"]),
                                  "boot_args": "guest.test=balloon_evil guest.balloon_hold=1"}
                 ).status == 204
    assert v.put("/balloon", {"amount_mib": 0, "deflate_on_oom": False,
                              "stats_polling_interval_s": 3600,
                              "free_page_reporting": True}).status == 204
    assert v.put("/metrics", {"metrics_path": str(metrics)}).status == 204
    assert v.put("/actions", {"action_type": "InstanceStart"}).status == 204
    v.wait_line("BALLOON evil: holding at target=0")
    st = v.get("/balloon/statistics")
    assert st.status == 200 and st.json["total_memory"] > 120 * MIB, st.body
    assert v.put("/actions", {"action_type": "FlushMetrics"}).status == 204
    m = json.loads(metrics.read_text().splitlines()[-1])["balloon"]
    assert m["bad_pfns"] >= 16 and m["bad_chains"] >= 6 and m["stats_malformed"] >= 2, m
    assert m["inflated_pages"] == 3  # the only valid PFNs it sent
    assert v.patch("/balloon", {"amount_mib": 1}).status == 204
    assert v.wait_exit() == vmmrun.EXIT_OK, v.stderr
    assert any(l == "TEST balloon_evil PASS" for _, l in v.lines), v.lines[-10:]


def test_counters_in_metrics(api, guest, tmp_path):
    metrics = tmp_path / "metrics.json"
    v = api("--console", "stdio", "--debug-exit")
    assert v.put("/boot-source", {"kernel_image_path": str(guest["elf"]),
                                  "boot_args": "guest.test=balloon"}).status == 204
    assert v.put("/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}).status == 204
    assert v.put("/balloon", {"amount_mib": 0, "deflate_on_oom": True}).status == 204
    assert v.put("/metrics", {"metrics_path": str(metrics)}).status == 204
    assert v.put("/actions", {"action_type": "InstanceStart"}).status == 204
    v.wait_line("BALLOON waiting round=1")
    assert v.patch("/balloon", {"amount_mib": 4}).status == 204
    v.wait_line("BALLOON waiting round=2")
    assert v.put("/actions", {"action_type": "FlushMetrics"}).status == 204
    m = json.loads(metrics.read_text().splitlines()[-1])["balloon"]
    assert m["inflated_pages"] == 1024 and m["deflated_pages"] == 0
    assert m["bad_pfns"] == 0 and m["bad_chains"] == 0 and m["discard_errors"] == 0
    v.stop()


# ---- the command line ----

@pytest.mark.parametrize("value,why", [
    ("", "empty value"),
    ("deflate_on_oom", "size=MIB is required"),
    ("size=lots", "bad size 'lots'"),
    ("size=-4", "bad size '-4'"),
    ("size=1048577", "bad size '1048577'"),
    ("size=4,stats=-1", "bad stats interval '-1'"),
    ("size=4,stats=65536", "bad stats interval '65536'"),
    ("size=4,deflate_on_oom=yes", "unknown option 'deflate_on_oom=yes'"),
    ("size=4,hinting", "unknown option 'hinting'"),
    ("size=4,size=8", "'size' given twice"),
    ("size=4,", "empty option"),
])
def test_bad_balloon_values(vmm_bin, guest, value, why):
    r = vmmrun.run(vmm_bin, ["--kernel", guest["elf"], "--balloon", value], timeout=10)
    assert r.status == vmmrun.EXIT_USAGE
    assert f"vmm: --balloon: invalid value '{value}' ({why}" in r.stderr, r.stderr
    assert "GUEST" not in r.stdout


def test_balloon_twice_and_too_big(vmm_bin, guest):
    r = vmmrun.run(vmm_bin, ["--kernel", guest["elf"], "--balloon", "size=1",
                             "--balloon", "size=2"], timeout=10)
    assert r.status == vmmrun.EXIT_USAGE
    assert "vmm: --balloon: given twice at 'size=2'" in r.stderr
    r = vmmrun.run(vmm_bin, ["--kernel", guest["elf"], "--mem", "64",
                             "--balloon", "size=65"], timeout=10)
    assert r.status == vmmrun.EXIT_USAGE
    assert "balloon amount_mib (--balloon size) 65 is more than the guest's RAM (64 MiB)" \
        in r.stderr


def test_help_mentions_balloon(vmm_bin):
    r = vmmrun.run(vmm_bin, ["--help"], timeout=10)
    assert "--balloon size=MIB[,deflate_on_oom][,stats=SECS][,free_page_reporting]" in r.stdout


# ---- the API before boot, the configuration ----

def test_api_rules_before_boot(api):
    v = api("--console", "none")
    r = v.get("/balloon")
    assert r.status == 400 and "no balloon device is configured" in r.fault
    r = v.put("/balloon", {"amount_mib": 200, "deflate_on_oom": False})
    assert r.status == 400 and "more than the guest's RAM (128 MiB)" in r.fault
    r = v.put("/balloon", {"amount_mib": 1, "deflate_on_oom": False, "free_page_hinting": True})
    assert r.status == 400 and "free page hinting is not supported" in r.fault
    r = v.put("/balloon", {"amount_mib": 1, "deflate_on_oom": "no"})
    assert r.status == 400 and "deflate_on_oom: expected a boolean" in r.fault
    assert v.put("/balloon", {"amount_mib": 64, "deflate_on_oom": True,
                              "stats_polling_interval_s": 0}).status == 204
    r = v.get("/balloon/statistics")
    assert r.status == 400 and "statistics are not enabled" in r.fault
    assert v.patch("/balloon/statistics", {"stats_polling_interval_s": 3}).status == 204
    r = v.get("/balloon/statistics")
    assert r.status == 400 and "needs a started microVM" in r.fault
    assert v.patch("/balloon", {"amount_mib": 16}).status == 204
    assert v.get("/balloon").json == {"amount_mib": 16, "deflate_on_oom": True,
                                      "stats_polling_interval_s": 3,
                                      "free_page_reporting": False}
    assert v.get("/vm/config").json["balloon"]["amount_mib"] == 16
    r = v.request("PATCH", "/balloon/hinting/start", {})
    assert r.status == 400 and "not supported by this VMM yet" in r.fault
    r = v.request("DELETE", "/balloon")
    assert r.status == 405 and r.headers.get("Allow") == "GET, PUT, PATCH"


def test_config_file_round_trip(api, vmm_bin, guest, tmp_path):
    v = api("--debug-exit")
    assert v.put("/boot-source", {"kernel_image_path": str(guest["elf"]),
                                  "boot_args": "guest.test=balloon guest.balloon_rounds=1 "
                                               "guest.balloon_touch_mib=8"}).status == 204
    assert v.put("/balloon", {"amount_mib": 4, "deflate_on_oom": True,
                              "stats_polling_interval_s": 1,
                              "free_page_reporting": True}).status == 204
    exported = v.get("/vm/config").json
    v.stop()
    assert exported["balloon"] == {"amount_mib": 4, "deflate_on_oom": True,
                                   "stats_polling_interval_s": 1, "free_page_reporting": True}
    f = tmp_path / "vm.json"
    f.write_text(json.dumps(exported))
    r = vmmrun.run(vmm_bin, ["--config-file", f], timeout=60)
    assert "BALLOON round=1 target=1024 actual=1024" in r.stdout, r.stdout + r.stderr
    assert r.status == vmmrun.EXIT_OK, r.stderr
    exported["balloon"]["amount_mib"] = 129
    f.write_text(json.dumps(exported))
    r = vmmrun.run(vmm_bin, ["--config-file", f], timeout=10)
    assert r.status == vmmrun.EXIT_USAGE
    assert "more than the guest's RAM (128 MiB)" in r.stderr
