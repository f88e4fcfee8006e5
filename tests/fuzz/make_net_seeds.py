#!/usr/bin/env python3
"""Write the seed corpus for fuzz_net_tx (tests/fuzz/corpus/net_tx/).

Each seed is the 20-byte header fuzz_net_tx.c describes, then guest RAM:
the frames the "tap" hands the device come from RAM [0, 0x800) (so their
virtio-net header is zero unless a seed writes one there), TX descriptors
at 0x800, TX avail at 0xa00, TX used at 0xb00, RX descriptors at 0xc00,
RX avail at 0xe00, RX used at 0xf00, buffers from 0x1000. Queues of up
to 32 entries fit. Trailing zeroes are left off: the target zero-fills.
Run it again after changing the input format; the files are checked in.
"""
import pathlib
import struct

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "net_tx"
NEXT, WRITE, INDIRECT = 1, 2, 4
TXD, TXA, TXU = 0x800, 0xA00, 0xB00
RXD, RXA, RXU = 0xC00, 0xE00, 0xF00
EVENT_IDX, INDIRECT_F, CSUM, TSO4, TSO6, MRG, GUEST, RX = (1 << i for i in range(8))
NEEDS_CSUM, GSO_TCPV4 = 1, 1


def vnet_hdr(flags=0, gso=0, hdr_len=0, gso_size=0, start=0, off=0):
    return struct.pack("<BBHHHHH", flags, gso, hdr_len, gso_size, start, off, 0)


def frame(hdr, n, seed=1):
    return hdr + bytes((seed + 7 * i) & 0xFF for i in range(n))


def ring(ram, dbase, abase, descs, heads):
    for i, (addr, length, fl, nxt) in enumerate(descs):
        struct.pack_into("<QIHH", ram, dbase + 16 * i, addr, length, fl, nxt)
    struct.pack_into("<HH", ram, abase, 0, len(heads))
    for i, h in enumerate(heads):
        struct.pack_into("<H", ram, abase + 4 + 2 * i, h)


def seed(feats, tx=((), ()), rx=((), ()), extra=(), frames=(0, 0), txlog=4, rxlog=4):
    ram = bytearray(0x10000)
    ring(ram, TXD, TXA, *tx)
    ring(ram, RXD, RXA, *rx)
    for addr, blob in extra:
        ram[addr:addr + len(blob)] = blob
    header = struct.pack("<BBHHHBHHHBHH", feats, txlog, TXD // 16, TXA // 2, TXU // 4,
                         rxlog, RXD // 16, RXA // 2, RXU // 4, 0, frames[0], frames[1])
    assert len(header) == 20
    return header + bytes(ram).rstrip(b"\0")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    f60 = frame(vnet_hdr(), 60)
    seeds = {
        "tx_simple": seed(EVENT_IDX, ([(0x1000, len(f60), 0, 0)], [0]),
                          extra=[(0x1000, f60)]),
        "tx_split": seed(0, ([(0x1000, 5, NEXT, 1), (0x1005, 7, NEXT, 2),
                              (0x100C, 700, NEXT, 3), (0x1000 + 712, 800, 0, 0)], [0]),
                         extra=[(0x1000, frame(vnet_hdr(), 1500))]),
        "tx_indirect": seed(INDIRECT_F | EVENT_IDX, ([(0x3000, 48, INDIRECT, 0)], [0]),
                            extra=[(0x1000, frame(vnet_hdr(), 200)),
                                   (0x3000, struct.pack("<QIHHQIHHQIHH",
                                                        0x1000, 12, NEXT, 1,
                                                        0x100C, 100, NEXT, 2,
                                                        0x1070, 100, 0, 0))]),
        "tx_csum": seed(CSUM, ([(0x1000, 12 + 100, 0, 0)], [0]),
                        extra=[(0x1000, frame(vnet_hdr(NEEDS_CSUM, 0, 0, 0, 34, 6), 100))]),
        "tx_tso": seed(CSUM | TSO4, ([(0x1000, 12 + 3000, 0, 0)], [0]),
                       extra=[(0x1000, frame(vnet_hdr(NEEDS_CSUM, GSO_TCPV4, 54, 1448, 34, 16),
                                             3000))]),
        "tx_bad": seed(EVENT_IDX, ([(0x1000, 10, 0, 0),                  # short header
                                    (0x1000, 72, NEXT, 2), (0x1100, 8, WRITE, 0),  # writable
                                    (0x1000, 72, NEXT, 4), (0x1000, 72, NEXT, 3)],  # loop
                                   [0, 1, 3]), extra=[(0x1000, f60)]),
        "tx_oversized": seed(0, ([(0x1000, 60000, NEXT, 1), (0x1000, 5551, 0, 0)], [0])),
        "tx_batch": seed(EVENT_IDX, ([(0x1000 + 0x80 * i, len(f60), 0, 0) for i in range(16)],
                                     list(range(16))),
                         extra=[(0x1000 + 0x80 * i, f60) for i in range(16)]),
        "rx_mergeable": seed(RX | MRG | EVENT_IDX, rx=([(0x2000 + 0x400 * i, 1024, WRITE, 0)
                                                        for i in range(4)], [0, 1, 2, 3]),
                             frames=(1500, 100)),
        "rx_whole": seed(RX, rx=([(0x2000, 12, NEXT | WRITE, 1), (0x200C, 1514, WRITE, 0),
                                  (0x3000, 1526, WRITE, 0)], [0, 2]),
                         frames=(1600, 1526)),
        "rx_offload": seed(RX | GUEST | MRG, rx=([(0x2000, 4096, WRITE, 0)], [0]),
                           extra=[(0, vnet_hdr(NEEDS_CSUM, GSO_TCPV4, 54, 1448, 34, 16))],
                           frames=(1800, 0)),
        "rx_bad": seed(RX | MRG, rx=([(0x2000, 1024, 0, 0), (0x2400, 8, WRITE, 0),
                                     (0x2800, 1024, WRITE, 0)], [0, 1, 2]),
                       frames=(300, 0)),
    }
    for name, blob in seeds.items():
        (OUT / name).write_bytes(blob)
    print(f"wrote {len(seeds)} seeds to {OUT}")


if __name__ == "__main__":
    main()
