"""virtio-net end to end: the test guest's polling virtio-net driver
(tests/guest/netdev.c: ARP, ICMP echo, UDP echo on port 7) against the VMM
on a tap.

Every test makes its own network namespace with its taps inside it and
runs the VMM and the peer (tests/e2e/nethelper.py) in there with
`ip netns exec`, so no packet ever leaves it; fixture finalizers kill the
VMMs and delete the namespace (and with it the taps) on every path.

Covers ping and UDP echo with and without offloads and mergeable buffers,
frames spanning several receive buffers, the configured MAC as the host
sees it, two NICs at once, a tap the VMM creates, a tap passed as fd=N,
the tap going away, bad --net values, a missing tap without permission
to create it, a busy tap, vhost=on / vhost=auto without vhost-net, and
an interface configured through the API (PUT /network-interfaces).
"""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import vmmrun  # noqa: E402

HELPER = pathlib.Path(__file__).resolve().parent / "nethelper.py"
PYTHON = "/usr/bin/python3"
GUEST_IP, HOST_IP = "10.0.2.15", "10.0.2.2"
GUEST_IP1, HOST_IP1 = "10.0.3.15", "10.0.3.2"
MAC0, MAC1 = "52:54:00:ab:cd:01", "52:54:00:ab:cd:02"
NO_VHOST = "/nonexistent/vmm-test-vhost-net"  # VMM_VHOST_NET_DEVICE: never there

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/net/tun") or not shutil.which("ip"),
    reason="needs root, /dev/net/tun and iproute2 (network namespaces)")


def sh(*args, check=True):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=check)


class Netns:
    """A network namespace of our own, with helpers to work inside it."""
    _seq = 0

    def __init__(self):
        Netns._seq += 1
        self.name = f"vmmt{os.getpid()}n{Netns._seq}"
        sh("ip", "netns", "add", self.name)
        self.procs = []
        self.ip("link", "set", "lo", "up")

    def exec_argv(self, *argv):
        return ["ip", "netns", "exec", self.name] + [str(a) for a in argv]

    def ip(self, *args, check=True):
        return sh(*self.exec_argv("ip", *args), check=check)

    def add_tap(self, name, cidr, up=True):
        self.ip("tuntap", "add", name, "mode", "tap")
        self.ip("addr", "add", cidr, "dev", name)
        if up:
            self.ip("link", "set", name, "up")

    def helper(self, *args, timeout=30):
        return subprocess.run(self.exec_argv(PYTHON, HELPER, *args), capture_output=True,
                              text=True, timeout=timeout)

    def close(self):
        for p in self.procs:
            p.kill()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


@pytest.fixture
def netns():
    ns = Netns()
    yield ns
    ns.close()


class Vmm:
    """The VMM running in the background inside a namespace."""

    def __init__(self, ns, vmm_bin, guest, cmdline, nets, env_extra=None, prefix=()):
        env = os.environ.copy()
        env["VMM_VHOST_NET_DEVICE"] = NO_VHOST
        env.update(env_extra or {})
        argv = ns.exec_argv(*prefix, vmm_bin, "--kernel", guest["elf"], "--debug-exit",
                            "--cmdline", cmdline)
        for n in nets:
            argv += ["--net", n]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        ns.procs.append(self)
        self.lines, self.err = [], []
        self.cond = threading.Condition()
        self.readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.lines)),
                        threading.Thread(target=self._read, args=(self.proc.stderr, self.err))]
        for t in self.readers:
            t.start()

    def _read(self, f, into):
        for raw in iter(f.readline, b""):
            with self.cond:
                into.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_lines(self, prefix, count=1, timeout=30):
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [l for l in self.lines if l.startswith(prefix)]
                if len(got) >= count:
                    return got
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no {count} x '{prefix}'\n{self.explain()}")
                self.cond.wait(min(left, 0.2))

    def wait(self, timeout=30):
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"vmm did not exit\n{self.explain()}")
        for t in self.readers:
            t.join()
        return status

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for t in self.readers:
            t.join()

    def stdout(self):
        with self.cond:
            return "\n".join(self.lines)

    def stderr(self):
        with self.cond:
            return "\n".join(self.err)

    def explain(self):
        return f"--- stdout:\n{self.stdout()}\n--- stderr:\n{self.stderr()}"


