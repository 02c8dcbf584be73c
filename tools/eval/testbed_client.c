// SPDX-License-Identifier: GPL-2.0
/*
 * idn_tbclient - make eval's testbed client: replays a trace slice as real
 * OpenAI streaming completions against a running IDN (tools/eval/testbed.sh)
 * and measures each request from the client's side.
 *
 *   idn_tbclient --trace FILE --addr ADDR --port P [--limit N] [--nodes N]
 *                [--rho R] [--speed X] [--keepalive] [--pin DIR]
 *                [--cap CLASS/VAR] [--salt S] [--out FILE] [--timeout S]
 *                [--model NAME] [--spread] [--scale S]
 *   idn_tbclient --agent-args [--speed X]
 *
 * Arrivals: the trace's times / the scale for load rho on N nodes (the
 * simulator's ev_scale_for(); --scale S instead: that one) / speed, in
 * real time from the start.
 * Prompts: whitespace-separated words, as many as the request's
 * input_length (the emulator counts a word as a token); the words of block
 * b (512 tokens) come from the request's chained block key b (the trace's
 * hash_ids, tools/eval/trace.c), so requests sharing leading hash ids share
 * leading text blocks, and the agent's text hashing (eng_keys_from_text)
 * finds the same prefix; the rest is the request's own. --spread spaces
 * requests sharing a timestamp as idn_eval --spread does (ev_trace_spread). max_tokens =
 * output_length, "stream": true.
 *
 * Connections: by default one per request ("Connection: close"), each
 * routed afresh by the dataplane; --keepalive keeps a pool per client
 * session (the trace's session key): a request reuses an idle connection of
 * its session when there is one (the dataplane decided where it goes when
 * the connection opened), else opens one. With --pin DIR (the stamp
 * program's pins; run under idn-stamp run) every new socket carries the
 * descriptor the simulator's IDN router sees: token = session key, size
 * class of the prompt, the capability, tier 0.
 *
 * TTFT = first streamed token (the first "data:" event with a choice) -
 * the request's scheduled send time, so connection set-up, a late client
 * and the wait for a busy connection count. Output: a "# tb ..." summary
 * line on stdout, one line per request in --out FILE.
 * --agent-args prints the idn-agent options that give its emulator the
 * simulator's engine (ev_eng_params(): the same coefficients, KV, block,
 * batch and cache policy) at --speed X.
 * Exit status: 0 when the replay ran (the summary says what failed), 1 on
 * a set-up error, 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "eval.h"
#include "stamp.h"

#define BLOCK		EV_TRACE_BLOCK
#define HDR_MAX		16384
#define LINE_MAX_B	8192

enum cstate { C_CONNECT, C_SEND, C_HDR, C_BODY, C_IDLE };
enum bstate { B_SIZE, B_DATA, B_DATA_CRLF, B_TRAILER, B_PLAIN };

struct rq {
	double t_send;		/* scheduled, us from the start */
	double ttft, e2e;	/* us, -1 none */
	int status;		/* HTTP status; 0 no answer */
	int node;		/* from the answer's id, -1 unknown */
	uint32_t cached, gen;
	uint8_t reused, done, failed, retried;
	char why[24];
};

struct conn {
	int fd;
	enum cstate st;
	uint64_t sess;
	long req;		/* request in flight, -1 */
	bool reused, got, keep;	/* reused: not this request's own connection */
	char *w;		/* request bytes */
	size_t wlen, woff;
	char hdr[HDR_MAX];
	size_t hlen;
	enum bstate bs;
	long left;		/* chunk or content bytes left, -1 unknown */
	char sz[32];
	size_t szlen;
	char line[LINE_MAX_B];
	size_t llen;
	bool line_over;
	struct conn *next_idle;
};

