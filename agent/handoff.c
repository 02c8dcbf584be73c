// SPDX-License-Identifier: GPL-2.0
/*
 * handoff.c - a client's TCP connection handed from one node to another
 * (docs/agent.md "Direct server return of a two-stage request"): the
 * prefill node freezes the connection (TCP_REPAIR) and reads its state;
 * the decode node rebuilds it in a socket of its own (repair mode: no
 * SYN, the sequence numbers, options, window and timestamp clock the
 * client knows), with the request to serve placed in its receive queue;
 * the prefill node's dataplane forwards the client's packets there
 * (idn_handoff, bpf/idn_node.bpf.c). The HTTP side (prepare, commit,
 * abort, MHD) is in http.c.
 *
 * Linux only, IPv4, CAP_NET_ADMIN (TCP_REPAIR). Every failure before the
 * commit leaves the prefill node's connection as it was (ho_thaw()).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <json-c/json.h>

#include "agent.h"
#include "json_get.h"
#include <linux/idn.h>

#ifndef TCP_REPAIR_OFF
#define TCP_REPAIR_OFF		0
#endif
#ifndef TCP_REPAIR_OFF_NO_WP
#define TCP_REPAIR_OFF_NO_WP	-1
#endif
#ifndef TCPOPT_MSS
#define TCPOPT_MSS		2
#define TCPOPT_WINDOW		3
#define TCPOPT_SACK_PERMITTED	4
#define TCPOPT_TIMESTAMP	8
#endif

/* the decode node's clock starts this far past the prefill node's: idn_stamp
 * rounds a TSval up by at most IDN_TS_COOKIE_MASK, so no TSval the decode
 * node sends is below one the client saw (PAWS) */
#define HO_TS_AHEAD		(IDN_TS_COOKIE_MASK + 1)

static int sopt(int fd, int lvl, int name, int v)
{
	return setsockopt(fd, lvl, name, &v, sizeof(v)) ? -errno : 0;
}

static int gopt(int fd, int name, uint32_t *v)
{
	socklen_t l = sizeof(*v);

	return getsockopt(fd, IPPROTO_TCP, name, v, &l) ? -errno : 0;
}

void ho_thaw(int fd)
{
	sopt(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP);
}

/*
 * The connection's address (@get: getsockname or getpeername) as IPv4: an
 * AF_INET socket's, or a dual-stack listener's IPv4-mapped IPv6 one
 * (::ffff:a.b.c.d, the same connection on the wire). 0, or -1: neither.
 */
