// SPDX-License-Identifier: GPL-2.0
/*
 * idn_kbench.c - guest side of `tools/bench/run.sh kernel`: the activation
 * hold's release latency and loss, and the steering program's demand-miss
 * path vs its normal path. Built and booted by selftests/kernel/run.sh
 * (IDN_KBENCH=1), driven by tools/bench/kernel_guest.sh. Talks to the
 * kernel directly (bpf(2), AF_PACKET, raw IP, libnl-genl for RELEASE).
 *
 *   idn_kbench hold CLI_NS NODE_NS NODE_DEV VIP PORT CAP N DEPLOY_CMD
 *       from CLI_NS, N TCP SYNs to VIP:PORT from N distinct source ports
 *       (raw IP, no socket state: no retransmissions); waits until the
 *       module holds N packets, runs DEPLOY_CMD (sh -c: installs the plan),
 *       stamps CLOCK_REALTIME and sends IDN_CMD_RELEASE for CAP, then
 *       captures on NODE_DEV in NODE_NS (AF_PACKET, SO_TIMESTAMPNS: the
 *       kernel's stamp when the packet entered the node's veth) the IPIP
 *       packets carrying those SYNs. Prints "lat_us X" per arrival and
 *       "held H released R arrived A of N".
 *   idn_kbench prog IFNAME SADDR MISS_VIP MISS_PORT STEER_VIP STEER_PORT K
 *       BPF_PROG_TEST_RUN (repeat 1) of the attached idn_tc on a fresh SYN
 *       per call, K calls per case, interleaved: a miss (no plan: MISS_HOLD,
 *       mark), a new flow (plan: NEW, IPIP, redirect) and a floor (a
 *       two-instruction program under the same harness). New source
 *       address every call (new flow, new token). Checks every call's mark
 *       / return code and the idn_stats verdict deltas. Prints
 *       "miss_ns X", "steer_ns X", "floor_ns X" (medians of the kernel's
 *       per-run duration).
 * Exit 0, 1 on a failed check, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/pkt_cls.h>
#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <linux/idn.h>

IDN_ASSERT_ABI();

#define PIN_STATS	"/sys/fs/bpf/idn/idn_stats"
#define MAX_PKTS	65536

static int sys_bpf(int cmd, union bpf_attr *a)
{
	return syscall(__NR_bpf, cmd, a, sizeof(*a));
}

static uint16_t csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t csum_add(uint32_t s, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (; n > 1; n -= 2, b += 2)
		s += (uint32_t)b[0] << 8 | b[1];
	if (n)
		s += (uint32_t)b[0] << 8;
	return s;
}

/* build IPv4 + TCP SYN (no options) at @p; returns its length */
static size_t build_syn(uint8_t *p, uint32_t saddr, uint32_t daddr, uint16_t sport,
			uint16_t dport)
{
	uint8_t *ip = p, *th = p + 20, ph[12];
	uint32_t s;

	memset(p, 0, 40);
	ip[0] = 0x45;
	ip[3] = 40;
	ip[8] = 64;
	ip[9] = IPPROTO_TCP;
	memcpy(ip + 12, &saddr, 4);
	memcpy(ip + 16, &daddr, 4);
	s = csum_fold(csum_add(0, ip, 20));
	ip[10] = s >> 8;
	ip[11] = s & 0xff;
	th[0] = sport >> 8;
	th[1] = sport & 0xff;
	th[2] = dport >> 8;
	th[3] = dport & 0xff;
	th[4] = 0x1d;			/* seq */
	th[7] = sport & 0xff;
	th[12] = 5 << 4;
	th[13] = 0x02;			/* SYN */
	th[14] = 0xfa;			/* window 64240 */
	th[15] = 0xf0;
	memcpy(ph, &saddr, 4);
	memcpy(ph + 4, &daddr, 4);
	ph[8] = 0;
	ph[9] = IPPROTO_TCP;
	ph[10] = 0;
	ph[11] = 20;
	s = csum_fold(csum_add(csum_add(0, ph, 12), th, 20));
	th[16] = s >> 8;
	th[17] = s & 0xff;
	return 40;
}

