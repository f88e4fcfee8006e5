"""A stock distribution kernel under the VMM: Debian's cloud kernel
(scripts/fetch-kernel.sh), booted as the extracted vmlinux and as the
bzImage Debian ships.

/dev/kvm here runs guest ring-0 code by emulation, so the kernel cannot get
far; we check what it prints early, which is what the VMM controls:
  - the "Linux version" banner,
  - "Command line: " with exactly the command line we gave (the VMM may add
    virtio_mmio.device= entries after it, nothing else),
  - the e820 map the kernel received ("BIOS-e820: [mem a-b] type"), equal
    to the VMM's layout for --mem,
  - kvm-clock being picked up (the VMM's CPUID exposes the KVM leaves),
  - the ACPI tables (boot/acpi.c) found at 0xE0000, the MADT used for SMP
    configuration (this kernel has no CONFIG_X86_MPPARSE, so without it
    the MP table is ignored and only one CPU is seen) and every --cpus vCPU
    counted ("smpboot: Allowing N CPUs").
Then the VM is stopped with SIGTERM and must exit promptly with status 16.

Output is streamed (the test does not wait for the VMM to exit); every wait
is bounded. Timings are printed (pytest -s) and recorded as properties.
"""
import os
import re
import signal
import struct
import subprocess
import threading
import time
import uuid

import pytest

from vmmrun import EXIT_SIGNAL

# How long until the markers must have appeared, from exec. Ring 0 is
# emulated: the bzImage spends most of its time decompressing itself
# (about 70 s under QEMU on these machines); the vmlinux skips that.
VMLINUX_TIMEOUT = 240
BZIMAGE_TIMEOUT = 420
# SIGTERM to exit.
STOP_TIMEOUT = 10
PROMPT_EXIT = 5.0

MIB = 1 << 20
GIB = 1 << 30

PRINTK_TS = re.compile(r"^\[\s*\d+\.\d+\]\s?")
E820_LINE = re.compile(r"^BIOS-e820: \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\] (.+)$")
# The last marker: setup_arch() prints it after the ACPI tables, the MADT
# and kvm-clock. "Kernel command line:" comes after setup_arch(): seeing it
# means the marker is not coming, so stop waiting.
LAST_MARKER = "smpboot: Allowing "
AFTER_SETUP_ARCH = "Kernel command line:"
# "ACPI: XSDT 0x00000000000E0200 000034 (v01 VMM    MICROVM  00000001 VMM  00000001)"
ACPI_TABLE_LINE = re.compile(r"^ACPI: (\w{4}) 0x([0-9A-F]{16}) ([0-9A-F]{6}) "
                             r"\(v(\d\d) VMM    MICROVM  00000001 VMM  00000001\)$")
ACPI_REGION = (0xE0000, 0xF0000)