static int sock_v4(int fd, int (*get)(int, struct sockaddr *, socklen_t *),
		   struct sockaddr_in *out)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;

	if (get(fd, (struct sockaddr *)&ss, &l))
		return -1;
	if (ss.ss_family == AF_INET) {
		memcpy(out, &ss, sizeof(*out));
		return 0;
	}
	if (ss.ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return -1;
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = s6->sin6_port;
	memcpy(&out->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	return 0;
}

int ho_freeze(int fd, struct ho_state *s, char *why, size_t wl)
{
	struct tcp_info ti;
	socklen_t l;
	int n = 0, q = 0, err;

	memset(s, 0, sizeof(*s));
	if (sock_v4(fd, getsockname, &s->local))
		return snprintf(why, wl, "not an IPv4 connection"), -EAFNOSUPPORT;
	if (sock_v4(fd, getpeername, &s->peer))
		return snprintf(why, wl, "no IPv4 peer"), -EAFNOSUPPORT;
	l = sizeof(ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l))
		return snprintf(why, wl, "TCP_INFO: %s", strerror(errno)), -errno;
	if (ti.tcpi_state != 1 /* TCP_ESTABLISHED */)
		return snprintf(why, wl, "connection not established (state %u)",
				ti.tcpi_state), -ENOTCONN;
	/* what was sent is acknowledged (a "100 Continue" may still be in flight) */
	while (!ioctl(fd, SIOCOUTQ, &q) && q && n++ < 100)
		nanosleep(&(struct timespec){ .tv_nsec = 2000000 }, NULL);
	if (q)
		return snprintf(why, wl, "%d bytes sent and not acknowledged", q), -EBUSY;
	if (ioctl(fd, SIOCINQ, &q) || q)
		return snprintf(why, wl, "%d bytes received and not read (pipelined)", q),
		       -EBUSY;
	err = sopt(fd, IPPROTO_TCP, TCP_REPAIR, 1);
	if (err)
		return snprintf(why, wl, "TCP_REPAIR: %s", strerror(-err)), err;
	/* frozen: nothing more is sent; read its state */
	l = sizeof(s->win);
	if ((err = sopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)) ||
	    (err = gopt(fd, TCP_QUEUE_SEQ, &s->snd_seq)) ||
	    (err = sopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)) ||
	    (err = gopt(fd, TCP_QUEUE_SEQ, &s->rcv_seq)) ||
	    (err = sopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE)) ||
	    (err = gopt(fd, TCP_MAXSEG, &s->mss)) ||
	    (err = gopt(fd, TCP_TIMESTAMP, &s->ts)) ||
	    (getsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &s->win, &l) ? (err = -errno) : 0)) {
		snprintf(why, wl, "reading the connection's state: %s", strerror(-err));
		ho_thaw(fd);
		return err;
	}
	/* again, frozen: nothing arrived since */
	l = sizeof(ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) || ioctl(fd, SIOCINQ, &q) || q ||
	    ioctl(fd, SIOCOUTQ, &n) || n) {
		snprintf(why, wl, "the connection moved while frozen");
		ho_thaw(fd);
		return -EBUSY;
	}
	s->opts = ti.tcpi_options;
	s->snd_wscale = ti.tcpi_snd_wscale;
	s->rcv_wscale = ti.tcpi_rcv_wscale;
	return 0;
}

void ho_drop(int fd)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	/* the frozen socket goes without a FIN or RST (closed in repair mode);
	 * the descriptor stays valid for its owner, who closes a bare socket */
	if (s >= 0) {
		dup2(s, fd);
		close(s);
	}
}

json_object *ho_state_json(const struct ho_state *s)
{
	json_object *o = json_object_new_object();
	char a[INET_ADDRSTRLEN];

#define ADD(k, v) json_object_object_add(o, k, json_object_new_int64(v))
	inet_ntop(AF_INET, &s->local.sin_addr, a, sizeof(a));
	json_object_object_add(o, "local", json_object_new_string(a));
	ADD("local_port", ntohs(s->local.sin_port));
	inet_ntop(AF_INET, &s->peer.sin_addr, a, sizeof(a));
	json_object_object_add(o, "peer", json_object_new_string(a));
	ADD("peer_port", ntohs(s->peer.sin_port));
	ADD("snd_seq", s->snd_seq);
	ADD("rcv_seq", s->rcv_seq);
	ADD("mss", s->mss);
	ADD("ts", s->ts);
	ADD("opts", s->opts);
	ADD("snd_wscale", s->snd_wscale);
	ADD("rcv_wscale", s->rcv_wscale);
	ADD("snd_wl1", s->win.snd_wl1);
	ADD("snd_wnd", s->win.snd_wnd);
	ADD("max_window", s->win.max_window);
	ADD("rcv_wnd", s->win.rcv_wnd);
	ADD("rcv_wup", s->win.rcv_wup);
#undef ADD
	return o;
}

int ho_state_parse(json_object *o, struct ho_state *s)
{
	const char *l = idn_jstr(o, "local"), *p = idn_jstr(o, "peer");
	int64_t v[15];
	static const char *const k[15] = { "local_port", "peer_port", "snd_seq", "rcv_seq",
		"mss", "ts", "opts", "snd_wscale", "rcv_wscale", "snd_wl1", "snd_wnd",
		"max_window", "rcv_wnd", "rcv_wup", NULL };

	memset(s, 0, sizeof(*s));
	if (!l || !p || inet_pton(AF_INET, l, &s->local.sin_addr) != 1 ||
	    inet_pton(AF_INET, p, &s->peer.sin_addr) != 1)
		return -EINVAL;
	for (int i = 0; k[i]; i++) {
		v[i] = idn_jint(o, k[i], -1);
		if (v[i] < 0 || v[i] > UINT32_MAX)
			return -EINVAL;
	}
	if (!v[0] || v[0] > 65535 || !v[1] || v[1] > 65535 || v[7] > 14 || v[8] > 14 ||
	    v[4] < 64 || v[4] > 65535)
		return -EINVAL;
	s->local.sin_family = s->peer.sin_family = AF_INET;
	s->local.sin_port = htons(v[0]);
	s->peer.sin_port = htons(v[1]);
	s->snd_seq = v[2];
	s->rcv_seq = v[3];
	s->mss = v[4];
	s->ts = v[5];
	s->opts = v[6];
	s->snd_wscale = v[7];
	s->rcv_wscale = v[8];
	s->win.snd_wl1 = v[9];
	s->win.snd_wnd = v[10];
	s->win.max_window = v[11];
	s->win.rcv_wnd = v[12];
	s->win.rcv_wup = v[13];
	return 0;
}

