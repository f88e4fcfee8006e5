#!/usr/bin/env python3
"""Extract the ELF64 vmlinux from an x86 bzImage.

Our own implementation, written from the x86 boot protocol
(Documentation/arch/x86/boot.rst): the setup header says where the
compressed kernel lies (payload_offset/payload_length, protocol >= 2.08);
the payload's magic says how it is compressed. The kernel build appends the
uncompressed size as a little-endian u32 to every payload (for gzip it is
gzip's own ISIZE trailer), which we use as a check.

Usage:
  extract-vmlinux.py BZIMAGE OUT          write the vmlinux ELF to OUT
  extract-vmlinux.py --header BZIMAGE     print the setup header, key=value
  extract-vmlinux.py --info BZIMAGE       header plus the payload's compression

Supported payloads: gzip, xz, lzma, bzip2 (python stdlib); lz4, the one
Debian's cloud kernel uses (the `lz4` tool when installed, else our own
pure-Python decoder of the legacy lz4 frame); zstd (the `zstd` tool, Debian
package zstd).
Exit status 0 on success, 1 with a one-line message on stderr otherwise.
"""
import bz2
import lzma
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib


class ExtractError(Exception):
    pass


MIN_PAYLOAD_VERSION = 0x208  # payload_offset/payload_length appeared in 2.08

XLF_KERNEL_64 = 1 << 0


def _u8(buf, off):
    return buf[off]


def _u16(buf, off):
    return struct.unpack_from("<H", buf, off)[0]


def _u32(buf, off):
    return struct.unpack_from("<I", buf, off)[0]


def _u64(buf, off):
    return struct.unpack_from("<Q", buf, off)[0]


def parse_header(buf):
    """Return the setup header fields we care about, as a dict of ints."""
    if len(buf) < 0x270:
        raise ExtractError(f"file too small for a bzImage ({len(buf)} bytes)")
    if buf[0x202:0x206] != b"HdrS":
        raise ExtractError('not a bzImage: no "HdrS" signature at 0x202')
    if _u16(buf, 0x1FE) != 0xAA55:
        raise ExtractError("not a bzImage: no 0xAA55 boot flag at 0x1fe")
    version = _u16(buf, 0x206)
    if version < MIN_PAYLOAD_VERSION:
        raise ExtractError(
            f"boot protocol {version >> 8}.{version & 0xff:02d} is too old: "
            f"payload_offset needs >= 2.08"
        )
    setup_sects = _u8(buf, 0x1F1)  # as in the file
    # 0 means 4, as the protocol says for old kernels
    real_mode_sects = setup_sects if setup_sects else 4
    h = {
        "version": version,
        "setup_sects": setup_sects,
        "syssize": _u32(buf, 0x1F4),
        "loadflags": _u8(buf, 0x211),
        "code32_start": _u32(buf, 0x214),
        "initrd_addr_max": _u32(buf, 0x22C),
        "kernel_alignment": _u32(buf, 0x230),
        "relocatable_kernel": _u8(buf, 0x234),
        "min_alignment": _u8(buf, 0x235),
        "xloadflags": _u16(buf, 0x236),
        "cmdline_size": _u32(buf, 0x238),
        "payload_offset": _u32(buf, 0x248),
        "payload_length": _u32(buf, 0x24C),
        "pref_address": _u64(buf, 0x258),
        "init_size": _u32(buf, 0x260),
        "handover_offset": _u32(buf, 0x264),
        "protected_mode_offset": (real_mode_sects + 1) * 512,
    }
    return h


def payload(buf, h):
    start = h["protected_mode_offset"] + h["payload_offset"]
    end = start + h["payload_length"]
    if h["payload_length"] < 8 or end > len(buf):
        raise ExtractError(
            f"payload [{start:#x}, {end:#x}) does not fit in the file "
            f"({len(buf):#x} bytes)"
        )
    return buf[start:end]


# (name, magic) in the order we test them.
MAGICS = [
    ("gzip", b"\x1f\x8b"),
    ("xz", b"\xfd7zXZ\x00"),
    ("zstd", b"\x28\xb5\x2f\xfd"),
    ("lz4", b"\x02\x21\x4c\x18"),  # lz4 legacy frame, as the kernel uses
    ("bzip2", b"BZh"),
    ("lzo", b"\x89LZO"),
    ("lzma", b"\x5d\x00\x00"),  # lzma "alone": props 0x5d, dict size LE
]


def compression_of(data):
    for name, magic in MAGICS:
        if data.startswith(magic):
            return name
    raise ExtractError(
        f"unknown payload compression (first bytes {data[:8].hex(' ')})"
    )