static int enter_ns(const char *name)
{
	char path[256];
	int fd, err;

	if (name[0] == '/')
		snprintf(path, sizeof(path), "%s", name);
	else
		snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = setns(fd, CLONE_NEWNET) ? -errno : 0;
	close(fd);
	return err;
}

static unsigned int proc_holding(void)
{
	char line[256];
	unsigned int v = 0;
	FILE *f = fopen("/proc/net/idn", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "holding %u", &v) == 1)
			break;
	fclose(f);
	return v;
}

static int on_count(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[IDN_A_MAX + 1];

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, IDN_A_MAX, NULL) == 0 && tb[IDN_A_COUNT])
		*(int *)arg = (int)nla_get_u32(tb[IDN_A_COUNT]);
	return NL_OK;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmd_hold(char **av)
{
	const char *cli_ns = av[0], *node_ns = av[1], *node_dev = av[2], *deploy = av[7];
	uint32_t daddr, saddr = htonl(0x0a010002);	/* 10.1.0.2 (kcli's c0) */
	int port = atoi(av[4]), n = atoi(av[6]), root, raw, pk, fam, err = 0, released = -1;
	unsigned long cap = strtoul(av[5], NULL, 0);
	struct sockaddr_in dst = { .sin_family = AF_INET };
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP) };
	struct timespec t0, tw;
	struct nl_sock *sk;
	struct nl_msg *m;
	uint8_t pkt[2048], *seen;
	unsigned int held = 0;
	int arrived = 0, one = 1, rcvbuf = 32 << 20, i;
	struct tpacket_stats pst;
	socklen_t pl = sizeof(pst);

	if (inet_pton(AF_INET, av[3], &daddr) != 1 || n < 1 || n > MAX_PKTS || port < 1 ||
	    port > 65535)
		return 2;
	seen = calloc(MAX_PKTS, 1);
	sk = nl_socket_alloc();
	if (!seen || !sk || genl_connect(sk) || (fam = genl_ctrl_resolve(sk, IDN_FAMILY_NAME)) < 0) {
		fprintf(stderr, "idn_kbench: genl family %s not found\n", IDN_FAMILY_NAME);
		return 1;
	}
	root = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	/* capture socket in the node's namespace */
	if (root < 0 || (err = enter_ns(node_ns))) {
		fprintf(stderr, "idn_kbench: netns %s: %s\n", node_ns, strerror(-err));
		return 1;
	}
	pk = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_IP));
	ll.sll_ifindex = (int)if_nametoindex(node_dev);
	if (pk < 0 || !ll.sll_ifindex || bind(pk, (void *)&ll, sizeof(ll)) ||
	    setsockopt(pk, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) ||
	    setsockopt(pk, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf))) {
		fprintf(stderr, "idn_kbench: capture on %s: %s\n", node_dev, strerror(errno));
		return 1;
	}
	/* raw IP sender in the client's namespace */
	if ((err = enter_ns(cli_ns))) {
		fprintf(stderr, "idn_kbench: netns %s: %s\n", cli_ns, strerror(-err));
		return 1;
	}
	raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (raw < 0 || setns(root, CLONE_NEWNET)) {
		perror("idn_kbench: raw socket");
		return 1;
	}
	dst.sin_addr.s_addr = daddr;
	for (i = 0; i < n; i++) {
		size_t l = build_syn(pkt, saddr, daddr, (uint16_t)(20000 + i), (uint16_t)port);

		if (sendto(raw, pkt, l, 0, (void *)&dst, sizeof(dst)) != (ssize_t)l) {
			perror("idn_kbench: sendto");
			return 1;
		}
	}
	/* wait until the module holds all of them (or 20 s) */
	clock_gettime(CLOCK_MONOTONIC, &tw);
	for (;;) {
		struct timespec now;

		held = proc_holding();
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (held >= (unsigned int)n || now.tv_sec - tw.tv_sec > 20)
			break;
		usleep(20000);
	}
	if (system(deploy) != 0) {
		fprintf(stderr, "idn_kbench: deploy command failed: %s\n", deploy);
		return 1;
	}
	/* anything that reached the node before RELEASE is not a release */
	while (recv(pk, pkt, sizeof(pkt), MSG_DONTWAIT) > 0)
		;
	m = nlmsg_alloc();
	genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, fam, 0, 0, IDN_CMD_RELEASE, IDN_FAMILY_VERSION);
	nla_put_u32(m, IDN_A_CAP, (uint32_t)cap);
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_count, &released);
	clock_gettime(CLOCK_REALTIME, &t0);
	err = nl_send_auto(sk, m);
	if (err >= 0)
		err = nl_recvmsgs_default(sk);
	nlmsg_free(m);
	if (err < 0) {
		fprintf(stderr, "idn_kbench: RELEASE: %s\n", nl_geterror(err));
		return 1;
	}
	for (;;) {
		char cbuf[256];
		struct iovec iov = { pkt, sizeof(pkt) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		struct pollfd pf = { .fd = pk, .events = POLLIN };
		struct cmsghdr *c;
		struct timespec ts = { 0, 0 };
		uint8_t *in;
		ssize_t l;
		int ihl, sp;

		if (arrived >= n || poll(&pf, 1, 3000) <= 0)
			break;
		l = recvmsg(pk, &mh, 0);
		if (l < 40)
			continue;
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS)
				memcpy(&ts, CMSG_DATA(c), sizeof(ts));
		/* outer IPv4 carrying IPIP, inner SYN to the VIP port */
		if ((pkt[0] >> 4) != 4 || pkt[9] != IPPROTO_IPIP)
			continue;
		ihl = (pkt[0] & 0xf) * 4;
		in = pkt + ihl;
		if (l < ihl + 40 || in[9] != IPPROTO_TCP || memcmp(in + 16, &daddr, 4))
			continue;
		in += (in[0] & 0xf) * 4;
		sp = in[0] << 8 | in[1];
		if ((in[2] << 8 | in[3]) != port || !(in[13] & 0x02) || sp < 20000 ||
		    sp >= 20000 + n || seen[sp - 20000])
			continue;
		seen[sp - 20000] = 1;
		arrived++;
		if (!ts.tv_sec)
			clock_gettime(CLOCK_REALTIME, &ts);
		printf("lat_us %.1f\n", ((ts.tv_sec - t0.tv_sec) * 1e9 + (ts.tv_nsec - t0.tv_nsec)) / 1e3);
	}
	/* a drop in the capture socket is the measurement's, not the hold's */
	memset(&pst, 0, sizeof(pst));
	getsockopt(pk, SOL_PACKET, PACKET_STATISTICS, &pst, &pl);
	printf("held %u released %d arrived %d of %d capture_drops %u\n", held, released, arrived,
	       n, pst.tp_drops);
	if (pst.tp_drops) {
		fprintf(stderr, "idn_kbench: the capture socket dropped %u packets\n", pst.tp_drops);
		return 1;
	}
	nl_socket_free(sk);
	return 0;
}

