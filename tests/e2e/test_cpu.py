"""CPU models (--cpu MODEL[,+FEATURE][,-FEATURE]...) and nesting, end to end.

The suite runs against the default build and the minimal one: what the
nested module provides ("host", vmx, svm) boots with it and is refused as
"not built in" without it (the binary's --version says which it is).

The guest-visible effect of a model needs hardware virtualization: on this
project's PVM hosts the guest's CPUID returns the host's values whatever
the VMM sets. What is checked here is the contract: what boots, what is
refused, with which message and status, before anything starts. The table
KVM holds per vCPU is checked by the unit tests (test_cpu_model,
test_mod_nested).
"""
import array
import fcntl
import os
import pathlib

import pytest

import vmmrun
from vmmrun import run

NOT_BUILT = ('not built in (module nested; build with make MODULES="... nested")')

# <linux/kvm.h>
KVM_CHECK_EXTENSION = 0xAE03
KVM_GET_SUPPORTED_CPUID = 0xC008AE05  # _IOWR(KVMIO, 0x05, struct kvm_cpuid2)
KVM_CAP_NESTED_STATE = 157

REGS = {"eax": 0, "ebx": 1, "ecx": 2, "edx": 3}

# (name, leaf, subleaf, register, bit): features outside the baseline, to
# show one this host's KVM supports and to ask for one it does not.
EXTRAS = [
    ("invtsc", 0x80000007, 0, "edx", 8),
    ("clflushopt", 7, 0, "ebx", 23),
    ("3dnowprefetch", 0x80000001, 0, "ecx", 8),
    ("avx512f", 7, 0, "ebx", 16),
    ("la57", 7, 0, "ecx", 16),
    ("avx512er", 7, 0, "ebx", 27),
    ("avx512_4fmaps", 7, 0, "edx", 3),
    ("amx_tile", 7, 0, "edx", 24),
    ("serialize", 7, 0, "edx", 14),
]


def kvm_supported_cpuid():
    """{(leaf, subleaf): (eax, ebx, ecx, edx)} from KVM_GET_SUPPORTED_CPUID."""
    n = 512
    buf = bytearray(8 + 40 * n)
    buf[0:4] = n.to_bytes(4, "little")
    fd = os.open("/dev/kvm", os.O_RDWR)
    try:
        fcntl.ioctl(fd, KVM_GET_SUPPORTED_CPUID, buf)
    finally:
        os.close(fd)
    nent = int.from_bytes(buf[0:4], "little")
    table = {}
    for i in range(nent):
        e = array.array("I", bytes(buf[8 + 40 * i: 8 + 40 * (i + 1)]))
        function, index, flags, eax, ebx, ecx, edx = e[:7]
        table[(function, index if flags & 1 else 0)] = (eax, ebx, ecx, edx)
    return table


def has(table, feature):
    _, leaf, sub, reg, bit = feature
    regs = table.get((leaf, sub))
    return bool(regs and (regs[REGS[reg]] >> bit) & 1)


def host_vendor(table):
    ebx = table[(0, 0)][1]
    return {0x756E6547: "Intel", 0x68747541: "AMD", 0x6F677948: "AMD"}.get(ebx, "other")


def intel_or_amd(table):
    """host_vendor(), skipping the test on a host that is neither (the
    vendor-specific cases have nothing to ask it)."""
    vendor = host_vendor(table)
    if vendor == "other":
        pytest.skip("neither Intel nor AMD")
    return vendor


def kvm_cap(cap):
    fd = os.open("/dev/kvm", os.O_RDWR)
    try:
        return fcntl.ioctl(fd, KVM_CHECK_EXTENSION, cap)
    finally:
        os.close(fd)


@pytest.fixture(scope="session")
def supported():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.skip("/dev/kvm is not usable")
    return kvm_supported_cpuid()