static const struct ev_trace *T;
static struct rq *R;
static size_t NR;
static struct conn **C;		/* open connections */
static size_t n_conn, cap_conn;
static struct conn **idle_tab;	/* session hash -> idle connections */
static size_t idle_mask;
static struct sockaddr_storage dst;
static socklen_t dst_len;
static char host_hdr[128];
static const char *model = "llama-3.1-8b-instruct";
static bool keepalive;
static int stamp_map = -1;
static uint32_t cap_label = IDN_CAP(1, 0);
static uint64_t salt;
static double t0;
static size_t n_opened, n_reused, n_done, n_retry;
static double late_max;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* ---- prompts and requests ---- */

static uint64_t block_key(size_t i, uint32_t b)
{
	const struct ev_req *r = &T->r[i];

	if (b < r->nk)		/* shared with every request of the same prefix */
		return mix64(T->keys[r->k_off + b] ^ salt);
	return mix64(mix64((uint64_t)i * 0x9e3779b97f4a7c15ULL + b) ^ salt ^ 0x7e57b3d);
}

/* 4 characters a-z0-5 from 20 bits, then a space */
static char *put_word(char *p, uint64_t x)
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyz012345";

	for (int k = 0; k < 4; k++, x >>= 5)
		*p++ = al[x & 31];
	*p++ = ' ';
	return p;
}

static int build_request(size_t i, bool keep, char **out, size_t *len)
{
	const struct ev_req *r = &T->r[i];
	size_t body_max = (size_t)r->in * 5 + 256, hmax = 512, blen;
	char *buf = body_max > (8u << 20) ? NULL : malloc(hmax + body_max), *b, *p;
	int hl;

	if (body_max > (8u << 20))	/* the agent's body limit (8 MiB): refused there */
		return -E2BIG;
	if (!buf)
		return -ENOMEM;
	b = buf + hmax;
	p = b + sprintf(b, "{\"model\":\"%s\",\"prompt\":\"", model);
	for (uint32_t w = 0; w < r->in; w++) {
		uint32_t blk = w / BLOCK;
		uint64_t k = block_key(i, blk);

		p = put_word(p, mix64(k + (w % BLOCK) + 1));
	}
	if (r->in)
		p--;	/* no trailing space */
	p += sprintf(p, "\",\"max_tokens\":%u,\"stream\":true}", r->out ? r->out : 1);
	blen = p - b;
	hl = snprintf(buf, hmax,
		      "POST /v1/completions HTTP/1.1\r\nHost: %s\r\n"
		      "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
		      "Content-Length: %zu\r\nConnection: %s\r\n\r\n",
		      host_hdr, blen, keep ? "keep-alive" : "close");
	memmove(buf + hl, b, blen);
	*out = buf;
	*len = hl + blen;
	return 0;
}

/* ---- connections ---- */

static void conn_add(struct conn *c)
{
	if (n_conn == cap_conn) {
		size_t n = cap_conn ? cap_conn * 2 : 256;
		struct conn **p = realloc(C, n * sizeof(*p));

		if (!p) {
			perror("idn_tbclient: realloc");
			exit(1);
		}
		C = p;
		cap_conn = n;
	}
	C[n_conn++] = c;
}

static void idle_remove(struct conn *c)
{
	struct conn **pp = &idle_tab[mix64(c->sess) & idle_mask];

	for (; *pp; pp = &(*pp)->next_idle)
		if (*pp == c) {
			*pp = c->next_idle;
			break;
		}
	c->next_idle = NULL;
}

static void conn_close(struct conn *c)
{
	if (c->st == C_IDLE)
		idle_remove(c);
	close(c->fd);
	c->fd = -1;
	free(c->w);
	c->w = NULL;
}

static void reset_parse(struct conn *c)
{
	c->hlen = 0;
	c->bs = B_PLAIN;
	c->left = -1;
	c->szlen = 0;
	c->llen = 0;
	c->line_over = false;
	c->got = false;
}

