#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""attack.py - attack clients for selftests/security (standard library only).

  attack.py hold HOST PORT N [SRC]      open N TCP connections (from SRC) and
                                        keep them idle until killed; prints
                                        "held K" once K are connected
  attack.py slowbody HOST PORT N SIZE PATH
                                        N connections each announcing a POST
                                        body of SIZE bytes, sending SIZE-1 of
                                        it and holding; prints "held K sent B"
  attack.py flood URL PATH N TEMPLATE   N POSTs of TEMPLATE % i over one
                                        keep-alive connection; prints the
                                        count of each status code as CODE:N
  attack.py kvhello HOST PORT TOTAL     one KV stream: read the challenge, send a
                                        40-byte hello announcing TOTAL bytes and
                                        an empty auth; prints "status N" (the
                                        receiver's answer) or "closed"
  attack.py count PORT SECONDS          listen on 127.0.0.1:PORT for SECONDS;
                                        prints "connections N"
"""
import os
import select
import struct
import http.client
import socket
import sys
import time
import urllib.parse


def hold(host, port, n, src=None):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if src:
            s.bind((src, 0))
        s.settimeout(5)
        try:
            s.connect((host, port))
        except OSError:
            s.close()
            break
        socks.append(s)
    print("held %d" % len(socks), flush=True)
    while True:
        time.sleep(3600)


def slowbody(host, port, n, size, path):
    socks, sent = [], 0
    chunk = b"x" * 65536
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect((host, port))
            s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\n\r\n" % (path, size)).encode())
            left = size - 1
            while left > 0:
                k = min(left, len(chunk))
                s.sendall(chunk[:k])
                left -= k
                sent += k
        except OSError:
            s.close()
            continue
        socks.append(s)
    print("held %d sent %d" % (len(socks), sent), flush=True)
    while True:
        time.sleep(3600)


def flood(url, path, n, template):
    u = urllib.parse.urlsplit(url)
    codes = {}
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    for i in range(n):
        body = template % i
        try:
            c.request("POST", path, body, {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            code = r.status
        except (OSError, http.client.HTTPException):
            c.close()
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            code = 0
        codes[code] = codes.get(code, 0) + 1
    print(" ".join("%d:%d" % kv for kv in sorted(codes.items())))


def kvhello(host, port, total):
    s = socket.create_connection((host, port), timeout=10)
    chal = b""
    while len(chal) < 24:
        b = s.recv(24 - len(chal))
        if not b:
            print("closed")
            return
        chal += b
    hello = struct.pack("<IHHHHIQQII", 0x4b4e4449, 2, 0, 1, 0, 0xffffffff,
                        int.from_bytes(os.urandom(8), "little") | 1, total, 1, 0)
    assert len(hello) == 40
    auth = struct.pack("<II", 0x48545541, 0) + bytes(48)
    s.sendall(hello + auth)
    res = b""
    while len(res) < 8:
        b = s.recv(8 - len(res))
        if not b:
            break
        res += b
    if len(res) < 8:
        print("closed")
    else:
        print("status %d" % struct.unpack("<Ii", res)[1])


def count(port, seconds):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    print("listening", flush=True)
    n, end = 0, time.time() + seconds
    while time.time() < end:
        r, _, _ = select.select([ls], [], [], 0.1)
        if r:
            c, _ = ls.accept()
            c.close()
            n += 1
    print("connections %d" % n, flush=True)


def main(a):
    if len(a) >= 4 and a[0] == "hold":
        hold(a[1], int(a[2]), int(a[3]), a[4] if len(a) > 4 else None)
    elif len(a) == 6 and a[0] == "slowbody":
        slowbody(a[1], int(a[2]), int(a[3]), int(a[4]), a[5])
    elif len(a) == 4 and a[0] == "kvhello":
        kvhello(a[1], int(a[2]), int(a[3]))
    elif len(a) == 3 and a[0] == "count":
        count(int(a[1]), float(a[2]))
    elif len(a) == 5 and a[0] == "flood":
        flood(a[1], a[2], int(a[3]), a[4])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