def boot_hello(vmm_bin, guest, *extra):
    return run(vmm_bin, ["--kernel", guest["elf"], "--cmdline", "guest.test=hello",
                         "--debug-exit", *extra], timeout=60)


def explain(r):
    return f"status {r.status}\n--- stdout:\n{r.stdout}--- stderr:\n{r.stderr}"


def assert_boots(r):
    assert r.status == vmmrun.EXIT_OK, explain(r)
    assert "TEST hello PASS" in r.stdout.splitlines(), explain(r)


def assert_refused(r, status, message):
    """Refused before anything started: the one message, no guest output."""
    assert r.status == status, explain(r)
    assert r.stderr == f"vmm: {message}\n", explain(r)
    assert r.stdout == "", explain(r)


# ---- --cpu help --------------------------------------------------------------

def test_help_lists_models_and_features(vmm_bin, modules):
    r = run(vmm_bin, ["--cpu", "help"])
    assert r.status == 0, explain(r)
    assert "  baseline   the default" in r.stdout
    for feature in [" avx2*", " x2apic*", " avx512f ", " invtsc "]:
        assert feature in r.stdout
    if "nested" in modules:
        assert "  host       everything this host's KVM supports" in r.stdout
        assert "  vmx svm (module nested)" in r.stdout
    else:
        assert "Not built in: host, vmx, svm (module nested)" in r.stdout
    assert "--cpu MODEL" in run(vmm_bin, ["--help"]).stdout


# ---- the default model and +/- features ----------------------------------------

@pytest.mark.parametrize("spec", [
    "baseline",
    "-tsc-deadline",
    "baseline,-x2apic,-hypervisor",
    "+tsc_deadline,-arat",
])
def test_baseline_and_edits_boot(vmm_bin, guest, spec):
    assert_boots(boot_hello(vmm_bin, guest, "--cpu", spec))


def test_baseline_smp_boots(vmm_bin, guest):
    r = run(vmm_bin, ["--kernel", guest["elf"], "--cmdline", "guest.test=smp", "--debug-exit",
                      "--cpus", "2", "--cpu", "baseline"], timeout=60)
    assert r.status == vmmrun.EXIT_OK, explain(r)
    assert r.line_starting("SMP cpus=") == "SMP cpus=2 online=2", explain(r)


def test_supported_extra_feature_boots(vmm_bin, guest, supported):
    extra = next((f for f in EXTRAS if has(supported, f)), None)
    if extra is None:
        pytest.skip("KVM supports none of the candidate features")
    assert_boots(boot_hello(vmm_bin, guest, "--cpu", f"baseline,+{extra[0]}"))


def test_unsupported_feature_refused_before_boot(vmm_bin, guest, supported):
    missing = next((f for f in EXTRAS if not has(supported, f)), None)
    if missing is None:
        pytest.skip("KVM supports every candidate feature")
    name = missing[0]
    r = boot_hello(vmm_bin, guest, "--cpu", f"+{name}")
    assert_refused(r, vmmrun.EXIT_KVM_CAP,
                   f"--cpu +{name}: this host's KVM does not support {name} "
                   "(KVM_GET_SUPPORTED_CPUID)")


def test_other_vendors_feature_refused(vmm_bin, guest, supported):
    vendor = intel_or_amd(supported)
    # sse4a is AMD's; Intel's own features are in leaves both share, so
    # the AMD case asks for nothing here.
    if vendor != "Intel":
        pytest.skip("no Intel-only core feature to ask an AMD host for")
    r = boot_hello(vmm_bin, guest, "--cpu", "+sse4a")
    assert_refused(r, vmmrun.EXIT_KVM_CAP, "--cpu +sse4a: sse4a is AMD's and this host is Intel")


