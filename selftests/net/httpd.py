#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""httpd.py NAME [PORT] - a small HTTP/1.1 server for IDN's namespace tests.

Listens on [::]:PORT (IPv4 and IPv6, any local address, so VIPs on lo and
a whole IPv6 descriptor prefix routed to lo all reach it) and answers:
  GET /            "node NAME\\n"  (which node served the request)
  GET /bytes/N     N bytes of filler; ?rate=BPS paces it (long-lived flows;
                   curl 7.88's --limit-rate does not hold back a fast peer)
  GET /who         "node NAME client ADDR server ADDR\\n"
Every response carries the header "X-IDN-Node: NAME". Keep-alive, threaded.
"""
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = sys.argv[1] if len(sys.argv) > 1 else "node"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 80
CHUNK = b"x" * 65536


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "idn-testd"
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def head(self, length, ctype="text/plain"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("X-IDN-Node", NAME)
        self.end_headers()

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path.startswith("/bytes/"):
            try:
                n = int(path[7:])
                rate = int(query[5:]) if query.startswith("rate=") else 0
            except ValueError:
                self.send_error(400)
                return
            self.head(n, "application/octet-stream")
            step = min(len(CHUNK), max(1024, rate // 20)) if rate else len(CHUNK)
            start, sent = time.monotonic(), 0
            try:
                while sent < n:
                    k = min(n - sent, step)
                    self.wfile.write(CHUNK[:k])
                    sent += k
                    if rate:
                        ahead = sent / rate - (time.monotonic() - start)
                        if ahead > 0:
                            time.sleep(ahead)
            except OSError:
                pass
            return
        if path == "/who":
            body = ("node %s client %s server %s\n" %
                    (NAME, self.client_address[0], self.connection.getsockname()[0]))
        elif path == "/":
            body = "node %s\n" % NAME
        else:
            self.send_error(404)
            return
        data = body.encode()
        self.head(len(data))
        self.wfile.write(data)


class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    request_queue_size = 1024

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


if __name__ == "__main__":
    Server(("::", PORT), Handler).serve_forever()