static void fail(long i, const char *why)
{
	struct rq *q = &R[i];

	if (q->done)
		return;
	q->done = 1;
	q->failed = 1;
	snprintf(q->why, sizeof(q->why), "%s", why);
	n_done++;
}

static int open_conn(long i, struct conn **out)
{
	const struct ev_req *r = &T->r[i];
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c)
		return -ENOMEM;
	c->fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		int e = -errno;

		free(c);
		return e;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (stamp_map >= 0) {
		struct idn_desc d = {
			.token = mix64(r->sess ^ salt) | 1,	/* never 0 ("no token") */
			.cap = cap_label, .tier = 0,
			.size_class = ev_size_class(r->in), .flags = IDN_DF_SIZE,
		};
		int err;

		if (!salt)
			d.token = r->sess ? r->sess : 1;	/* the simulator's token */
		err = idn_stamp_sk_set(stamp_map, c->fd, &d);
		if (err) {
			fprintf(stderr, "idn_tbclient: stamp: %s\n", strerror(-err));
			close(c->fd);
			free(c);
			return err;
		}
	}
	if (connect(c->fd, (struct sockaddr *)&dst, dst_len) && errno != EINPROGRESS) {
		int e = -errno;

		close(c->fd);
		free(c);
		return e;
	}
	c->st = C_CONNECT;
	c->sess = r->sess;
	c->req = -1;
	n_opened++;
	conn_add(c);
	*out = c;
	return 0;
}

static void start_on(struct conn *c, long i, bool reused)
{
	int err;

	c->req = i;
	c->reused = reused;
	reset_parse(c);
	free(c->w);
	c->w = NULL;
	err = build_request(i, keepalive, &c->w, &c->wlen);
	if (err) {
		fail(i, err == -E2BIG ? "prompt too long" : "nomem");
		c->req = -1;
		conn_close(c);
		return;
	}
	c->woff = 0;
	if (c->st != C_CONNECT)
		c->st = C_SEND;
}

static void launch(long i)
{
	struct conn *c = NULL;
	int err;

	if (keepalive) {
		struct conn **head = &idle_tab[mix64(T->r[i].sess) & idle_mask];

		for (c = *head; c && c->sess != T->r[i].sess; c = c->next_idle)
			;
		if (c) {
			idle_remove(c);
			c->st = C_SEND;
			n_reused++;
			R[i].reused = 1;
			start_on(c, i, true);
			return;
		}
	}
	err = open_conn(i, &c);
	if (err) {
		fail(i, "socket");
		return;
	}
	start_on(c, i, false);
}

/* ---- the answer: headers, chunked body, SSE events ---- */

static void sse_line(struct conn *c, const char *l, size_t n)
{
	struct rq *q = &R[c->req];
	const char *p;

	if (n < 6 || strncmp(l, "data: ", 6))
		return;
	if (!strncmp(l + 6, "[DONE]", 6))
		return;
	if (strstr(l, "\"error\"")) {
		snprintf(q->why, sizeof(q->why), "stream error");
		q->failed = 1;
		return;
	}
	if (q->ttft < 0 && strstr(l, "\"choices\"")) {
		q->ttft = now_us() - t0 - q->t_send;
		p = strstr(l, "-idn-");		/* "cmpl-idn-NODE-REQ" */
		if (p)
			q->node = atoi(p + 5);
	}
	p = strstr(l, "\"cached_tokens\":");
	if (p)
		q->cached = strtoul(p + 16, NULL, 10);
	p = strstr(l, "\"completion_tokens\":");
	if (p)
		q->gen = strtoul(p + 20, NULL, 10);
}

static void body_bytes(struct conn *c, const char *b, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (b[k] == '\n') {
			size_t l = c->llen;

			if (l && c->line[l - 1] == '\r')
				l--;
			if (!c->line_over)
				sse_line(c, c->line, l);
			c->llen = 0;
			c->line_over = false;
		} else if (c->llen < LINE_MAX_B - 1) {
			c->line[c->llen++] = b[k];
		} else {
			c->line_over = true;
		}
	}
}

