#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""tele.py DST PORT NODE SEQ PENDING QUEUE KEYHEX KEYID [LOAD]

Send one agent telemetry datagram (version 2, docs/wire-format.md) to
DST:PORT, MACed with SipHash-2-4 under KEYHEX (32 hex digits) as key
generation KEYID. Tests use it to speak for a node (the right key) or to
forge one (a wrong key). SipHash is written here from the paper, a third
implementation beside bpf/lib/tele.h and libsodium's: a datagram the
router accepts shows all of them agree.
"""
import socket
import struct
import sys

M64 = (1 << 64) - 1


def rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & M64


def siphash24(key, msg):
    k0, k1 = struct.unpack("<QQ", key)
    v0, v1 = k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D
    v2, v3 = k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573

    def rnd():
        nonlocal v0, v1, v2, v3
        v0 = (v0 + v1) & M64; v1 = rotl(v1, 13) ^ v0; v0 = rotl(v0, 32)
        v2 = (v2 + v3) & M64; v3 = rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & M64; v3 = rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & M64; v1 = rotl(v1, 17) ^ v2; v2 = rotl(v2, 32)

    end = len(msg) - len(msg) % 8
    for i in range(0, end, 8):
        m = struct.unpack("<Q", msg[i:i + 8])[0]
        v3 ^= m
        rnd(); rnd()
        v0 ^= m
    b = (len(msg) & 0xFF) << 56
    for i, c in enumerate(msg[end:]):
        b |= c << (8 * i)
    v3 ^= b
    rnd(); rnd()
    v0 ^= b
    v2 ^= 0xFF
    for _ in range(4):
        rnd()
    return (v0 ^ v1 ^ v2 ^ v3) & M64


def datagram(node, seq, pending, queue, key, key_id, load=0):
    head = struct.pack("!IBBHIIIIHHI", 0x49444E54, 2, 0, 0, node, seq, queue, pending,
                       load, 0, key_id)
    return head + struct.pack("<Q", siphash24(key, head))


def main():
    if len(sys.argv) not in (9, 10):
        sys.exit(__doc__)
    dst, port, node, seq, pend, queue = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:7])
    key, key_id = bytes.fromhex(sys.argv[7]), int(sys.argv[8])
    load = int(sys.argv[9]) if len(sys.argv) == 10 else 0
    # the paper's check value: key 00..0f, message 00..0e
    assert siphash24(bytes(range(16)), bytes(range(15))) == 0xA129CA6149BE45E5
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.sendto(datagram(node, seq, pend, queue, key, key_id, load), (dst, port))


if __name__ == "__main__":
    main()