/* ---- prog: BPF_PROG_TEST_RUN of idn_tc ---------------------------------- */

static int find_prog(const char *name)
{
	union bpf_attr a;
	__u32 id = 0;

	for (;;) {
		struct bpf_prog_info info;
		int fd;

		memset(&a, 0, sizeof(a));
		a.start_id = id;
		if (sys_bpf(BPF_PROG_GET_NEXT_ID, &a))
			return -ENOENT;
		id = a.next_id;
		memset(&a, 0, sizeof(a));
		a.prog_id = id;
		fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &a);
		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		memset(&a, 0, sizeof(a));
		a.info.bpf_fd = fd;
		a.info.info_len = sizeof(info);
		a.info.info = (__u64)(uintptr_t)&info;
		if (!sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a) && info.type == BPF_PROG_TYPE_SCHED_CLS &&
		    !strncmp(info.name, name, sizeof(info.name)))
			return fd;
		close(fd);
	}
}

static int load_floor(void)
{
	struct bpf_insn insn[2] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = TC_ACT_OK },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SCHED_CLS;
	a.insns = (__u64)(uintptr_t)insn;
	a.insn_cnt = 2;
	a.license = (__u64)(uintptr_t)"GPL";
	memcpy(a.prog_name, "idn_kb_floor", 13);
	return sys_bpf(BPF_PROG_LOAD, &a);
}