@pytest.fixture(scope="session")
def stock_kernel(root):
    """Fetch (or reuse the cached) Debian cloud kernel."""
    script = root / "scripts" / "fetch-kernel.sh"
    p = subprocess.run([str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=900)
    if p.returncode != 0:
        pytest.fail("scripts/fetch-kernel.sh failed (exit %d):\n%s%s" % (
            p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")))
    cache = root / "tests" / ".cache" / "kernel"
    version_file = cache / "version"
    return {
        "vmlinux": cache / "vmlinux",
        "bzImage": cache / "bzImage",
        "version": version_file.read_text().strip() if version_file.exists() else None,
    }


XEN_ELFNOTE_PHYS32_ENTRY = 18


def has_pvh_note(path):
    """True if the ELF has a Xen PHYS32_ENTRY note: the VMM then boots it
    through PVH rather than the Linux 64-bit protocol."""
    with open(path, "rb") as f:
        ehdr = f.read(64)
        if ehdr[:4] != b"\x7fELF" or ehdr[4] != 2:
            return False
        phoff, = struct.unpack_from("<Q", ehdr, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", ehdr, 0x36)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            ph = f.read(56)
            p_type, = struct.unpack_from("<I", ph, 0)
            if p_type != 4:  # PT_NOTE
                continue
            p_offset, = struct.unpack_from("<Q", ph, 8)
            p_filesz, = struct.unpack_from("<Q", ph, 32)
            f.seek(p_offset)
            notes = f.read(p_filesz)
            pos = 0
            while pos + 12 <= len(notes):
                namesz, descsz, ntype = struct.unpack_from("<III", notes, pos)
                name = notes[pos + 12:pos + 12 + namesz]
                if name.rstrip(b"\0") == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY:
                    return True
                pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def expected_e820(mem_mib, pvh=False):
    """The map the VMM gives the kernel, as the kernel prints it (inclusive
    ends, sorted, overlapping or adjacent ranges of one type merged).

    Under PVH the kernel builds its boot_params itself from the memmap and
    adds the ISA hole [0xa0000, 1 MiB) as reserved (init_pvh_bootparams), so
    the two reserved ranges around it print as one."""
    mem = mem_mib * MIB
    low = min(mem, 3 * GIB)
    ranges = [
        (0, 0x9FC00, "usable"),
        (0x9FC00, 0xA0000, "reserved"),
        (0xE0000, 0x100000, "reserved"),  # ACPI tables, MP table
        (0x100000, low, "usable"),
    ]
    if mem > 3 * GIB:
        ranges.append((4 * GIB, 4 * GIB + mem - 3 * GIB, "usable"))
    if pvh:
        ranges.append((0xA0000, 0x100000, "reserved"))
    merged = []
    for start, end, kind in sorted(r for r in ranges if r[1] > r[0]):
        if merged and merged[-1][2] == kind and merged[-1][1] >= start:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]), kind)
        else:
            merged.append((start, end, kind))
    return [(s, e - 1, k) for s, e, k in merged]


class SerialLog:
    """Lines of guest output with their arrival time (seconds since exec),
    read from the VMM's stdout or polled from a --console file."""

    def __init__(self, start):
        self.start = start
        self.lines = []  # (seconds, text without the printk timestamp, raw)
        self.cond = threading.Condition()
        self.closed = False
        self._partial = b""

    def feed(self, data):
        now = time.monotonic() - self.start
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        with self.cond:
            for raw in complete:
                text = raw.decode("utf-8", "replace").rstrip("\r")
                self.lines.append((now, PRINTK_TS.sub("", text), text))
            self.cond.notify_all()

    def close(self):
        with self.cond:
            if self._partial:
                text = self._partial.decode("utf-8", "replace").rstrip("\r")
                self.lines.append((time.monotonic() - self.start, PRINTK_TS.sub("", text), text))
                self._partial = b""
            self.closed = True
            self.cond.notify_all()

    def first(self, pred):
        for t, text, _ in self.lines:
            if pred(text):
                return t, text
        return None

    def dump(self, last=80):
        return "\n".join(raw for _, _, raw in self.lines[-last:])


def _read_pipe(pipe, log):
    for chunk in iter(lambda: os.read(pipe.fileno(), 65536), b""):
        log.feed(chunk)
    log.close()


def _poll_file(path, log, proc):
    f = None
    while True:
        if f is None:
            try:
                f = open(path, "rb")
            except FileNotFoundError:
                pass
        if f is not None:
            chunk = f.read()
            if chunk:
                log.feed(chunk)
                continue
        if proc.poll() is not None:
            if f is not None:
                log.feed(f.read())
                f.close()
            log.close()
            return
        time.sleep(0.02)


def _done(log):
    """All markers seen (the smpboot line comes last of them), or a line
    proving it will not come."""
    for _, text, _ in log.lines:
        if text.startswith(LAST_MARKER) or text.startswith(AFTER_SETUP_ARCH):
            return True
    return False


def boot_and_stop(vmm_bin, kernel, mem_mib, cpus, cmdline, console_file, timeout):
    args = [str(vmm_bin), "--kernel", str(kernel), "--mem", str(mem_mib),
            "--cpus", str(cpus), "--cmdline", cmdline]
    if console_file:
        args += ["--console", "file:" + str(console_file)]
    else:
        args += ["--console", "stdio"]
    start = time.monotonic()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    log = SerialLog(start)
    stderr = []
    readers = [threading.Thread(target=lambda: stderr.append(proc.stderr.read()))]
    if console_file:
        readers.append(threading.Thread(target=_poll_file, args=(console_file, log, proc)))
        out = []
        readers.append(threading.Thread(target=lambda: out.append(proc.stdout.read())))
    else:
        readers.append(threading.Thread(target=_read_pipe, args=(proc.stdout, log)))
    for t in readers:
        t.daemon = True
        t.start()

    deadline = start + timeout
    with log.cond:
        while not _done(log) and not log.closed and proc.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            log.cond.wait(min(left, 0.5))
    reached = time.monotonic() - start

    early_status = proc.poll()
    stop_wall = None
    status = early_status
    if early_status is None:
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(timeout=STOP_TIMEOUT)
            stop_wall = time.monotonic() - t0
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            status = None
    for t in readers:
        t.join(timeout=10)
    return {
        "log": log,
        "status": status,
        "early_status": early_status,
        "stop_wall": stop_wall,
        "reached": reached,
        "stderr": b"".join(stderr).decode("utf-8", "replace"),
    }


def check_acpi(log, cpus, context):
    """The kernel found our ACPI tables and took the CPUs from the MADT."""
    def line(prefix):
        found = log.first(lambda s: s.startswith(prefix))
        return found[1] if found else None

    rsdp = line("ACPI: RSDP ")
    assert rsdp == "ACPI: RSDP 0x00000000000E0000 000024 (v02 VMM   )", (
        f"RSDP: {rsdp!r}" + context())
    tables = {}
    for _, text, _ in log.lines:
        m = ACPI_TABLE_LINE.match(text)
        if m:
            tables[m.group(1)] = (int(m.group(2), 16), int(m.group(3), 16), m.group(4))
    # The RSDT is there too, but a revision-2 RSDP makes Linux use the XSDT.
    assert sorted(tables) == ["APIC", "DSDT", "FACP", "XSDT"], f"tables {tables}" + context()
    for sig, rev in (("XSDT", "01"), ("FACP", "06"), ("DSDT", "02"), ("APIC", "05")):
        addr, length, got = tables[sig]
        assert got == rev, f"{sig} revision {got}, want {rev}" + context()
        assert ACPI_REGION[0] <= addr and addr + length <= ACPI_REGION[1], (
            f"{sig} at {addr:#x}+{length:#x}, outside the ACPI region" + context())
    assert tables["FACP"][1] == 0x114, context()  # revision 6: 276 bytes
    # header + flags, a Local APIC per CPU, the IOAPIC, the LINT1 NMI; no
    # Interrupt Source Override while ISA IRQ n is GSI n (MPTABLE_IRQ0_PIN 0).
    assert tables["APIC"][1] == 44 + 8 * cpus + 12 + 6, context()

    assert line("ACPI: LAPIC_NMI (acpi_id[0xff] high edge lint[0x1])"), context()
    ioapic = f"IOAPIC[0]: apic_id {cpus}, version 17, address 0xfec00000, GSI 0-23"
    assert line(ioapic), f"no {ioapic!r}" + context()
    assert line("ACPI: Using ACPI (MADT) for SMP configuration information"), context()
    smp = f"smpboot: Allowing {cpus} CPUs, 0 hotplug CPUs"
    assert line(smp), f"no {smp!r}" + context()
    complaints = [text for _, text, _ in log.lines
                  if "ACPI BIOS" in text or "ACPI Error" in text or "ACPI Warning" in text]
    assert not complaints, f"ACPI complained: {complaints}" + context()


CASES = [
    # id, image, --mem, --cpus, console to a file (else stdout)
    pytest.param("vmlinux", 256, 1, False, id="vmlinux-256M-stdio"),
    pytest.param("bzImage", 256, 1, True, id="bzImage-256M-file"),
    # RAM above 4 GiB: 3 GiB below the hole, 512 MiB above.
    pytest.param("vmlinux", 3584, 1, True, id="vmlinux-3584M-file"),
    # SMP: only the MADT can tell this kernel about the second CPU.
    pytest.param("vmlinux", 256, 2, False, id="vmlinux-256M-2cpus-stdio"),
]


@pytest.mark.parametrize("image,mem_mib,cpus,to_file", CASES)
def test_stock_kernel_early_boot(vmm_bin, stock_kernel, tmp_path, record_property,
                                 image, mem_mib, cpus, to_file):
    token = "vmm.e2e_token=" + uuid.uuid4().hex
    cmdline = (f"console=ttyS0 earlyprintk=ttyS0 {token} vmm.quoted=\"a b\" "
               "reboot=k panic=-1")
    timeout = BZIMAGE_TIMEOUT if image == "bzImage" else VMLINUX_TIMEOUT
    console_file = tmp_path / "serial.log" if to_file else None

    r = boot_and_stop(vmm_bin, stock_kernel[image], mem_mib, cpus, cmdline, console_file,
                      timeout)
    log = r["log"]

    def context():
        return (f"\nVMM status {r['status']} (exited by itself: {r['early_status']}), "
                f"after {r['reached']:.1f}s\n--- serial (tail) ---\n{log.dump()}"
                f"\n--- stderr ---\n{r['stderr'][-4000:]}")

    banner = log.first(lambda s: s.startswith("Linux version "))
    kvmclock = log.first(lambda s: s.startswith("clocksource: kvm-clock"))
    smpboot = log.first(lambda s: s.startswith(LAST_MARKER))
    timing = (f"{image} --mem {mem_mib} --cpus {cpus}: banner after "
              f"{banner[0]:.2f}s" if banner else f"{image}: no banner")
    timing += (f", kvm-clock after {kvmclock[0]:.2f}s" if kvmclock else ", no kvm-clock")
    timing += (f", smpboot after {smpboot[0]:.2f}s" if smpboot else ", no smpboot line")
    timing += (f", SIGTERM->exit {r['stop_wall']:.3f}s" if r["stop_wall"] is not None else "")
    print("\n" + timing)
    record_property("timing", timing)
    if banner:
        record_property("banner_s", round(banner[0], 3))
    if kvmclock:
        record_property("kvmclock_s", round(kvmclock[0], 3))

    # It was still running when we stopped it, and SIGTERM stopped it
    # promptly with the signal status.
    assert r["early_status"] is None, "VMM exited before the markers" + context()
    assert r["status"] is not None, f"VMM ignored SIGTERM for {STOP_TIMEOUT}s" + context()
    assert r["status"] == EXIT_SIGNAL, context()
    assert r["stop_wall"] < PROMPT_EXIT, f"SIGTERM took {r['stop_wall']:.2f}s" + context()

    # The banner.
    assert banner, f"no 'Linux version' banner within {timeout}s" + context()
    if stock_kernel["version"]:
        assert banner[1].startswith("Linux version " + stock_kernel["version"] + " "), banner[1]

    # Our command line, verbatim.
    printed = log.first(lambda s: s.startswith("Command line: "))
    assert printed, "no 'Command line:' line" + context()
    printed = printed[1][len("Command line: "):]
    if printed != cmdline:
        assert printed.startswith(cmdline + " "), (
            f"command line changed:\n gave    {cmdline!r}\n printed {printed!r}")
        extra = printed[len(cmdline) + 1:].split()
        assert all(e.startswith("virtio_mmio.device=") for e in extra), (
            f"VMM appended more than virtio_mmio.device= entries: {extra}")

    # The e820 map: the first run of BIOS-e820 lines.
    got = []
    for _, text, _ in log.lines:
        m = E820_LINE.match(text)
        if m:
            got.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3).strip()))
        elif got:
            break
    pvh = has_pvh_note(stock_kernel[image])
    want = expected_e820(mem_mib, pvh=pvh)

    def fmt(rs):
        return "\n".join(f"  [mem {s:#018x}-{e:#018x}] {k}" for s, e, k in rs)

    assert got == want, f"e820 map ({'PVH' if pvh else 'Linux boot protocol'}):\nprinted\n{fmt(got)}\nexpected\n{fmt(want)}" + context()

    # kvm-clock was found and registered.
    kvm_lines = [text for _, text, _ in log.lines if "kvm-clock" in text]
    assert any(s.startswith("kvm-clock: Using msrs") for s in kvm_lines), (
        "kernel did not pick up kvm-clock" + context())
    assert kvmclock, "kvm-clock clocksource not registered" + context()
    assert log.first(lambda s: s.startswith("Hypervisor detected: KVM")), context()

    # ACPI: tables, MADT, CPU count.
    check_acpi(log, cpus, context)