/* the answer is complete: record it, then keep the connection or close it */
static void complete(struct conn *c)
{
	struct rq *q = &R[c->req];

	if (!q->done) {
		q->done = 1;
		q->e2e = now_us() - t0 - q->t_send;
		if (q->status != 200 || q->ttft < 0 || q->gen != T->r[c->req].out) {
			q->failed = 1;
			if (!q->why[0])
				snprintf(q->why, sizeof(q->why), q->status != 200 ? "status" :
					 q->ttft < 0 ? "no token" : "short");
		}
		n_done++;
	}
	c->req = -1;
	free(c->w);
	c->w = NULL;
	if (keepalive && c->keep) {
		struct conn **head = &idle_tab[mix64(c->sess) & idle_mask];

		c->st = C_IDLE;
		c->next_idle = *head;
		*head = c;
	} else {
		conn_close(c);
	}
}

/* does the header line [l, e) contain word (any case)? */
static bool has_word(const char *l, const char *e, const char *word)
{
	size_t n = strlen(word);

	for (; l + n <= e; l++)
		if (!strncasecmp(l, word, n))
			return true;
	return false;
}

/* headers in c->hdr (NUL-terminated): 0, or -1 when malformed */
static int parse_headers(struct conn *c)
{
	struct rq *q = &R[c->req];
	char *l = c->hdr, *e;
	bool chunked = false, http11;

	if (strncmp(l, "HTTP/1.", 7) || strlen(l) < 12)
		return -1;
	http11 = l[7] == '1';
	q->status = atoi(l + 9);
	c->keep = http11;
	c->left = -1;
	for (l = strstr(l, "\r\n"); l && l[2]; l = e) {
		l += 2;
		e = strstr(l, "\r\n");
		if (!e)
			break;
		if (!strncasecmp(l, "Transfer-Encoding:", 18) && has_word(l, e, "chunked"))
			chunked = true;
		else if (!strncasecmp(l, "Content-Length:", 15))
			c->left = strtol(l + 15, NULL, 10);
		else if (!strncasecmp(l, "Connection:", 11) && has_word(l, e, "close"))
			c->keep = false;
	}
	c->bs = chunked ? B_SIZE : B_PLAIN;
	if (!chunked && c->left < 0)
		c->keep = false;	/* until the server closes */
	return 0;
}

/* bytes of the body (chunked or plain); true when the answer is complete */
static bool feed_body(struct conn *c, const char *b, size_t n)
{
	size_t k = 0;

	if (c->bs == B_PLAIN) {
		size_t take = c->left >= 0 && (size_t)c->left < n ? (size_t)c->left : n;

		body_bytes(c, b, take);
		if (c->left >= 0) {
			c->left -= take;
			return c->left == 0;
		}
		return false;
	}
	while (k < n) {
		switch (c->bs) {
		case B_SIZE:
			if (b[k] == '\n') {
				c->sz[c->szlen < sizeof(c->sz) ? c->szlen : sizeof(c->sz) - 1] = 0;
				c->left = strtol(c->sz, NULL, 16);
				c->szlen = 0;
				c->bs = c->left > 0 ? B_DATA : B_TRAILER;
				c->llen = c->left > 0 ? c->llen : 0;
			} else if (c->szlen < sizeof(c->sz) - 1) {
				c->sz[c->szlen++] = b[k];
			}
			k++;
			break;
		case B_DATA: {
			size_t take = n - k < (size_t)c->left ? n - k : (size_t)c->left;

			body_bytes(c, b + k, take);
			k += take;
			c->left -= take;
			if (!c->left)
				c->bs = B_DATA_CRLF;
			break;
		}
		case B_DATA_CRLF:
			if (b[k++] == '\n')
				c->bs = B_SIZE;
			break;
		case B_TRAILER:	/* lines until an empty one */
			if (b[k] == '\n') {
				bool empty = c->szlen == 0 || (c->szlen == 1 && c->sz[0] == '\r');

				c->szlen = 0;
				if (empty)
					return true;
			} else if (c->szlen < sizeof(c->sz) - 1) {
				c->sz[c->szlen++] = b[k];
			}
			k++;
			break;
		default:
			return false;
		}
	}
	return false;
}

