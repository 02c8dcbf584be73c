// SPDX-License-Identifier: GPL-2.0
/*
 * unit_agent_handoff.c - the TCP connection hand-off of two-stage requests
 * (agent/handoff.c; docs/agent.md "Direct server return of a two-stage
 * request"): the state's JSON both ways and what it refuses, freezing
 * what cannot be handed off, the table of prepared connections, and a
 * whole hand-off on loopback (needs CAP_NET_ADMIN, else skipped): a
 * served connection frozen and closed in repair mode, rebuilt in a new
 * socket beside the listener with a different request in its receive
 * queue, which the new socket reads, answers, and the client gets, with
 * no reset on the way.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <json-c/json.h>

#include "agent.h"
#include "tap.h"

static void test_state_json(void)
{
	struct ho_state s = { 0 }, t;
	json_object *o;

	s.local.sin_family = s.peer.sin_family = AF_INET;
	inet_pton(AF_INET, "10.99.0.1", &s.local.sin_addr);
	inet_pton(AF_INET, "10.10.0.2", &s.peer.sin_addr);
	s.local.sin_port = htons(8000);
	s.peer.sin_port = htons(51234);
	s.snd_seq = 0xfffffff0u;
	s.rcv_seq = 7;
	s.mss = 1460;
	s.ts = 0x80000001u;
	s.opts = 7;
	s.snd_wscale = 7;
	s.rcv_wscale = 10;
	s.win.snd_wl1 = 3;
	s.win.snd_wnd = 65535;
	s.win.max_window = 65535;
	s.win.rcv_wnd = 64000;
	s.win.rcv_wup = 5;
	o = ho_state_json(&s);
	if (!ASSERT_EQ(ho_state_parse(o, &t), 0, "parse"))
		goto out;
	ASSERT_EQ(memcmp(&s.local, &t.local, sizeof(s.local)), 0, "local");
	ASSERT_EQ(memcmp(&s.peer, &t.peer, sizeof(s.peer)), 0, "peer");
	ASSERT_EQ(t.snd_seq, s.snd_seq, "snd_seq");
	ASSERT_EQ(t.rcv_seq, s.rcv_seq, "rcv_seq");
	ASSERT_EQ(t.ts, s.ts, "ts");
	ASSERT_EQ(t.mss, 1460, "mss");
	ASSERT_EQ(t.opts, 7, "opts");
	ASSERT_EQ(t.snd_wscale, 7, "snd_wscale");
	ASSERT_EQ(t.rcv_wscale, 10, "rcv_wscale");
	ASSERT_EQ(memcmp(&s.win, &t.win, sizeof(s.win)), 0, "window");
out:
	json_object_put(o);
}

static void test_state_refused(void)
{
	static const char *const bad[] = {
		"{}",
		"{\"local\":\"10.99.0.1\",\"peer\":\"10.10.0.2\"}",
		/* window scale over 14 */
		"{\"local\":\"10.99.0.1\",\"local_port\":8000,\"peer\":\"10.10.0.2\",\"peer_port\":1,"
		"\"snd_seq\":1,\"rcv_seq\":1,\"mss\":1460,\"ts\":1,\"opts\":7,\"snd_wscale\":15,"
		"\"rcv_wscale\":7,\"snd_wl1\":1,\"snd_wnd\":1,\"max_window\":1,\"rcv_wnd\":1,"
		"\"rcv_wup\":1}",
		/* port 0, an IPv6 address, a negative sequence */
		"{\"local\":\"10.99.0.1\",\"local_port\":0,\"peer\":\"10.10.0.2\",\"peer_port\":1,"
		"\"snd_seq\":1,\"rcv_seq\":1,\"mss\":1460,\"ts\":1,\"opts\":7,\"snd_wscale\":7,"
		"\"rcv_wscale\":7,\"snd_wl1\":1,\"snd_wnd\":1,\"max_window\":1,\"rcv_wnd\":1,"
		"\"rcv_wup\":1}",
		"{\"local\":\"fd00::1\",\"local_port\":8000,\"peer\":\"10.10.0.2\",\"peer_port\":1,"
		"\"snd_seq\":1,\"rcv_seq\":1,\"mss\":1460,\"ts\":1,\"opts\":7,\"snd_wscale\":7,"
		"\"rcv_wscale\":7,\"snd_wl1\":1,\"snd_wnd\":1,\"max_window\":1,\"rcv_wnd\":1,"
		"\"rcv_wup\":1}",
		"{\"local\":\"10.99.0.1\",\"local_port\":8000,\"peer\":\"10.10.0.2\",\"peer_port\":1,"
		"\"snd_seq\":-1,\"rcv_seq\":1,\"mss\":1460,\"ts\":1,\"opts\":7,\"snd_wscale\":7,"
		"\"rcv_wscale\":7,\"snd_wl1\":1,\"snd_wnd\":1,\"max_window\":1,\"rcv_wnd\":1,"
		"\"rcv_wup\":1}",
		/* the MSS as a string */
		"{\"local\":\"10.99.0.1\",\"local_port\":8000,\"peer\":\"10.10.0.2\",\"peer_port\":1,"
		"\"snd_seq\":1,\"rcv_seq\":1,\"mss\":\"1460\",\"ts\":1,\"opts\":7,\"snd_wscale\":7,"
		"\"rcv_wscale\":7,\"snd_wl1\":1,\"snd_wnd\":1,\"max_window\":1,\"rcv_wnd\":1,"
		"\"rcv_wup\":1}",
		NULL };
	struct ho_state s;

	for (int i = 0; bad[i]; i++) {
		json_object *o = json_tokener_parse(bad[i]);
		char tag[32];

		snprintf(tag, sizeof(tag), "bad state %d", i);
		ASSERT_EQ(ho_state_parse(o, &s), -EINVAL, tag);
		json_object_put(o);
	}
}