@pytest.mark.parametrize("spec,why", [
    ("skylake", "unknown model 'skylake'; see vmm --cpu help"),
    ("baseline,+avx3", "unknown feature 'avx3'; see vmm --cpu help"),
    ("baseline,avx2", "expected +FEATURE or -FEATURE, got 'avx2'"),
    ("+avx2,-avx2", "feature 'avx2' given twice"),
    ("baseline,", "empty item"),
])
def test_bad_spec_refused(vmm_bin, guest, spec, why):
    r = boot_hello(vmm_bin, guest, "--cpu", spec)
    assert_refused(r, vmmrun.EXIT_USAGE, f"--cpu: invalid value '{spec}' ({why})")


# ---- the nested module: host, vmx, svm -------------------------------------------

@pytest.mark.parametrize("spec,item", [
    ("host", "host"),
    ("host,-x2apic", "host"),
    ("+vmx", "+vmx"),
    ("baseline,+svm", "+svm"),
    ("-vmx", "-vmx"),
])
def test_minimal_build_refuses_nested_names(vmm_bin, guest, modules, spec, item):
    if "nested" in modules:
        pytest.skip("the nested module is built in")
    r = boot_hello(vmm_bin, guest, "--cpu", spec)
    assert_refused(r, vmmrun.EXIT_USAGE, f"--cpu {item}: {NOT_BUILT}")


@pytest.mark.parametrize("spec", ["host", "host,-x2apic,-tsc-deadline", "host,-vmx,-svm"])
def test_host_model_boots(vmm_bin, guest, modules, spec):
    if "nested" not in modules:
        pytest.skip("needs the nested module")
    assert_boots(boot_hello(vmm_bin, guest, "--cpu", spec))


def nesting_facts(vendor):
    """(kvm module, its `nested` parameter: 1, 0 or -1 not loaded, cap)."""
    mod = "kvm_amd" if vendor == "AMD" else "kvm_intel"
    path = pathlib.Path(f"/sys/module/{mod}/parameters/nested")
    param = -1
    if path.exists():
        param = 1 if path.read_text().strip() in ("Y", "1") else 0
    return mod, param, kvm_cap(KVM_CAP_NESTED_STATE) > 0


def test_nesting_unavailable_says_what_is_missing(vmm_bin, guest, modules, supported):
    if "nested" not in modules:
        pytest.skip("needs the nested module")
    vendor = intel_or_amd(supported)
    ext, hw = ("svm", "AMD-V") if vendor == "AMD" else ("vmx", "VT-x")
    mod, param, cap = nesting_facts(vendor)
    if param == 1 and cap:
        pytest.skip("this host can run nested guests")
    missing = []
    if param < 0:
        missing.append(f"{mod} is not loaded (no /sys/module/{mod}/parameters/nested)")
    elif param == 0:
        missing.append(f"nesting is off in {mod} (/sys/module/{mod}/parameters/nested)")
    if not cap:
        missing.append("KVM does not report KVM_CAP_NESTED_STATE")
    what = ", and ".join(missing)
    if param == 1:
        want = (f"--cpu +{ext}: this host cannot run nested guests: {what} "
                "(Linux 4.19 or later has it)")
    else:
        want = (f"--cpu +{ext}: this host cannot run nested guests: {what}. On a host with "
                f"{hw}, enable nesting with: modprobe -r {mod} && modprobe {mod} nested=1")
    r = boot_hello(vmm_bin, guest, "--cpu", f"baseline,+{ext}")
    assert_refused(r, vmmrun.EXIT_KVM_CAP, want)


def test_pvm_host_exact_nesting_error(vmm_bin, guest, modules, supported):
    """This project's machines: KVM on PVM, Intel, no kvm_intel, no
    KVM_CAP_NESTED_STATE. The message, word for word."""
    if "nested" not in modules:
        pytest.skip("needs the nested module")
    if not (host_vendor(supported) == "Intel" and pathlib.Path("/sys/module/kvm_pvm").exists()
            and not pathlib.Path("/sys/module/kvm_intel").exists()):
        pytest.skip("not a PVM host")
    assert kvm_cap(KVM_CAP_NESTED_STATE) == 0
    r = boot_hello(vmm_bin, guest, "--cpu", "+vmx")
    assert_refused(
        r, vmmrun.EXIT_KVM_CAP,
        "--cpu +vmx: this host cannot run nested guests: kvm_intel is not loaded (no "
        "/sys/module/kvm_intel/parameters/nested), and KVM does not report "
        "KVM_CAP_NESTED_STATE. On a host with VT-x, enable nesting with: modprobe -r kvm_intel "
        "&& modprobe kvm_intel nested=1")


