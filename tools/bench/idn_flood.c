// SPDX-License-Identifier: GPL-2.0
/*
 * idn_flood - spoofed TCP at a VIP, as fast as one socket sends: SYNs and
 * mid-flow segments (ACK, some with data, some with a timestamp option
 * whose TSecr is random) from random sources and ports, over an
 * AF_PACKET socket (PACKET_QDISC_BYPASS, sendmmsg in batches) on one
 * device. For the flood benchmark (tools/bench/flood.sh): what it does
 * to the router's tables and to live connections.
 *
 *   idn_flood -i DEV -m DSTMAC -d VIP4 -p PORT [-n COUNT] [-s SYN%] [-r PPS]
 *             [-S SRC4/LEN]
 *
 * Prints "sent N packets in S s" on stdout. Exit 0, 1 on error, 2 on usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH	256
#define FRAME	(14 + 20 + 20 + 12 + 16)	/* eth, ip, tcp, NOP NOP TS, data */

struct opts {
	const char *dev;
	uint8_t dmac[6];
	struct in_addr dst, src_net;
	uint32_t src_mask;
	uint16_t port;
	unsigned long count, pps;
	unsigned int syn_pct;
};

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

/* xorshift64*: fast, and good enough for spoofed addresses */
static uint32_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (uint32_t)((rng * 0x2545f4914f6cdd1dULL) >> 32);
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t sum16(const void *p, size_t n, uint32_t s)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)b[i] << 8 | b[i + 1];
	if (n & 1)
		s += (uint32_t)b[n - 1] << 8;
	return s;
}

/* One spoofed segment into f; returns its length. */
static size_t build(uint8_t *f, const struct opts *o, const uint8_t smac[6])
{
	struct iphdr *ip = (struct iphdr *)(f + 14);
	struct tcphdr *th = (struct tcphdr *)(f + 34);
	uint8_t *opt = f + 54;
	int syn = rnd() % 100 < o->syn_pct, ts = !syn && (rnd() & 1);
	size_t tcplen = 20 + (ts ? 12 : 0) + (!syn && (rnd() & 1) ? 16 : 0);
	uint32_t s, src = (ntohl(o->src_net.s_addr) & o->src_mask) | (rnd() & ~o->src_mask);

	memcpy(f, o->dmac, 6);
	memcpy(f + 6, smac, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	memset(ip, 0, 20);
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = htons((uint16_t)(20 + tcplen));
	ip->id = (uint16_t)rnd();
	ip->frag_off = htons(0x4000);
	ip->ttl = 64;
	ip->protocol = IPPROTO_TCP;
	ip->saddr = htonl(src);
	ip->daddr = o->dst.s_addr;
	ip->check = htons(fold(sum16(ip, 20, 0)));
	memset(th, 0, 20);
	th->source = htons((uint16_t)(1024 + rnd() % 64000));
	th->dest = htons(o->port);
	th->seq = rnd();
	th->doff = (uint8_t)((20 + (ts ? 12 : 0)) / 4);
	if (syn) {
		th->syn = 1;
	} else {
		th->ack = 1;
		th->ack_seq = rnd();
		th->psh = tcplen > 20 + (ts ? 12u : 0u);
	}
	th->window = htons(64240);
	if (ts) {
		uint32_t v = rnd(), e = rnd();

		opt[0] = 1;
		opt[1] = 1;
		opt[2] = 8;
		opt[3] = 10;
		memcpy(opt + 4, &v, 4);
		memcpy(opt + 8, &e, 4);
	}
	if (tcplen > 20 + (ts ? 12u : 0u))
		memset(f + 34 + 20 + (ts ? 12 : 0), 'x', 16);
	/* pseudo-header + segment */
	s = sum16(&ip->saddr, 8, 0) + IPPROTO_TCP + (uint32_t)tcplen;
	th->check = htons(fold(sum16(th, tcplen, s)));
	return 34 + tcplen;
}

static int usage(void)
{
	fprintf(stderr, "usage: idn_flood -i DEV -m DSTMAC -d VIP4 -p PORT [-n COUNT] "
			"[-s SYN%%] [-r PPS] [-S SRC4/LEN]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct opts o = { .count = 1000000, .syn_pct = 50, .port = 80 };
	static uint8_t frames[BATCH][FRAME];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_ll sll = { 0 };
	uint8_t smac[6];
	struct ifreq ifr;
	struct timespec t0, t1, now;
	unsigned long sent = 0;
	int fd, c, one = 1, bits = 15;
	char *slash;

	inet_pton(AF_INET, "198.18.0.0", &o.src_net);
	while ((c = getopt(argc, argv, "i:m:d:p:n:s:r:S:")) != -1) {
		switch (c) {
		case 'i':
			o.dev = optarg;
			break;
		case 'm':
			if (sscanf(optarg, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &o.dmac[0], &o.dmac[1],
				   &o.dmac[2], &o.dmac[3], &o.dmac[4], &o.dmac[5]) != 6)
				return usage();
			break;
		case 'd':
			if (inet_pton(AF_INET, optarg, &o.dst) != 1)
				return usage();
			break;
		case 'p':
			o.port = (uint16_t)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			o.count = strtoul(optarg, NULL, 10);
			break;
		case 's':
			o.syn_pct = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			o.pps = strtoul(optarg, NULL, 10);
			break;
		case 'S':
			slash = strchr(optarg, '/');
			if (!slash)
				return usage();
			*slash = 0;
			bits = atoi(slash + 1);
			if (inet_pton(AF_INET, optarg, &o.src_net) != 1 || bits < 1 || bits > 31)
				return usage();
			break;
		default:
			return usage();
		}
	}
	if (!o.dev || !o.dst.s_addr || o.syn_pct > 100)
		return usage();
	o.src_mask = ~0U << (32 - bits);
	rng ^= (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);

	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0) {
		perror("idn_flood: socket(AF_PACKET)");
		return 1;
	}
	/* straight to the driver: the qdisc would only add its lock */
	setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", o.dev);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr)) {
		perror("idn_flood: SIOCGIFHWADDR");
		return 1;
	}
	memcpy(smac, ifr.ifr_hwaddr.sa_data, 6);
	sll.sll_family = AF_PACKET;
	sll.sll_ifindex = (int)if_nametoindex(o.dev);
	sll.sll_halen = 6;
	memcpy(sll.sll_addr, o.dmac, 6);
	if (!sll.sll_ifindex) {
		perror("idn_flood: device");
		return 1;
	}
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = frames[i];
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &sll;
		msgs[i].msg_hdr.msg_namelen = sizeof(sll);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (sent < o.count) {
		unsigned int n = o.count - sent < BATCH ? (unsigned int)(o.count - sent) : BATCH;
		int r;

		for (unsigned int i = 0; i < n; i++)
			iov[i].iov_len = build(frames[i], &o, smac);
		r = sendmmsg(fd, msgs, n, 0);
		if (r < 0) {
			if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR)
				continue;
			perror("idn_flood: sendmmsg");
			return 1;
		}
		sent += (unsigned long)r;
		if (o.pps) {
			double want = (double)sent / (double)o.pps, el;

			clock_gettime(CLOCK_MONOTONIC, &now);
			el = (double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9;
			if (want > el)
				usleep((useconds_t)((want - el) * 1e6));
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("sent %lu packets in %.2f s\n", sent,
	       (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	close(fd);
	return 0;
}