static int nr_cpus(void)
{
	int lo = 0, hi = 0;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");

	if (f) {
		if (fscanf(f, "%d-%d", &lo, &hi) < 2)
			hi = lo;
		fclose(f);
	}
	return hi + 1;
}

/* packets of verdict @v in idn_stats (struct idn_vstat per CPU), all CPUs */
static __u64 verdict_sum(int map, __u32 v, int ncpu)
{
	struct idn_vstat val[512];
	__u64 s = 0;
	union bpf_attr a;
	int i;

	memset(&a, 0, sizeof(a));
	a.map_fd = map;
	a.key = (__u64)(uintptr_t)&v;
	a.value = (__u64)(uintptr_t)val;
	memset(val, 0, sizeof(val));
	if (ncpu > 512 || sys_bpf(BPF_MAP_LOOKUP_ELEM, &a))
		return 0;
	for (i = 0; i < ncpu && i < 512; i++)
		s += val[i].packets;
	return s;
}

/* one run; returns the kernel's duration (ns) or -1 */
static double run_once(int prog, const uint8_t *frame, size_t len, int ifindex,
		       __u32 *retval, __u32 *mark)
{
	struct __sk_buff ctx = { .ifindex = ifindex, .ingress_ifindex = ifindex }, out;
	uint8_t buf[512];
	union bpf_attr a;

	memset(&out, 0, sizeof(out));
	memset(&a, 0, sizeof(a));
	a.test.prog_fd = prog;
	a.test.data_in = (__u64)(uintptr_t)frame;
	a.test.data_size_in = len;
	a.test.data_out = (__u64)(uintptr_t)buf;
	a.test.data_size_out = sizeof(buf);
	a.test.ctx_in = (__u64)(uintptr_t)&ctx;
	a.test.ctx_size_in = sizeof(ctx);
	a.test.ctx_out = (__u64)(uintptr_t)&out;
	a.test.ctx_size_out = sizeof(out);
	a.test.repeat = 1;
	if (sys_bpf(BPF_PROG_TEST_RUN, &a))
		return -1;
	*retval = a.test.retval;
	*mark = out.mark;
	return a.test.duration;
}