int ho_restore(const struct ho_state *s, const char *req, size_t len, int *out, char *why,
	       size_t wl)
{
	struct tcp_repair_opt o[4];
	const char *what;
	size_t off = 0;
	int fd, n = 0, err;

	*out = -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return snprintf(why, wl, "socket: %s", strerror(errno)), -errno;
	/* repair mode: binding beside the listener is allowed (SK_FORCE_REUSE),
	 * connect() sends no SYN */
	what = "TCP_REPAIR";
	if ((err = sopt(fd, IPPROTO_TCP, TCP_REPAIR, 1)))
		goto fail;
	what = "IP_FREEBIND";
	if ((err = sopt(fd, IPPROTO_IP, IP_FREEBIND, 1)))
		goto fail;
	what = "sequence numbers";
	if ((err = sopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)) ||
	    (err = sopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, (int)s->snd_seq)) ||
	    (err = sopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)) ||
	    (err = sopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, (int)(s->rcv_seq - (uint32_t)len))))
		goto fail;
	/* the client's MSS from the start (connect() sizes segments by it);
	 * TCP_MAXSEG takes at most 32767: a larger clamp (loopback) is set by
	 * TCP_REPAIR_OPTIONS below only */
	what = "TCP_MAXSEG";
	if (s->mss <= 32767 && (err = sopt(fd, IPPROTO_TCP, TCP_MAXSEG, (int)s->mss)))
		goto fail;
	what = "bind";
	if (bind(fd, (const struct sockaddr *)&s->local, sizeof(s->local))) {
		err = -errno;
		goto fail;
	}
	what = "connect";
	if (connect(fd, (const struct sockaddr *)&s->peer, sizeof(s->peer))) {
		err = -errno;
		goto fail;
	}
	o[n].opt_code = TCPOPT_MSS;
	o[n++].opt_val = s->mss;
	if (s->opts & TCPI_OPT_WSCALE) {
		o[n].opt_code = TCPOPT_WINDOW;
		o[n++].opt_val = s->snd_wscale | (uint32_t)s->rcv_wscale << 16;
	}
	if (s->opts & TCPI_OPT_SACK) {
		o[n].opt_code = TCPOPT_SACK_PERMITTED;
		o[n++].opt_val = 0;
	}
	if (s->opts & TCPI_OPT_TIMESTAMPS) {
		o[n].opt_code = TCPOPT_TIMESTAMP;
		o[n++].opt_val = 0;
	}
	what = "TCP_REPAIR_OPTIONS";
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, o, n * sizeof(o[0]))) {
		err = -errno;
		goto fail;
	}
	/* the request to serve, as if the client had sent it */
	what = "the request into the receive queue";
	if ((err = sopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)))
		goto fail;
	while (off < len) {
		ssize_t k = send(fd, req + off, len - off, MSG_NOSIGNAL);

		if (k <= 0) {
			err = k < 0 ? -errno : -EIO;
			goto fail;
		}
		off += k;
	}
	what = "TCP_REPAIR_WINDOW";
	if ((err = sopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE)) ||
	    (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &s->win, sizeof(s->win)) ?
	     (err = -errno) : 0))
		goto fail;
	what = "TCP_TIMESTAMP";
	if ((s->opts & TCPI_OPT_TIMESTAMPS) &&
	    (err = sopt(fd, IPPROTO_TCP, TCP_TIMESTAMP, (int)(s->ts + HO_TS_AHEAD))))
		goto fail;
	*out = fd;
	return 0;