/* the connection ended or failed: the request in flight fails or retries */
static void conn_lost(struct conn *c, const char *why)
{
	long i = c->req;

	if (i >= 0 && !R[i].done && c->reused && !c->got && !R[i].retried) {
		/* a kept connection the server closed meanwhile: a new one */
		struct conn *nc = NULL;

		R[i].retried = 1;
		n_retry++;
		conn_close(c);
		if (open_conn(i, &nc))
			fail(i, "socket");
		else
			start_on(nc, i, false);
		return;
	}
	if (i >= 0 && !R[i].done && c->st == C_BODY && c->bs == B_PLAIN && c->left < 0) {
		c->keep = false;
		complete(c);	/* a body delimited by the close */
		return;
	}
	if (i >= 0)
		fail(i, why);
	conn_close(c);
}

static void on_readable(struct conn *c)
{
	char buf[65536];
	ssize_t n;

	for (;;) {
		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			conn_lost(c, errno == ECONNRESET ? "reset" : "recv");
			return;
		}
		if (n == 0) {
			conn_lost(c, c->req >= 0 && !c->got ? "closed" : "eof");
			return;
		}
		if (c->req < 0) {	/* bytes on an idle connection: drop it */
			conn_close(c);
			return;
		}
		c->got = true;
		if (c->st == C_SEND)	/* an early answer (an error): stop sending */
			c->st = C_HDR;
		if (c->st == C_HDR) {
			size_t take = (size_t)n < HDR_MAX - 1 - c->hlen ? (size_t)n : HDR_MAX - 1 - c->hlen;
			char *end;
			size_t used;

			memcpy(c->hdr + c->hlen, buf, take);
			c->hlen += take;
			c->hdr[c->hlen] = 0;
			end = strstr(c->hdr, "\r\n\r\n");
			if (!end) {
				if (c->hlen >= HDR_MAX - 1) {
					fail(c->req, "header");
					conn_close(c);
					return;
				}
				continue;
			}
			end[2] = 0;
			used = (end + 4 - c->hdr) - (c->hlen - take);
			if (parse_headers(c)) {
				fail(c->req, "header");
				conn_close(c);
				return;
			}
			c->st = C_BODY;
			if (c->bs == B_PLAIN && c->left == 0) {
				complete(c);
				return;
			}
			if (feed_body(c, buf + used, n - used)) {
				complete(c);
				return;
			}
			continue;
		}
		if (c->st == C_BODY && feed_body(c, buf, n)) {
			complete(c);
			return;
		}
	}
}

static void on_writable(struct conn *c)
{
	if (c->st == C_CONNECT) {
		int e = 0;
		socklen_t l = sizeof(e);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l);
		if (e) {
			fail(c->req, e == ECONNREFUSED ? "refused" : e == ECONNRESET ? "reset" :
			     e == ETIMEDOUT ? "timeout" : "connect");
			conn_close(c);
			return;
		}
		c->st = C_SEND;
	}
	while (c->st == C_SEND && c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->w + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			conn_lost(c, errno == ECONNRESET ? "reset" : "send");
			return;
		}
		c->woff += n;
	}
	if (c->st == C_SEND) {
		c->st = C_HDR;
		free(c->w);
		c->w = NULL;
	}
}

/* ---- main loop ---- */

