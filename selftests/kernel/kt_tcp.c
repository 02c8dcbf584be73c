// SPDX-License-Identifier: GPL-2.0
/*
 * kt_tcp.c - TCP endpoints for the kernel tier's hold tests: a tool, not a
 * test (no checks here; test_hold.sh and test_activate.sh check its
 * output and exit status), so not on the kselftest harness.
 *
 *   kt_tcp listen PORT                 accept, answer "idn\n", close; forever
 *   kt_tcp connect ADDR PORT TIMEOUT_MS
 *       prints "connected MS", "refused MS" (RST) or "timeout MS" and exits
 *       0, 3 or 4 (1 on other errors); MS: time to the outcome.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd, one = 1;

	if (argc >= 3 && !strcmp(argv[1], "listen")) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		a.sin_port = htons(atoi(argv[2]));
		if (bind(fd, (void *)&a, sizeof(a)) || listen(fd, 64))
			return 1;
		for (;;) {
			int c = accept(fd, NULL, NULL);

			if (c < 0)
				continue;
			if (write(c, "idn\n", 4) < 0)
				perror("write");
			close(c);
		}
	}
	if (argc >= 5 && !strcmp(argv[1], "connect")) {
		long t0 = now_ms(), tmo = atol(argv[4]);
		struct pollfd p;
		socklen_t l = sizeof(int);
		int err = 0;

		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		a.sin_port = htons(atoi(argv[3]));
		inet_pton(AF_INET, argv[2], &a.sin_addr);
		if (connect(fd, (void *)&a, sizeof(a)) && errno != EINPROGRESS)
			return 1;
		p.fd = fd;
		p.events = POLLOUT;
		if (poll(&p, 1, tmo) <= 0) {
			printf("timeout %ld\n", now_ms() - t0);
			return 4;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (!err) {
			printf("connected %ld\n", now_ms() - t0);
			return 0;
		}
		printf("%s %ld\n", err == ECONNREFUSED ? "refused" : strerror(err), now_ms() - t0);
		return err == ECONNREFUSED ? 3 : 1;
	}
	fprintf(stderr, "usage: kt_tcp listen PORT | connect ADDR PORT TIMEOUT_MS\n");
	return 2;
}