def _run_tool(tool, args, data, package):
    exe = shutil.which(tool)
    if exe is None:
        raise ExtractError(
            f"the payload needs the `{tool}` command (apt-get install {package})"
        )
    # The tools read a file more reliably than a pipe for legacy lz4.
    with tempfile.NamedTemporaryFile(prefix="bzpayload-") as f:
        f.write(data)
        f.flush()
        p = subprocess.run([exe] + args + [f.name], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise ExtractError(
            f"{tool} failed: {p.stderr.decode('utf-8', 'replace').strip()}"
        )
    return p.stdout


def _stream(decomp, data, what):
    try:
        out = decomp.decompress(data)
    except (zlib.error, lzma.LZMAError, OSError, EOFError) as e:
        raise ExtractError(f"{what} payload is corrupt: {e}") from None
    if not decomp.eof:
        raise ExtractError(f"{what} payload is truncated")
    return out


def _lz4_block(src, pos, end, out):
    """Decode one LZ4 block src[pos:end], appending to bytearray out."""
    while pos < end:
        token = src[pos]
        pos += 1
        n = token >> 4
        if n == 15:
            while True:
                b = src[pos]
                pos += 1
                n += b
                if b != 255:
                    break
        if n:
            if pos + n > end:
                raise ExtractError("lz4 payload is corrupt: literals overrun")
            out += src[pos:pos + n]
            pos += n
        if pos >= end:
            break  # the last sequence has literals only
        off = src[pos] | (src[pos + 1] << 8)
        pos += 2
        m = token & 15
        if m == 15:
            while True:
                b = src[pos]
                pos += 1
                m += b
                if b != 255:
                    break
        m += 4
        if off == 0 or off > len(out):
            raise ExtractError("lz4 payload is corrupt: bad match offset")
        start = len(out) - off
        if off >= m:
            out += out[start:start + m]
        else:  # overlapping: the pattern repeats
            pat = bytes(out[start:])
            out += (pat * (m // off + 1))[:m]
    return out


def lz4_legacy_decompress(data):
    """The lz4 "legacy" frame the kernel build writes (lz4 -l): the magic,
    then blocks, each a u32 LE compressed size and an LZ4 block."""
    src = memoryview(data)
    out = bytearray()
    pos = 4
    while pos + 4 <= len(src):
        size = _u32(src, pos)
        if size == 0x184C2102:  # another legacy frame follows
            pos += 4
            continue
        pos += 4
        if pos + size > len(src):
            raise ExtractError("lz4 payload is truncated")
        _lz4_block(src, pos, pos + size, out)
        pos += size
    return bytes(out)


def decompress(data):
    kind = compression_of(data)
    # All but gzip carry the kernel build's appended size after the stream;
    # the tools want the bare stream.
    bare = data[:-4]
    if kind == "gzip":
        out = _stream(zlib.decompressobj(16 + zlib.MAX_WBITS), data, kind)
    elif kind == "xz":
        out = _stream(lzma.LZMADecompressor(lzma.FORMAT_XZ), bare, kind)
    elif kind == "lzma":
        out = _stream(lzma.LZMADecompressor(lzma.FORMAT_ALONE), bare, kind)
    elif kind == "bzip2":
        out = _stream(bz2.BZ2Decompressor(), bare, kind)
    elif kind == "zstd":
        out = _run_tool("zstd", ["-d", "-q", "-c"], bare, "zstd")
    elif kind == "lz4":
        if shutil.which("lz4"):
            out = _run_tool("lz4", ["-d", "-q", "-c"], bare, "lz4")
        else:  # pure Python: slower (seconds) but needs nothing installed
            out = lz4_legacy_decompress(bare)
    else:
        raise ExtractError(f"{kind} payloads are not supported")
    want = _u32(data, len(data) - 4)
    if len(out) & 0xFFFFFFFF != want:
        raise ExtractError(
            f"{kind} payload decompressed to {len(out)} bytes, "
            f"the image says {want}"
        )
    return kind, out


def check_elf64(out):
    if len(out) < 64 or out[:4] != b"\x7fELF":
        raise ExtractError("decompressed payload is not an ELF file")
    if out[4] != 2:
        raise ExtractError("decompressed payload is not ELF64")
    if out[5] != 1:
        raise ExtractError("decompressed payload is not little-endian")
    machine = _u16(out, 18)
    if machine != 62:
        raise ExtractError(f"decompressed ELF is for machine {machine}, not x86-64")


def extract(buf):
    h = parse_header(buf)
    kind, out = decompress(payload(buf, h))
    check_elf64(out)
    return h, kind, out


def print_header(h, extra=None):
    for k, v in h.items():
        print(f"{k}={v:#x}")
    for k, v in (extra or {}).items():
        print(f"{k}={v}")


def main(argv):
    try:
        if len(argv) == 3 and argv[1] in ("--header", "--info"):
            with open(argv[2], "rb") as f:
                buf = f.read()
            h = parse_header(buf)
            extra = {}
            if argv[1] == "--info":
                p = payload(buf, h)
                extra["compression"] = compression_of(p)
                extra["uncompressed_size"] = _u32(p, len(p) - 4)
            print_header(h, extra)
            return 0
        if len(argv) != 3 or argv[1].startswith("-"):
            print(__doc__.split("\n\n")[2], file=sys.stderr)
            return 2
        src, dst = argv[1], argv[2]
        with open(src, "rb") as f:
            buf = f.read()
        h, kind, out = extract(buf)
        tmp = dst + ".tmp"
        with open(tmp, "wb") as f:
            f.write(out)
        os.replace(tmp, dst)
        print(f"extract-vmlinux: {src}: protocol {h['version'] >> 8}."
              f"{h['version'] & 0xff:02d}, {kind} payload, "
              f"{len(out)} bytes of ELF64 -> {dst}", file=sys.stderr)
        return 0
    except ExtractError as e:
        name = argv[2] if argv[1].startswith("-") else argv[1]
        print(f"extract-vmlinux: {name}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"extract-vmlinux: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