static void run(double timeout_us)
{
	struct pollfd *pf = NULL;
	size_t next = 0, pf_cap = 0;
	double t_end = INFINITY;

	t0 = now_us() + 200000;
	while (n_done < NR) {
		double now = now_us() - t0;
		int wait_ms = 100;
		size_t k, m;

		while (next < NR && R[next].t_send <= now) {
			if (now - R[next].t_send > late_max)
				late_max = now - R[next].t_send;
			launch(next++);
		}
		if (next == NR && isinf(t_end))
			t_end = now + timeout_us;
		if (now > t_end) {
			for (k = 0; k < NR; k++)
				fail(k, "timeout");
			break;
		}
		if (next < NR) {
			double d = (R[next].t_send - now) / 1000.0;

			wait_ms = d < 0 ? 0 : d < 100 ? (int)ceil(d) : 100;
		}
		/* drop closed connections, then poll the rest */
		for (k = 0, m = 0; k < n_conn; k++) {
			if (C[k]->fd < 0) {
				free(C[k]->w);
				free(C[k]);
				continue;
			}
			C[m++] = C[k];
		}
		n_conn = m;
		if (pf_cap < n_conn + 1) {
			pf_cap = (n_conn + 1) * 2;
			pf = realloc(pf, pf_cap * sizeof(*pf));
			if (!pf) {
				perror("idn_tbclient: realloc");
				exit(1);
			}
		}
		for (k = 0; k < n_conn; k++) {
			pf[k].fd = C[k]->fd;
			pf[k].events = C[k]->st == C_CONNECT || C[k]->st == C_SEND ?
				POLLOUT | POLLIN : POLLIN;
			pf[k].revents = 0;
		}
		if (poll(pf, n_conn, wait_ms) < 0 && errno != EINTR) {
			perror("idn_tbclient: poll");
			exit(1);
		}
		for (k = 0; k < n_conn; k++) {
			struct conn *c = C[k];

			if (!pf[k].revents || c->fd < 0)
				continue;
			if (pf[k].revents & POLLOUT || (c->st == C_CONNECT && pf[k].revents & (POLLERR | POLLHUP)))
				on_writable(c);
			if (c->fd >= 0 && pf[k].revents & (POLLIN | POLLERR | POLLHUP) && c->st != C_CONNECT)
				on_readable(c);
		}
	}
	free(pf);
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
	size_t k;

	if (!n)
		return 0;
	k = (size_t)ceil(p * n);
	return v[k ? k - 1 : 0];
}