static void test_freeze_refused(void)
{
	struct ho_state s;
	char why[200] = "";
	int u = socket(AF_UNIX, SOCK_STREAM, 0), t = socket(AF_INET, SOCK_STREAM, 0);

	ASSERT_EQ(ho_freeze(u, &s, why, sizeof(why)), -EAFNOSUPPORT, "a UNIX socket");
	ASSERT_TRUE(why[0], "says why");
	why[0] = 0;
	ASSERT_TRUE(ho_freeze(t, &s, why, sizeof(why)) < 0, "an unconnected TCP socket");
	ASSERT_TRUE(why[0], "says why");
	close(u);
	close(t);
}

static void test_pending(void)
{
	struct sockaddr_in p = { .sin_family = AF_INET, .sin_port = htons(9) }, q;
	int fd = dup(1), got = -1;

	ASSERT_EQ(ho_pend_add(42, fd, &p), 0, "add");
	ASSERT_EQ(ho_pend_add(42, fd, &p), -EEXIST, "the same id twice");
	ASSERT_EQ(ho_pend_take(43, &got, &q), -ENOENT, "another id");
	ASSERT_EQ(ho_pend_take(42, &got, &q), 0, "take");
	ASSERT_EQ(got, fd, "its descriptor");
	ASSERT_EQ(q.sin_port, htons(9), "its peer");
	ASSERT_EQ(ho_pend_take(42, &got, &q), -ENOENT, "taken once");
	close(fd);
}

static ssize_t read_to(int fd, char *b, size_t n, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, ms) != 1)
		return -ETIMEDOUT;
	return read(fd, b, n);
}

/*
 * A real hand-off on loopback: @dual, the server's listener is a
 * dual-stack IPv6 socket (the agent's "[::]:PORT"), so the connection's
 * addresses are IPv4-mapped IPv6 ones.
 */
