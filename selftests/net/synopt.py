#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""synopt.py DEV PORT COUNT [TIMEOUT] - print the IDN TCP option of SYNs.

Listens with an AF_PACKET socket on DEV (run it inside the namespace) for
COUNT TCP SYNs (not SYN-ACKs) to PORT, IPv4 or IPv6, and prints one line per
SYN:  "syn SRC DST idn ver V tier T policy P size S cap CLS/VAR token N"
or    "syn SRC DST none"  when the SYN has no IDN option (kind 253, ExID
0x1D4E). Also decodes IPIP / IP6IP6 encapsulated SYNs. Exits 1 on timeout.
"""
import ipaddress
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003


def idn_opt(opts):
    i = 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        ln = opts[i + 1]
        body = opts[i:i + ln]
        if kind == 253 and ln == 20 and len(body) == 20 and body[2:4] == b"\x1d\x4e":
            vt, pol, size, _r, cap, thi, tlo = struct.unpack("!BBBBIII", body[4:20])
            return ("idn ver %d tier %d policy %d size %d cap %d/%d token %d" %
                    (vt >> 4, vt & 15, pol, size, cap >> 8, cap & 255, (thi << 32) | tlo))
        i += ln
    return "none"


def l3(pkt, proto):
    """Return (src, dst, l4 proto, l4 bytes) of an IPv4/IPv6 packet."""
    if proto == 0x0800 and len(pkt) >= 20:
        ihl = (pkt[0] & 15) * 4
        p = pkt[9]
        src, dst = socket.inet_ntop(socket.AF_INET, pkt[12:16]), socket.inet_ntop(socket.AF_INET, pkt[16:20])
        if p == 4:
            return l3(pkt[ihl:], 0x0800)
        if p == 41:
            return l3(pkt[ihl:], 0x86DD)
        return src, dst, p, pkt[ihl:]
    if proto == 0x86DD and len(pkt) >= 40:
        p = pkt[6]
        src, dst = socket.inet_ntop(socket.AF_INET6, pkt[8:24]), socket.inet_ntop(socket.AF_INET6, pkt[24:40])
        if p == 41:
            return l3(pkt[40:], 0x86DD)
        if p == 4:
            return l3(pkt[40:], 0x0800)
        return src, dst, p, pkt[40:]
    return None


def main():
    dev, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((dev, 0))
    print("listening", flush=True)
    end = time.time() + timeout
    seen = 0
    while seen < count:
        left = end - time.time()
        if left <= 0 or not select.select([s], [], [], left)[0]:
            return 1
        pkt, addr = s.recvfrom(65535)
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        if len(pkt) < 14:
            continue
        r = l3(pkt[14:], struct.unpack("!H", pkt[12:14])[0])
        if not r or r[2] != 6 or len(r[3]) < 20:
            continue
        tcp = r[3]
        dport = struct.unpack("!H", tcp[2:4])[0]
        flags = tcp[13]
        if dport != port or (flags & 0x12) != 0x02:
            continue
        off = (tcp[12] >> 4) * 4
        print("syn %s %s %s" % (r[0], r[1], idn_opt(tcp[20:off])), flush=True)
        seen += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