static int usage(FILE *f)
{
	fprintf(f,
"Usage: idn_tbclient --trace FILE --addr ADDR --port P [--limit N] [--nodes N]\n"
"                    [--rho R] [--speed X] [--keepalive] [--pin DIR] [--cap C/V]\n"
"                    [--salt S] [--out FILE] [--timeout S] [--model NAME] [--spread]\n"
"                    [--scale S]\n"
"       idn_tbclient --agent-args [--speed X]\n"
"Replays the trace slice as OpenAI streaming completions; one connection per\n"
"request, or --keepalive: a pool per client session. --pin: stamp each socket\n"
"(run under idn-stamp run). Prints a \"# tb ...\" summary line.\n");
	return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "trace", required_argument, NULL, 't' },
		{ "addr", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "limit", required_argument, NULL, 'l' },
		{ "nodes", required_argument, NULL, 'n' },
		{ "rho", required_argument, NULL, 'r' },
		{ "speed", required_argument, NULL, 'S' },
		{ "keepalive", no_argument, NULL, 'k' },
		{ "pin", required_argument, NULL, 'P' },
		{ "cap", required_argument, NULL, 'c' },
		{ "salt", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "model", required_argument, NULL, 'm' },
		{ "agent-args", no_argument, NULL, 'A' },
		{ "spread", no_argument, NULL, 'D' },
		{ "scale", required_argument, NULL, 'X' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *trace = NULL, *addr = NULL, *port = NULL, *pin = NULL, *outf = NULL;
	double rho = 0.7, speed = 1.0, timeout_s = 120, scale = 0, *v;
	size_t limit = 0, ok = 0, nv = 0, per_node[IDN_MAX_NODES] = { 0 };
	static struct ev_trace tr;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST |
				  AI_NUMERICSERV }, *ai;
	uint64_t hit = 0, q = 0;
	char err[512] = "";
	int nodes = 4, c;
	bool agent_args = false, spread = false;
	struct rlimit rl;
	FILE *of = NULL;

	while ((c = getopt_long(argc, argv, "t:a:p:l:n:r:S:kP:c:s:o:T:m:ADX:h", opts, NULL)) != -1) {
		switch (c) {
		case 't': trace = optarg; break;
		case 'a': addr = optarg; break;
		case 'p': port = optarg; break;
		case 'l': limit = strtoul(optarg, NULL, 10); break;
		case 'n': nodes = atoi(optarg); break;
		case 'r': rho = strtod(optarg, NULL); break;
		case 'S': speed = strtod(optarg, NULL); break;
		case 'k': keepalive = true; break;
		case 'P': pin = optarg; break;
		case 'c':
			if (idn_stamp_parse_cap(optarg, &cap_label)) {
				fprintf(stderr, "idn_tbclient: --cap: CLASS[/VARIANT]\n");
				return 2;
			}
			break;
		case 's': salt = strtoull(optarg, NULL, 0); break;
		case 'o': outf = optarg; break;
		case 'T': timeout_s = strtod(optarg, NULL); break;
		case 'm':
			model = optarg;
			if (!*model || strlen(model) > 64 ||
			    strspn(model, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789._:/-") != strlen(model)) {
				fprintf(stderr, "idn_tbclient: --model: 1-64 of A-Z a-z 0-9 . _ : / -\n");
				return 2;
			}
			break;
		case 'A': agent_args = true; break;
		case 'D': spread = true; break;
		case 'X':
			scale = strtod(optarg, NULL);
			if (!(scale > 0)) {
				fprintf(stderr, "idn_tbclient: --scale: a positive number\n");
				return 2;
			}
			break;
		case 'h': return usage(stdout);
		default: return usage(stderr);
		}
	}
	if (agent_args && optind == argc && speed >= 0.01 && speed <= 1000) {
		struct eng_params ep;

		ev_eng_params(&ep);
		printf("--iter-base-us %g --prefill-tok-us %g --decode-seq-us %g --attn-ctx-ns %g "
		       "--prefill-attn-ns %g --block-tokens %u --kv-capacity-tokens %llu "
		       "--max-batch-tokens %u --max-seqs %u --cache-policy %s --speed %g\n",
		       ep.iter_base_us, ep.prefill_tok_us, ep.decode_seq_us, ep.attn_ctx_ns,
		       ep.prefill_attn_ns, ep.block_tokens, (unsigned long long)ep.capacity_tokens,
		       ep.max_batch_tokens, ep.max_seqs,
		       ep.cache_policy == KV_POLICY_LRU ? "lru" : "eq8", speed);
		return 0;
	}
	if (optind < argc || !trace || !addr || !port)
		return usage(stderr);
	if (nodes < 1 || nodes > EV_MAX_NODES || !(rho > 0 && rho <= 10) ||
	    !(speed >= 0.01 && speed <= 1000) || !(timeout_s > 0)) {
		fprintf(stderr, "idn_tbclient: --nodes 1..%d, --rho (0, 10], --speed 0.01..1000, "
			"--timeout > 0\n", EV_MAX_NODES);
		return 2;
	}
	if (getaddrinfo(addr, port, &hints, &ai)) {
		fprintf(stderr, "idn_tbclient: %s port %s: not a numeric address and port\n", addr,
			port);
		return 2;
	}
	memcpy(&dst, ai->ai_addr, ai->ai_addrlen);
	dst_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	snprintf(host_hdr, sizeof(host_hdr), dst.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
		 addr, port);
	if (ev_trace_load(trace, &tr, err, sizeof(err))) {
		fprintf(stderr, "idn_tbclient: %s\n", err);
		return 1;
	}
	if (limit && tr.n > limit) {	/* as idn_eval --limit */
		tr.n = limit;
		tr.span_us = tr.r[limit - 1].t_us;
	}
	if (spread)
		ev_trace_spread(&tr);
	T = &tr;
	NR = tr.n;
	if (!scale)
		scale = ev_scale_for(&tr, nodes, rho);
	R = calloc(NR ? NR : 1, sizeof(*R));
	idle_mask = 1;
	while (idle_mask < NR * 2)
		idle_mask <<= 1;
	idle_tab = calloc(idle_mask, sizeof(*idle_tab));
	idle_mask--;
	v = malloc(sizeof(*v) * (NR + 1));
	if (!R || !idle_tab || !v) {
		fprintf(stderr, "idn_tbclient: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < NR; i++) {
		R[i].t_send = tr.r[i].t_us / scale / speed;
		R[i].ttft = R[i].e2e = -1;
		R[i].node = -1;
	}
	if (pin) {
		stamp_map = idn_stamp_sk_open(pin);
		if (stamp_map < 0) {
			fprintf(stderr, "idn_tbclient: %s/idn_stamp_sk: %s (idn-stamp attach first)\n",
				pin, strerror(-stamp_map));
			return 1;
		}
	}
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "idn_tbclient: %zu requests over %.1f s (rho %.2f on %d nodes, speed %g), "
		"%s\n", NR, NR ? R[NR - 1].t_send / 1e6 : 0, rho, nodes, speed,
		keepalive ? "keep-alive per session" : "a connection per request");
	run(timeout_s * 1e6);
	if (outf)
		of = fopen(outf, "w");
	if (of)
		fprintf(of, "# i send_ms ttft_ms e2e_ms node status cached_tokens out_tokens "
			    "reused why\n");
	for (size_t i = 0; i < NR; i++) {
		struct rq *r = &R[i];

		if (!r->failed) {
			ok++;
			v[nv++] = r->ttft;
			hit += r->cached;
			q += tr.r[i].in;
			if (r->node >= 0 && r->node < IDN_MAX_NODES)
				per_node[r->node]++;
		}
		if (of)
			fprintf(of, "%zu %.3f %.3f %.3f %d %d %u %u %u %s\n", i, r->t_send / 1e3,
				r->ttft / 1e3, r->e2e / 1e3, r->node, r->status, r->cached, r->gen,
				r->reused, r->failed ? (r->why[0] ? r->why : "failed") : "ok");
	}
	if (of)
		fclose(of);
	qsort(v, nv, sizeof(*v), dcmp);
	printf("# tb %s requests %zu ok %zu failed %zu conns %zu reused %zu retried %zu "
	       "p50_s %.4f p90_s %.4f p99_s %.4f hit_pct %.2f late_max_ms %.1f nodes",
	       keepalive ? "keepalive" : "conn", NR, ok, NR - ok, n_opened, n_reused, n_retry,
	       pct(v, nv, 0.5) / 1e6, pct(v, nv, 0.9) / 1e6, pct(v, nv, 0.99) / 1e6,
	       q ? 100.0 * hit / q : 0, late_max / 1e3);
	for (int j = 0; j < IDN_MAX_NODES && j < 64; j++)
		if (per_node[j])
			printf(" %d:%zu", j, per_node[j]);
	printf("\n");
	for (size_t k = 0; k < n_conn; k++) {
		if (C[k]->fd >= 0)
			close(C[k]->fd);
		free(C[k]->w);
		free(C[k]);
	}
	free(C);
	free(idle_tab);
	free(R);
	free(v);
	ev_trace_free(&tr);
	return 0;
}