static void loopback(bool dual)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
	socklen_t a6l = sizeof(a6);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	static const char inj[] = "POST /v1/completions HTTP/1.1\r\n\r\n";
	struct ho_state st;
	char why[200] = "", b[128];
	int l, c, s, r = -1, one = 1, err;
	ssize_t n;

	l = socket(dual ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	c = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (dual) {
		int off = 0;

		setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
		if (!ASSERT_EQ(bind(l, (struct sockaddr *)&a6, sizeof(a6)), 0, "bind [::]") ||
		    !ASSERT_EQ(getsockname(l, (struct sockaddr *)&a6, &a6l), 0, "port"))
			goto out;
		a.sin_port = a6.sin6_port;
	} else if (!ASSERT_EQ(bind(l, (struct sockaddr *)&a, sizeof(a)), 0, "bind") ||
		   !ASSERT_EQ(getsockname(l, (struct sockaddr *)&a, &al), 0, "port")) {
		goto out;
	}
	if (!ASSERT_EQ(listen(l, 4), 0, "listen") ||
	    !ASSERT_EQ(connect(c, (struct sockaddr *)&a, sizeof(a)), 0, "connect"))
		goto out;
	s = accept(l, NULL, NULL);
	/* the client's request, read by the server, and a first answer */
	ASSERT_EQ(write(c, "hello", 5), 5, "request");
	ASSERT_EQ(read_to(s, b, sizeof(b), 2000), 5, "server reads it");
	ASSERT_EQ(write(s, "ok", 2), 2, "first answer");
	ASSERT_EQ(read_to(c, b, sizeof(b), 2000), 2, "client reads it");
	err = ho_freeze(s, &st, why, sizeof(why));
	if (err == -EPERM) {
		tap_skip("TCP_REPAIR needs CAP_NET_ADMIN");
		close(s);
		goto out;
	}
	if (!ASSERT_EQ(err, 0, why)) {
		close(s);
		goto out;
	}
	ASSERT_EQ(ntohs(st.local.sin_port), ntohs(a.sin_port), "local port");
	ASSERT_EQ(ntohl(st.local.sin_addr.s_addr), INADDR_LOOPBACK, "local address, as IPv4");
	ASSERT_EQ(ntohl(st.peer.sin_addr.s_addr), INADDR_LOOPBACK, "peer address, as IPv4");
	ASSERT_TRUE(st.mss >= 64, "MSS clamp");
	close(s);	/* in repair mode: nothing sent, the client sees nothing */
	ASSERT_EQ(read_to(c, b, sizeof(b), 100), -ETIMEDOUT, "no FIN, no RST to the client");
	/* rebuilt beside the listener, another request in its receive queue */
	err = ho_restore(&st, inj, sizeof(inj) - 1, &r, why, sizeof(why));
	if (!ASSERT_EQ(err, 0, why))
		goto out;
	ASSERT_EQ(ho_commit(r), 0, "out of repair mode");
	n = read_to(r, b, sizeof(b), 2000);
	ASSERT_EQ(n, (ssize_t)sizeof(inj) - 1, "the new socket reads the injected request");
	ASSERT_TRUE(n > 0 && !memcmp(b, inj, n), "its bytes");
	ASSERT_EQ(write(r, "answer", 6), 6, "the new socket answers");
	ASSERT_EQ(read_to(c, b, sizeof(b), 2000), 6, "the client gets it");
	ASSERT_TRUE(!memcmp(b, "answer", 6), "its bytes");
	ASSERT_EQ(write(c, "more", 4), 4, "the client sends more");
	ASSERT_EQ(read_to(r, b, sizeof(b), 2000), 4, "the new socket gets it");
out:
	if (r >= 0)
		close(r);
	close(c);
	close(l);
}

static void test_loopback(void)
{
	loopback(false);
}

static void test_loopback_dual_stack(void)
{
	loopback(true);
}

int main(void)
{
	tap_plan(0);
	TAP_RUN(test_state_json);
	TAP_RUN(test_state_refused);
	TAP_RUN(test_freeze_refused);
	TAP_RUN(test_pending);
	TAP_RUN(test_loopback);
	TAP_RUN(test_loopback_dual_stack);
	return tap_done();
}
