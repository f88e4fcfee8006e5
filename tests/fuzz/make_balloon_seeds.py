#!/usr/bin/env python3
"""Write the seed corpus for fuzz_balloon (tests/fuzz/corpus/balloon/).

Each seed is the 8-byte header fuzz_balloon.c describes, then guest RAM
(64 KiB: PFNs 0..15): descriptors at 0x800, avail at 0xa00, used at 0xb00,
buffers from 0x1000. Trailing zeroes are left off: the target zero-fills.
Run it again after changing the input format; the files are checked in.
"""
import pathlib
import struct

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "balloon"
NEXT, WRITE, INDIRECT = 1, 2, 4
D, A, U = 0x800, 0xA00, 0xB00
INFLATE, DEFLATE, STATS, REPORT = 0, 1, 2, 3
EVENT_IDX, INDIRECT_F = 4, 8


def seed(role, descs, heads, data=(), qlog=4):
    ram = bytearray(0x10000)
    for i, (addr, length, fl, nxt) in enumerate(descs):
        struct.pack_into("<QIHH", ram, D + 16 * i, addr, length, fl, nxt)
    struct.pack_into("<HH", ram, A, 0, len(heads))
    for i, h in enumerate(heads):
        struct.pack_into("<H", ram, A + 4 + 2 * i, h)
    for at, blob in data:
        ram[at:at + len(blob)] = blob
    hdr = bytes([role, qlog]) + struct.pack("<HHH", D // 16, A // 2, U // 4)
    return hdr + bytes(ram).rstrip(b"\0")


def pfns(*v):
    return struct.pack(f"<{len(v)}I", *v)


def stats(*pairs):
    return b"".join(struct.pack("<HQ", t, v) for t, v in pairs)


SEEDS = {
    "inflate": seed(INFLATE, [(0x1000, 20, 0, 0)], [0],
                    [(0x1000, pfns(3, 4, 5, 200, 0xFFFFFFFF))]),
    "inflate_split": seed(INFLATE | EVENT_IDX, [(0x1000, 2, NEXT, 1), (0x1002, 10, 0, 0)], [0],
                          [(0x1000, pfns(6, 7, 9))]),
    "inflate_indirect": seed(INFLATE | INDIRECT_F, [(0x2000, 32, INDIRECT, 0)], [0],
                             [(0x2000, struct.pack("<QIHHQIHH", 0x1000, 4, NEXT, 1,
                                                   0x1004, 4, 0, 0)),
                              (0x1000, pfns(10, 11))]),
    "inflate_writable": seed(INFLATE, [(0x1000, 4, WRITE, 0)], [0], [(0x1000, pfns(3))]),
    "deflate_odd": seed(DEFLATE, [(0x1000, 6, 0, 0), (0x1000, 8, 0, 0)], [0, 1],
                        [(0x1000, pfns(3, 4))]),
    "report": seed(REPORT, [(0x4000, 0x2000, WRITE | NEXT, 1), (0x7100, 0x100, WRITE, 0)],
                   [0]),
    "stats": seed(STATS, [(0x1000, 7, NEXT, 1), (0x1007, 23, 0, 0)], [0],
                  [(0x1000, stats((4, 1000), (5, 4000), (200, 1)))]),
    "stats_odd": seed(STATS, [(0x1000, 11, 0, 0), (0x1000, 10, WRITE, 0)], [0, 1],
                      [(0x1000, stats((4, 1)))]),
}

OUT.mkdir(parents=True, exist_ok=True)
for name, data in SEEDS.items():
    (OUT / name).write_bytes(data)
