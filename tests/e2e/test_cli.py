"""The command-line contract: clear messages and distinct exit statuses."""
import os
import signal
import subprocess
import time

import pytest

import vmmrun
from vmmrun import run


def test_help_lists_every_flag(vmm_bin):
    r = run(vmm_bin, ["--help"])
    assert r.status == 0
    for flag in ["--kernel", "--initrd", "--cmdline", "--mem", "--cpus", "--console",
                 "--debug-exit", "--help", "--version"]:
        assert flag in r.stdout


def test_version(vmm_bin):
    r = run(vmm_bin, ["--version"])
    assert r.status == 0
    assert r.stdout.startswith("vmm ")


def test_kernel_required(vmm_bin):
    r = run(vmm_bin, ["--mem", "64"])
    assert r.status == vmmrun.EXIT_USAGE
    assert "--kernel is required" in r.stderr


@pytest.mark.parametrize("flag,value", [
    ("--mem", "lots"), ("--mem", "0"), ("--mem", "-1"), ("--mem", "1e3"),
    ("--cpus", "0"), ("--cpus", "65"), ("--cpus", "two"),
    ("--console", "serial"), ("--console", "file:"),
])
def test_bad_value_names_flag_and_value(vmm_bin, guest, flag, value):
    r = run(vmm_bin, ["--kernel", guest["elf"], flag, value])
    assert r.status == vmmrun.EXIT_USAGE
    assert f"{flag}: invalid value '{value}'" in r.stderr
    assert r.stdout == ""


def test_unknown_option(vmm_bin):
    r = run(vmm_bin, ["--kernel", "x", "--turbo"])
    assert r.status == vmmrun.EXIT_USAGE
    assert "unknown option '--turbo'" in r.stderr


def test_missing_kernel_file(vmm_bin, tmp_path):
    missing = tmp_path / "no-such-kernel"
    r = run(vmm_bin, ["--kernel", missing])
    assert r.status == vmmrun.EXIT_BOOT_IMAGE
    assert str(missing) in r.stderr


def test_kernel_that_is_not_a_kernel(vmm_bin, tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"this is not a kernel\n" * 100)
    r = run(vmm_bin, ["--kernel", junk])
    assert r.status == vmmrun.EXIT_BOOT_IMAGE
    assert str(junk) in r.stderr


def test_missing_initrd_file(vmm_bin, guest, tmp_path):
    r = run(vmm_bin, ["--kernel", guest["elf"], "--initrd", tmp_path / "nope"])
    assert r.status == vmmrun.EXIT_BOOT_IMAGE
    assert "nope" in r.stderr


def kvm_env(**extra):
    env = os.environ.copy()
    env.update(extra)
    return env


def test_no_kvm_device(vmm_bin, guest):
    r = run(vmm_bin, ["--kernel", guest["elf"]],
            env=kvm_env(VMM_KVM_DEVICE="/dev/no-such-kvm"))
    assert r.status == vmmrun.EXIT_NO_KVM
    assert "/dev/no-such-kvm does not exist" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_not_a_kvm_device(vmm_bin, guest):
    r = run(vmm_bin, ["--kernel", guest["elf"]], env=kvm_env(VMM_KVM_DEVICE="/dev/null"))
    assert r.status == vmmrun.EXIT_KVM_CAP
    assert "not a KVM device" in r.stderr


def test_missing_capability(vmm_bin, guest):
    r = run(vmm_bin, ["--kernel", guest["elf"]],
            env=kvm_env(VMM_TEST_MISSING_CAP="KVM_CAP_PIT2"))
    assert r.status == vmmrun.EXIT_KVM_CAP
    assert "lacks a required capability: KVM_CAP_PIT2" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_kvm_permission_denied(vmm_bin, guest):
    # /dev/kvm is root-only here; as 'nobody' the open must fail with EACCES.
    if os.stat("/dev/kvm").st_mode & 0o006:
        pytest.skip("/dev/kvm is world-accessible on this host")
    r = run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                        vmm_bin, "--kernel", guest["elf"]])
    assert r.status == vmmrun.EXIT_KVM_PERM
    assert "permission denied" in r.stderr


def test_sigterm_stops_guest_with_signal_status(vmm_bin, guest):
    proc = subprocess.Popen(
        [str(vmm_bin), "--kernel", str(guest["elf"]),
         "--cmdline", "guest.test=kvmclock guest.sleep_ms=600000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    # Wait until the guest is running: it prints its first kvmclock line.
    for _ in range(50):
        line = proc.stdout.readline()
        if not line or b"KVMCLOCK start" in line:
            break
    assert b"KVMCLOCK start" in line, "guest never started its long sleep"
    proc.send_signal(signal.SIGTERM)
    try:
        status = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert status == vmmrun.EXIT_SIGNAL
    assert b"stopped by signal" in proc.stderr.read()