static int cmd_prog(char **av)
{
	const char *ifname = av[0];
	uint32_t sbase, mvip, svip;
	int mport = atoi(av[3]), sport = atoi(av[5]), k = atoi(av[6]), ifindex, prog, floor, map;
	int ncpu = nr_cpus(), i, bad = 0;
	union bpf_attr a;
	__u64 m0, m1, n0, n1;
	double *dm, *ds, *df;
	uint8_t frame[14 + 40];
	char path[128], mac[32] = "";
	FILE *f;

	if (inet_pton(AF_INET, av[1], &sbase) != 1 || inet_pton(AF_INET, av[2], &mvip) != 1 ||
	    inet_pton(AF_INET, av[4], &svip) != 1 || k < 1 || k > 1000000)
		return 2;
	ifindex = (int)if_nametoindex(ifname);
	prog = find_prog("idn_tc");
	floor = load_floor();
	memset(&a, 0, sizeof(a));
	a.pathname = (__u64)(uintptr_t)PIN_STATS;
	map = sys_bpf(BPF_OBJ_GET, &a);
	if (!ifindex || prog < 0 || floor < 0 || map < 0) {
		fprintf(stderr, "idn_kbench: need %s, the attached idn_tc, a floor program and %s\n",
			ifname, PIN_STATS);
		return 1;
	}
	/* ethernet header toward IFNAME's own MAC, as on its ingress */
	memset(frame, 0, 14);
	snprintf(path, sizeof(path), "/sys/class/net/%s/address", ifname);
	f = fopen(path, "r");
	if (f) {
		unsigned int b[6];

		if (fgets(mac, sizeof(mac), f) &&
		    sscanf(mac, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) == 6)
			for (i = 0; i < 6; i++)
				frame[i] = (uint8_t)b[i];
		fclose(f);
	}
	frame[6] = 0x02;
	frame[11] = 0x01;
	frame[12] = 0x08;
	frame[13] = 0x00;
	dm = calloc(k, sizeof(*dm));
	ds = calloc(k, sizeof(*ds));
	df = calloc(k, sizeof(*df));
	if (!dm || !ds || !df)
		return 1;
	m0 = verdict_sum(map, IDN_V_MISS_HOLD, ncpu);
	n0 = verdict_sum(map, IDN_V_NEW, ncpu);
	for (i = 0; i < k; i++) {
		/* new source address every call: a new flow and a new token */
		uint32_t s = htonl(ntohl(sbase) + (uint32_t)i);
		__u32 rv, mark;

		build_syn(frame + 14, s, mvip, (uint16_t)(30000 + i % 30000), (uint16_t)mport);
		dm[i] = run_once(prog, frame, sizeof(frame), ifindex, &rv, &mark);
		if (dm[i] < 0 || (mark & IDN_MARK_MASK) != IDN_MARK_MISS || rv != TC_ACT_OK)
			bad++;
		build_syn(frame + 14, s, svip, (uint16_t)(30000 + i % 30000), (uint16_t)sport);
		ds[i] = run_once(prog, frame, sizeof(frame), ifindex, &rv, &mark);
		if (ds[i] < 0 || (mark & IDN_MARK_MASK) == IDN_MARK_MISS ||
		    (rv != TC_ACT_REDIRECT && rv != TC_ACT_OK))
			bad++;
		df[i] = run_once(floor, frame, sizeof(frame), ifindex, &rv, &mark);
		if (df[i] < 0)
			bad++;
	}
	m1 = verdict_sum(map, IDN_V_MISS_HOLD, ncpu);
	n1 = verdict_sum(map, IDN_V_NEW, ncpu);
	if (bad || m1 - m0 != (__u64)k || n1 - n0 != (__u64)k) {
		fprintf(stderr, "idn_kbench: prog: %d bad runs, MISS_HOLD +%llu NEW +%llu (want %d each)\n",
			bad, (unsigned long long)(m1 - m0), (unsigned long long)(n1 - n0), k);
		return 1;
	}
	qsort(dm, k, sizeof(*dm), cmp_d);
	qsort(ds, k, sizeof(*ds), cmp_d);
	qsort(df, k, sizeof(*df), cmp_d);
	printf("miss_ns %.0f\nsteer_ns %.0f\nfloor_ns %.0f\n", dm[k / 2], ds[k / 2], df[k / 2]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 10 && !strcmp(argv[1], "hold"))
		return cmd_hold(argv + 2);
	if (argc == 9 && !strcmp(argv[1], "prog"))
		return cmd_prog(argv + 2);
	fprintf(stderr, "usage: idn_kbench hold CLI_NS NODE_NS NODE_DEV VIP PORT CAP N DEPLOY_CMD\n"
			"       idn_kbench prog IFNAME SADDR MISS_VIP MISS_PORT STEER_VIP STEER_PORT K\n");
	return 2;
}