def ready(vmm, count=1):
    """{ip: mac} from the guest's 'NET ready mac=.. ip=..' lines."""
    out = {}
    for line in vmm.wait_lines("NET ready", count):
        m = re.fullmatch(r"NET ready mac=([0-9a-f:]{17}) ip=([0-9.]+)", line)
        assert m, line
        out[m[2]] = m[1]
    return out


def must(result, what):
    assert result.returncode == 0, f"{what} failed:\n{result.stdout}{result.stderr}"


def serve_and_quit(ns, vmm, ip=GUEST_IP, sizes=(1, 18, 100, 1000, 1472), pings=5):
    """Ping, UDP echo of several sizes, then "quit": the guest passes."""
    must(ns.helper("ping", ip, pings), f"ping {ip}")
    must(ns.helper("udp", ip, 7, *sizes), f"UDP echo via {ip}")


def quit_guest(ns, vmm, ip=GUEST_IP):
    must(ns.helper("send", ip, 9, "quit"), "quit")
    status = vmm.wait()
    assert "TEST net PASS" in vmm.stdout(), vmm.explain()
    assert status == vmmrun.EXIT_OK, vmm.explain()
    return vmm.wait_lines("NET stats")


def neigh_mac(ns, dev, ip):
    out = ns.ip("neigh", "show", ip, "dev", dev).stdout
    m = re.search(r"lladdr ([0-9a-f:]{17})", out)
    return m[1] if m else None


@pytest.mark.parametrize("opts", [
    "",                                        # offloads and mergeable buffers
    "guest.net_offload=0 guest.net_mrg=0",     # neither: whole frames, full checksums
    "guest.net_rxbuf=256",                     # frames over several buffers (num_buffers)
], ids=["default", "plain", "small-buffers"])
def test_ping_udp_echo(netns, vmm_bin, guest, opts):
    netns.add_tap("tap0", f"{HOST_IP}/24")
    vmm = Vmm(netns, vmm_bin, guest, f"guest.test=net guest.ip={GUEST_IP} {opts}",
              [f"tap=tap0,mac={MAC0}"])
    assert ready(vmm) == {GUEST_IP: MAC0}
    serve_and_quit(netns, vmm)
    # The MAC the host learned is the one configured.
    assert neigh_mac(netns, "tap0", GUEST_IP) == MAC0
    stats = quit_guest(netns, vmm)
    m = re.search(r"rx=(\d+) tx=(\d+) bad=(\d+) merged=(\d+)", stats[0])
    assert m and int(m[3]) == 0, stats
    if "rxbuf=256" in opts:
        assert int(m[4]) >= 1, f"no frame spanned several buffers: {stats}"
    else:
        assert int(m[4]) == 0, stats
    assert vmm.stderr() == "", vmm.explain()


def test_two_nics(netns, vmm_bin, guest):
    netns.add_tap("tap0", f"{HOST_IP}/24")
    netns.add_tap("tap1", f"{HOST_IP1}/24")
    vmm = Vmm(netns, vmm_bin, guest,
              f"guest.test=net guest.ip={GUEST_IP} guest.ip1={GUEST_IP1}",
              [f"tap=tap0,mac={MAC0}", f"tap=tap1,mac={MAC1}"])
    assert ready(vmm, 2) == {GUEST_IP: MAC0, GUEST_IP1: MAC1}
    # Both at once: pings and echoes in parallel on the two links.
    p0 = subprocess.Popen(netns.exec_argv(PYTHON, HELPER, "udp", GUEST_IP, 7, 1, 1000, 1472),
                          stdout=subprocess.PIPE, text=True)
    p1 = subprocess.Popen(netns.exec_argv(PYTHON, HELPER, "udp", GUEST_IP1, 7, 1, 1000, 1472),
                          stdout=subprocess.PIPE, text=True)
    out0, _ = p0.communicate(timeout=30)
    out1, _ = p1.communicate(timeout=30)
    assert p0.returncode == 0 and p1.returncode == 0, out0 + out1
    must(netns.helper("ping", GUEST_IP, 3), "ping nic 0")
    must(netns.helper("ping", GUEST_IP1, 3), "ping nic 1")
    assert neigh_mac(netns, "tap0", GUEST_IP) == MAC0
    assert neigh_mac(netns, "tap1", GUEST_IP1) == MAC1
    stats = quit_guest(netns, vmm)
    assert len(stats) == 2, stats


