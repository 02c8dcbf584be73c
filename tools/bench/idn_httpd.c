// SPDX-License-Identifier: GPL-2.0
/*
 * idn_httpd - the smallest useful HTTP/1.1 server, for the router
 * requests/s benchmark: one thread, epoll, keep-alive, every request
 * (anything ending in an empty line) answered with the same 200 response
 * naming the node. Fast enough that the client/router path, not the
 * server, is what the benchmark sees (selftests/net/httpd.py is the
 * functional test server; it is Python and far slower).
 *
 *   idn_httpd NAME [PORT]     listens on 0.0.0.0:PORT (default 80)
 *
 * Runs until killed. Exit 1 when it cannot listen, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define MAX_EV		64
#define MAX_FD		65536

static unsigned char match[MAX_FD];	/* bytes of "\r\n\r\n" seen, per fd */

int main(int argc, char **argv)
{
	static char resp[256], out[65536], in[65536];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct epoll_event ev, evs[MAX_EV];
	int lfd, ep, one = 1, rlen, port = 80;

	if (argc < 2 || argc > 3)
		return fprintf(stderr, "usage: idn_httpd NAME [PORT]\n"), 2;
	if (argc == 3)
		port = atoi(argv[2]);
	{
		char body[128];
		int bl = snprintf(body, sizeof(body), "node %s\n", argv[1]);

		rlen = snprintf(resp, sizeof(resp),
				"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
				"Content-Length: %d\r\nX-IDN-Node: %s\r\n\r\n%s",
				bl, argv[1], body);
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_port = htons((unsigned short)port);
	if (lfd < 0 || bind(lfd, (void *)&sa, sizeof(sa)) || listen(lfd, 4096)) {
		perror("idn_httpd: listen");
		return 1;
	}
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);

	for (;;) {
		int n = epoll_wait(ep, evs, MAX_EV, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == lfd) {
				int c;

				while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					if (c >= MAX_FD) {
						close(c);
						continue;
					}
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					match[c] = 0;
					ev.events = EPOLLIN;
					ev.data.fd = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			for (;;) {
				ssize_t r = read(fd, in, sizeof(in));
				size_t o = 0;
				unsigned m = match[fd];
				int bad = 0;

				if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
					close(fd);	/* also leaves the epoll set */
					break;
				}
				if (r < 0)
					break;
				for (ssize_t k = 0; k < r && !bad; k++) {
					char b = in[k];

					if (b == "\r\n\r\n"[m])
						m++;
					else
						m = b == '\r';
					if (m < 4)
						continue;
					m = 0;
					if (o + (size_t)rlen > sizeof(out)) {
						bad = write(fd, out, o) < 0;
						o = 0;
					}
					memcpy(out + o, resp, (size_t)rlen);
					o += (size_t)rlen;
				}
				match[fd] = (unsigned char)m;
				if (bad || (o && write(fd, out, o) < 0)) {
					close(fd);
					break;
				}
			}
		}
	}
}
