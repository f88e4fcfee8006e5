#!/usr/bin/env python3
"""Network helpers run inside a test's own network namespace
(`ip netns exec NS python3 nethelper.py ...`), so every packet stays there.

  ping ADDR [COUNT]          ICMP echo (raw socket); exit 0 if every one came back
  udp ADDR PORT SIZE...      UDP echo of SIZE-byte payloads; exit 0 if each matched
  send ADDR PORT TEXT        one UDP datagram
  tapfd NAME CMD...          open tap NAME (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR) and exec
                             CMD with it inherited; "{fd}" in CMD becomes its number
  hold NAME SECS             keep tap NAME attached for SECS seconds
"""
import fcntl
import os
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x1000, 0x4000


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ping(addr, count=3, timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(timeout)
    ident = os.getpid() & 0xFFFF
    ok = 0
    for seq in range(count):
        payload = bytes((seq + i) & 0xFF for i in range(56))
        hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        pkt = struct.pack("!BBHHH", 8, 0, checksum(hdr + payload), ident, seq) + payload
        start = time.monotonic()
        s.sendto(pkt, (addr, 0))
        while True:
            try:
                data, src = s.recvfrom(2048)
            except socket.timeout:
                print(f"ping: seq {seq}: no reply")
                break
            ihl = (data[0] & 15) * 4
            icmp = data[ihl:]
            typ, _, _, rid, rseq = struct.unpack("!BBHHH", icmp[:8])
            if src[0] == addr and typ == 0 and rid == ident and rseq == seq:
                if icmp[8:] != payload or checksum(icmp) != 0:
                    print(f"ping: seq {seq}: bad reply")
                    break
                ok += 1
                print(f"ping: seq {seq} from {addr} in {(time.monotonic() - start) * 1e3:.2f} ms")
                break
    print(f"PING {ok}/{count}")
    return ok == count


def udp(addr, port, sizes):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    good = True
    for size in sizes:
        payload = bytes((size * 7 + i) & 0xFF for i in range(size))
        for attempt in range(3):
            s.sendto(payload, (addr, port))
            try:
                data, src = s.recvfrom(65536)
            except socket.timeout:
                continue
            if data == payload and src == (addr, port):
                print(f"UDP {size} ok")
                break
            print(f"UDP {size}: wrong echo ({len(data)} bytes from {src})")
            good = False
            break
        else:
            print(f"UDP {size}: no echo")
            good = False
    return good


def open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    ifr = struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)
    fcntl.ioctl(fd, TUNSETIFF, ifr)
    return fd


def main(argv):
    cmd = argv[1]
    if cmd == "ping":
        return 0 if ping(argv[2], int(argv[3]) if len(argv) > 3 else 3) else 1
    if cmd == "udp":
        return 0 if udp(argv[2], int(argv[3]), [int(x) for x in argv[4:]]) else 1
    if cmd == "send":
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(argv[4].encode(),
                                                                (argv[2], int(argv[3])))
        return 0
    if cmd == "tapfd":
        fd = open_tap(argv[2])
        os.set_inheritable(fd, True)
        args = [a.replace("{fd}", str(fd)) for a in argv[3:]]
        os.execvp(args[0], args)
    if cmd == "hold":
        fd = open_tap(argv[2])
        print("HOLDING", flush=True)
        time.sleep(float(argv[3]))
        os.close(fd)
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