def test_vmm_creates_missing_tap(netns, vmm_bin, guest):
    """A tap that does not exist is created (we have CAP_NET_ADMIN); it is
    not persistent, so it goes when the VMM does."""
    vmm = Vmm(netns, vmm_bin, guest, f"guest.test=net guest.ip={GUEST_IP}",
              ["tap=vmmnew0"])
    mac = ready(vmm)[GUEST_IP]
    assert re.fullmatch(r"[0-9a-f][26ae](:[0-9a-f]{2}){5}", mac), mac  # random, local
    netns.ip("addr", "add", f"{HOST_IP}/24", "dev", "vmmnew0")
    netns.ip("link", "set", "vmmnew0", "up")
    must(netns.helper("ping", GUEST_IP, 2), "ping")
    quit_guest(netns, vmm)
    assert netns.ip("link", "show", "vmmnew0", check=False).returncode != 0


def test_tap_fd(netns, vmm_bin, guest):
    """--net fd=N: a tap opened by an orchestrator."""
    netns.add_tap("tap0", f"{HOST_IP}/24")
    vmm = Vmm(netns, vmm_bin, guest, f"guest.test=net guest.ip={GUEST_IP}",
              [f"fd={{fd}},mac={MAC0}"], prefix=(PYTHON, HELPER, "tapfd", "tap0"))
    assert ready(vmm) == {GUEST_IP: MAC0}
    serve_and_quit(netns, vmm, sizes=(64, 1472), pings=2)
    quit_guest(netns, vmm)


