#!/usr/bin/env python3
"""Write the seed corpus for fuzz_virtqueue (tests/fuzz/corpus/virtqueue/).

Each seed is the 8-byte header fuzz_virtqueue.c describes, then guest RAM:
descriptor table at 0x0, avail ring at 0x200, used ring at 0x300, request
headers and buffers from 0x500 (queues of up to 32 entries fit). Trailing
zeroes are left off: the target zero-fills. Run it again after changing the
input format; the files are checked in.
"""
import pathlib
import struct

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "virtqueue"
NEXT, WRITE, INDIRECT = 1, 2, 4
AVAIL, USED = 0x200, 0x300
IN, OUT_, FLUSH, GET_ID, DISCARD = 0, 1, 4, 8, 11


def seed(flags, size_log2, descs, heads, extra=(), indirect_tables=()):
    ram = bytearray(0x1000)
    for i, (addr, length, fl, nxt) in enumerate(descs):
        struct.pack_into("<QIHH", ram, 16 * i, addr, length, fl, nxt)
    struct.pack_into("<HH", ram, AVAIL, 0, len(heads))
    for i, h in enumerate(heads):
        struct.pack_into("<H", ram, AVAIL + 4 + 2 * i, h)
    for base, table in indirect_tables:
        for i, (addr, length, fl, nxt) in enumerate(table):
            struct.pack_into("<QIHH", ram, base + 16 * i, addr, length, fl, nxt)
    for addr, blob in extra:
        ram[addr:addr + len(blob)] = blob
    header = struct.pack("<BBHHH", flags, size_log2, 0, AVAIL // 2, USED // 4)
    return header + bytes(ram).rstrip(b"\0")


def hdr(kind, sector):
    return struct.pack("<IIQ", kind, 0, sector)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    seeds = {
        "read": seed(0, 4, [(0x500, 16, NEXT, 1), (0x600, 512, NEXT | WRITE, 2),
                            (0xf00, 1, WRITE, 0)], [0], [(0x500, hdr(IN, 3))]),
        "write_ro": seed(4, 4, [(0x500, 16, NEXT, 1), (0x600, 1024, NEXT, 2),
                                (0xf00, 1, WRITE, 0)], [0], [(0x500, hdr(OUT_, 0))]),
        "indirect": seed(3, 3, [(0x900, 48, INDIRECT, 0)], [0], [(0x500, hdr(IN, 1))],
                         [(0x900, [(0x500, 16, NEXT, 1), (0x600, 512, NEXT | WRITE, 2),
                                    (0xf00, 1, WRITE, 0)])]),
        "loop": seed(0, 2, [(0x500, 16, NEXT, 1), (0x600, 16, NEXT, 0)], [0]),
        "batch": seed(1, 5, [(0x500, 16, NEXT, 1), (0xf00, 1, WRITE, 0),
                             (0x510, 16, NEXT, 3), (0xf01, 1, WRITE, 0),
                             (0x520, 16, NEXT, 4), (0x600, 20, NEXT | WRITE, 5),
                             (0xf02, 1, WRITE, 0)], [0, 2, 4],
                      [(0x500, hdr(FLUSH, 0)), (0x510, hdr(99, 0)), (0x520, hdr(GET_ID, 0))]),
        "discard": seed(0, 4, [(0x500, 32, NEXT, 1), (0xf00, 1, WRITE, 0)], [0],
                        [(0x500, hdr(DISCARD, 0) + struct.pack("<QII", 8, 8, 0))]),
    }
    for name, blob in seeds.items():
        (OUT / name).write_bytes(blob)


if __name__ == "__main__":
    main()