def test_wrong_vendor_extension_refused(vmm_bin, guest, modules, supported):
    if "nested" not in modules:
        pytest.skip("needs the nested module")
    vendor = intel_or_amd(supported)
    wrong, right, owner = ("svm", "vmx", "AMD") if vendor == "Intel" else ("vmx", "svm", "Intel")
    r = boot_hello(vmm_bin, guest, "--cpu", f"+{wrong}")
    assert_refused(r, vmmrun.EXIT_KVM_CAP,
                   f"--cpu +{wrong}: {wrong} is {owner}'s hardware virtualization and this "
                   f"host is {vendor}: ask for +{right} instead")


# ---- through the API: a refused model is a 400, and the VMM waits on ----

def test_api_start_refuses_unsupported_feature_and_keeps_serving(vmm_bin, guest, supported,
                                                                 tmp_path):
    from apiclient import Vmm
    missing = next((f for f in EXTRAS if not has(supported, f)), None)
    if missing is None:
        pytest.skip("KVM supports every candidate feature")
    v = Vmm(vmm_bin, [])
    try:
        assert v.put("/boot-source", {"kernel_image_path": str(guest["elf"]),
                                      "boot_args": "guest.test=hello"}).status == 204
        cfg = v.get("/vm/config").json
        assert cfg["vmm-options"]["cpu"] == "baseline"
        r = v.put("/actions", {"action_type": "InstanceStart"})
        assert r.status == 204, r.fault
        v.wait_line("TEST hello PASS")
    finally:
        v.stop()
        v.close()
    # The same model from a config file that asks for what KVM lacks.
    conf = tmp_path / "vm.json"
    conf.write_text('{"vmm-options": {"cpu": "baseline,+%s"}}' % missing[0])
    v = Vmm(vmm_bin, ["--console", "none", "--config-file", conf])
    try:
        assert v.get("/vm/config").json["vmm-options"]["cpu"] == f"baseline,+{missing[0]}"
        assert v.put("/boot-source", {"kernel_image_path": str(guest["elf"])}).status == 204
        r = v.put("/actions", {"action_type": "InstanceStart"})
        assert r.status == 400
        assert f"this host's KVM does not support {missing[0]}" in r.fault, r.fault
        assert v.state() == "Not started"
    finally:
        v.stop()
        v.close()


def test_api_start_gives_the_whole_nesting_message(vmm_bin, guest, modules, supported,
                                                   tmp_path):
    from apiclient import Vmm
    if "nested" not in modules:
        pytest.skip("needs the nested module")
    mod, param, cap = nesting_facts(host_vendor(supported))
    if param == 1 and cap:
        pytest.skip("this host can run nested guests")
    ext = "svm" if host_vendor(supported) == "AMD" else "vmx"
    conf = tmp_path / "vm.json"
    conf.write_text('{"vmm-options": {"cpu": "baseline,+%s"}}' % ext)
    v = Vmm(vmm_bin, ["--console", "none", "--config-file", conf])
    try:
        assert v.put("/boot-source", {"kernel_image_path": str(guest["elf"])}).status == 204
        r = v.put("/actions", {"action_type": "InstanceStart"})
        assert r.status == 400
        # Nothing cut off: the message ends with the way to fix it.
        assert r.fault.rstrip().endswith("nested=1") or "Linux 4.19" in r.fault, r.fault
        assert v.state() == "Not started"
    finally:
        v.stop()
        v.close()