def test_fd_not_a_tap(netns, vmm_bin, guest):
    # The shell opens fd 5 on /dev/null and execs the VMM with it.
    r = subprocess.run(["sh", "-c", f'exec 5</dev/null; exec "$0" --kernel "$1" --net fd=5',
                        str(vmm_bin), str(guest["elf"])], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == vmmrun.EXIT_RESOURCE, r.stderr
    assert "vmm: --net fd=5: descriptor 5 is not an attached tap" in r.stderr
    assert "GUEST" not in r.stdout
    r = subprocess.run([str(vmm_bin), "--kernel", str(guest["elf"]), "--net", "fd=77"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == vmmrun.EXIT_RESOURCE, r.stderr
    assert "vmm: --net fd=77: descriptor 77 is not open" in r.stderr


def test_tap_goes_away(netns, vmm_bin, guest):
    """Deleting the tap under a running VM: one warning, no crash, no spin;
    the VMM still stops cleanly."""
    netns.add_tap("tap0", f"{HOST_IP}/24")
    vmm = Vmm(netns, vmm_bin, guest, f"guest.test=net guest.ip={GUEST_IP}",
              [f"tap=tap0,mac={MAC0}"])
    ready(vmm)
    must(netns.helper("ping", GUEST_IP, 1), "ping")
    netns.ip("link", "del", "tap0")
    deadline = time.monotonic() + 10
    while "the tap went away" not in vmm.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "the tap went away" in vmm.stderr(), vmm.explain()
    # Not spinning: the VMM's CPU time barely moves (the guest's vCPU
    # polls, so measure the main thread only).
    stat = pathlib.Path(f"/proc/{vmm.proc.pid}/task/{vmm.proc.pid}/stat")
    t0 = sum(int(x) for x in stat.read_text().rsplit(")", 1)[1].split()[11:13])
    time.sleep(1.0)
    t1 = sum(int(x) for x in stat.read_text().rsplit(")", 1)[1].split()[11:13])
    assert t1 - t0 < 20, f"main thread used {t1 - t0} ticks in 1 s"
    assert vmm.stop() == vmmrun.EXIT_SIGNAL, vmm.explain()
    assert vmm.stderr().count("the tap went away") == 1, vmm.explain()


BAD_VALUES = [
    ("", "empty value"),
    ("tap=", "bad tap name"),
    ("tap=a/b", "bad tap name"),
    ("tap=waytoolongtapname0", "bad tap name"),
    ("fd=abc", "bad fd"),
    ("fd=1", "bad fd"),
    ("tap=t0,fd=5", "more than one of tap= and fd="),
    ("tap=t0,mac=52:54:00:12:34", "bad MAC"),
    ("tap=t0,mac=52:54:00:12:34:zz", "bad MAC"),
    ("tap=t0,mac=01:00:5e:00:00:01", "bad MAC"),  # multicast
    ("tap=t0,mac=00:00:00:00:00:00", "bad MAC"),
    ("tap=t0,vhost=maybe", "bad value in 'vhost=maybe'"),
    ("tap=t0,speed=10", "unknown option 'speed=10'"),
    ("tap=t0,,vhost=on", "empty option"),
    ("tap=t0,mac=52:54:00:12:34:56,mac=52:54:00:12:34:57", "'mac' given twice"),
    ("mac=52:54:00:12:34:56", "tap=NAME or fd=N is required"),
]


@pytest.mark.parametrize("value,why", BAD_VALUES, ids=[v or "empty" for v, _ in BAD_VALUES])
def test_bad_net_value(vmm_bin, guest, value, why):
    r = vmmrun.run(vmm_bin, ["--kernel", guest["elf"], "--net", value], timeout=30)
    assert r.status == vmmrun.EXIT_USAGE, r.stderr
    assert r.stderr.startswith(f"vmm: --net: invalid value '{value}' ({why}"), r.stderr
    assert "GUEST" not in r.stdout


def test_too_many_and_duplicate_nets(vmm_bin, guest):
    args = ["--kernel", guest["elf"]]
    for i in range(9):
        args += ["--net", f"tap=t{i}"]
    r = vmmrun.run(vmm_bin, args, timeout=30)
    assert r.status == vmmrun.EXIT_USAGE
    assert "vmm: --net: too many network devices at 'tap=t8' (at most 8)" in r.stderr
    r = vmmrun.run(vmm_bin, ["--kernel", guest["elf"], "--net", "tap=t0", "--net", "tap=t0"],
                   timeout=30)
    assert r.status == vmmrun.EXIT_USAGE
    assert "the tap is already used by an earlier --net" in r.stderr


def test_missing_tap_without_permission(netns, vmm_bin, guest):
    """No CAP_NET_ADMIN: a missing tap cannot be created; an existing one
    owned by someone else cannot be opened. Both before boot, status 12."""
    drop = ("setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin")
    r = subprocess.run(netns.exec_argv(*drop, vmm_bin, "--kernel", guest["elf"],
                                       "--net", "tap=nosuch0"),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == vmmrun.EXIT_RESOURCE, r.stderr
    assert ("vmm: --net tap=nosuch0: there is no tap 'nosuch0' and this process may not "
            "create one (needs CAP_NET_ADMIN") in r.stderr
    assert "GUEST" not in r.stdout
    assert netns.ip("link", "show", "nosuch0", check=False).returncode != 0
    # A tap owned by another user (one without an owner is anyone's).
    netns.ip("tuntap", "add", "tap0", "mode", "tap", "user", "54321")
    r = subprocess.run(netns.exec_argv(*drop, vmm_bin, "--kernel", guest["elf"],
                                       "--net", "tap=tap0"),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == vmmrun.EXIT_RESOURCE, r.stderr
    assert "vmm: --net tap=tap0: permission denied on tap 'tap0'" in r.stderr


def test_tap_busy(netns, vmm_bin, guest):
    netns.add_tap("tap0", f"{HOST_IP}/24")
    holder = subprocess.Popen(netns.exec_argv(PYTHON, HELPER, "hold", "tap0", 30),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "HOLDING"
        r = subprocess.run(netns.exec_argv(vmm_bin, "--kernel", guest["elf"],
                                           "--net", "tap=tap0"),
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == vmmrun.EXIT_RESOURCE, r.stderr
        assert "vmm: --net tap=tap0: tap 'tap0' is in use by another process" in r.stderr
    finally:
        holder.kill()
        holder.wait()


def test_vhost_on_without_vhost_net(netns, vmm_bin, guest):
    netns.add_tap("tap0", f"{HOST_IP}/24")
    env = dict(os.environ, VMM_VHOST_NET_DEVICE=NO_VHOST)
    r = subprocess.run(netns.exec_argv(vmm_bin, "--kernel", guest["elf"],
                                       "--net", "tap=tap0,vhost=on"),
                       capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == vmmrun.EXIT_RESOURCE, r.stderr
    assert (f"vmm: --net tap=tap0,vhost=on: cannot open {NO_VHOST}: No such file or directory"
            in r.stderr), r.stderr
    assert "GUEST" not in r.stdout


def test_vhost_auto_falls_back(netns, vmm_bin, guest):
    netns.add_tap("tap0", f"{HOST_IP}/24")
    vmm = Vmm(netns, vmm_bin, guest, f"guest.test=net guest.ip={GUEST_IP}",
              [f"tap=tap0,mac={MAC0},vhost=auto"])
    ready(vmm)
    serve_and_quit(netns, vmm, sizes=(100, 1472), pings=2)
    quit_guest(netns, vmm)
    lines = vmm.stderr().splitlines()
    assert lines == [f"vmm: warning: --net tap=tap0: vhost-net unavailable (cannot open "
                     f"{NO_VHOST}: No such file or directory); using the userspace data path"
                     ], vmm.explain()


def test_network_interface_via_api(netns, vmm_bin, guest):
    """PUT /network-interfaces feeds the same device: a tap that cannot be
    opened is refused at InstanceStart (400, the VMM keeps waiting); once
    it can be, the guest answers on it with the MAC given."""
    import apiclient
    netns.add_tap("tap0", f"{HOST_IP}/24")
    holder = subprocess.Popen(netns.exec_argv(PYTHON, HELPER, "hold", "tap0", 60),
                              stdout=subprocess.PIPE, text=True)
    v = apiclient.Vmm(vmm_bin, ["--debug-exit"], prefix=netns.exec_argv(),
                      env={"VMM_VHOST_NET_DEVICE": NO_VHOST})
    try:
        assert holder.stdout.readline().strip() == "HOLDING"
        r = v.put("/boot-source", {"kernel_image_path": str(guest["elf"]),
                                   "boot_args": f"guest.test=net guest.ip={GUEST_IP}"})
        assert r.status == 204, r.fault
        r = v.put("/network-interfaces/eth0",
                  {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": MAC0})
        assert r.status == 204, r.fault
        r = v.put("/actions", {"action_type": "InstanceStart"})
        assert r.status == 400
        assert "network interface eth0 (host_dev_name tap0): tap 'tap0' is in use" in r.fault
        assert v.get("/").json["state"] == "Not started"
        holder.kill()
        holder.wait()
        r = v.put("/actions", {"action_type": "InstanceStart"})
        assert r.status == 204, r.fault
        v.wait_line("NET ready")
        assert f"NET ready mac={MAC0} ip={GUEST_IP}" in [l for _, l in v.lines]
        serve_and_quit(netns, v, sizes=(100, 1472), pings=2)
        assert neigh_mac(netns, "tap0", GUEST_IP) == MAC0
        must(netns.helper("send", GUEST_IP, 9, "quit"), "quit")
        assert v.wait_exit() == vmmrun.EXIT_OK
    finally:
        holder.kill()
        holder.wait()
        v.close()