fail:
	snprintf(why, wl, "%s: %s", what, strerror(-err));
	close(fd);	/* in repair mode: nothing sent */
	return err;
}

int ho_commit(int fd)
{
	/* out of repair mode; the window probe it sends acknowledges the
	 * client's request on this node's behalf */
	return sopt(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF);
}

/* ---- the node dataplane's idn_handoff (bpf/idn_node.bpf.c) -------------- */

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

int ho_map_open(const char *path)
{
	union bpf_attr at;
	int fd;

	memset(&at, 0, sizeof(at));
	at.pathname = (uint64_t)(uintptr_t)path;
	fd = sys_bpf(BPF_OBJ_GET, &at);
	return fd < 0 ? -errno : fd;
}

static void ho_key(const struct ho_state *s, struct idn_handoff_key *k)
{
	memset(k, 0, sizeof(*k));
	k->saddr = s->peer.sin_addr.s_addr;
	k->daddr = s->local.sin_addr.s_addr;
	k->sport = s->peer.sin_port;
	k->dport = s->local.sin_port;
}

int ho_map_set(int mfd, const struct ho_state *s, uint32_t node4)
{
	struct idn_handoff_key k;
	struct idn_handoff_val v = { .node4 = node4 };
	union bpf_attr at;

	ho_key(s, &k);
	memset(&at, 0, sizeof(at));
	at.map_fd = mfd;
	at.key = (uint64_t)(uintptr_t)&k;
	at.value = (uint64_t)(uintptr_t)&v;
	at.flags = BPF_ANY;
	return sys_bpf(BPF_MAP_UPDATE_ELEM, &at) ? -errno : 0;
}

void ho_map_del(int mfd, const struct ho_state *s)
{
	struct idn_handoff_key k;
	union bpf_attr at;

	ho_key(s, &k);
	memset(&at, 0, sizeof(at));
	at.map_fd = mfd;
	at.key = (uint64_t)(uintptr_t)&k;
	sys_bpf(BPF_MAP_DELETE_ELEM, &at);
}

/* ---- the decode node: connections prepared, not committed yet ----------- */

#define HO_PENDING	64
#define HO_PENDING_S	10	/* a prepared connection not committed by then is dropped */

static struct {
	uint64_t id;
	int fd;
	time_t at;
	struct sockaddr_in peer;
} pend[HO_PENDING];
static pthread_mutex_t pend_mu = PTHREAD_MUTEX_INITIALIZER;

static time_t mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec;
}

int ho_pend_add(uint64_t id, int fd, const struct sockaddr_in *peer)
{
	time_t now = mono();
	int i, free_i = -1;

	pthread_mutex_lock(&pend_mu);
	for (i = 0; i < HO_PENDING; i++) {
		if (pend[i].id && now - pend[i].at > HO_PENDING_S) {
			close(pend[i].fd);	/* still in repair mode: nothing sent */
			pend[i].id = 0;
		}
		if (pend[i].id == id && id) {
			pthread_mutex_unlock(&pend_mu);
			return -EEXIST;
		}
		if (!pend[i].id && free_i < 0)
			free_i = i;
	}
	if (free_i >= 0) {
		pend[free_i].id = id;
		pend[free_i].fd = fd;
		pend[free_i].at = now;
		pend[free_i].peer = *peer;
	}
	pthread_mutex_unlock(&pend_mu);
	return free_i < 0 ? -ENOSPC : 0;
}

int ho_pend_take(uint64_t id, int *fd, struct sockaddr_in *peer)
{
	int i;

	pthread_mutex_lock(&pend_mu);
	for (i = 0; i < HO_PENDING; i++)
		if (id && pend[i].id == id) {
			*fd = pend[i].fd;
			if (peer)
				*peer = pend[i].peer;
			pend[i].id = 0;
			break;
		}
	pthread_mutex_unlock(&pend_mu);
	return i < HO_PENDING ? 0 : -ENOENT;
}
