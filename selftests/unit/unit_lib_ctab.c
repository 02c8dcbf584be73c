// SPDX-License-Identifier: GPL-2.0
/*
 * unit_lib_ctab.c - the dataplane's table and fast-path logic compiled for
 * userspace: bpf/lib/ctab.h (the connection and affinity tables: where a
 * key lives, a whole entry or none, the clock's choice, the affinity's
 * oldest way, the spread of sequential keys), parse.h's common SYN option
 * layouts against the full walk, stateless.h's ring against rendezvous
 * hashing, and select.h's lazy tie hashes against eager ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "lib/select.h"
#include "lib/stateless.h"
#include "lib/ctab.h"
#include "lib/parse.h"
#include "../lib/tap.h"

IDN_ASSERT_ABI();

static __u64 rng_state = 0x9e3779b97f4a7c15ULL;

static __u64 rnd(void)
{
	rng_state += 0x9e3779b97f4a7c15ULL;
	return idn_mix64(rng_state);
}

static struct idn_flow_key flow4(__u32 saddr, __u16 sport, __u32 daddr, __u16 dport)
{
	struct idn_flow_key k;

	memset(&k, 0, sizeof(k));
	k.saddr[0] = htonl(saddr);
	k.daddr[0] = htonl(daddr);
	k.sport = htons(sport);
	k.dport = htons(dport);
	k.proto = IPPROTO_TCP;
	k.family = IDN_AF_INET;
	return k;
}

/* set bits, check bits, check byte: disjoint where they must be, never 0 */
static void test_positions(void)
{
	struct idn_tab_seed seed = { { 0 } };
	int bad_c8 = 0, bad_check = 0, bad_set = 0;

	for (int i = 0; i < 100000; i++) {
		struct idn_flow_key k = flow4((__u32)rnd(), (__u16)rnd(), 0x0ac80001, 80);
		struct idn_tab_pos p;
		__u64 h = idn_conn_hash(&seed, &k);

		idn_conn_pos(h, &p);
		bad_c8 += !p.c8 || p.c8 != (__u8)(p.check >> 24 ? p.check >> 24 : 1);
		bad_check += !(p.check & 1);
		bad_set += p.set >= IDN_CONN_SETS;
		idn_aff_pos(idn_aff_hash(&seed, rnd(), (__u32)rnd() & 0xffffff), &p);
		bad_c8 += !p.c8;
		bad_check += !(p.check & 1) || p.check > 0xffff;
		bad_set += p.set >= IDN_AFF_SETS;
	}
	ASSERT_EQ(bad_c8, 0, "check bytes never 0");
	ASSERT_EQ(bad_check, 0, "checks odd (never an empty tag), affinity's 16 bits");
	ASSERT_EQ(bad_set, 0, "sets in range");
	/* the seed changes where a key lives */
	{
		struct idn_flow_key k = flow4(0x0a000001, 1000, 0x0ac80001, 80);
		struct idn_tab_seed s2 = seed;

		s2.k[3] = 0x1234567;
		ASSERT_NEQ(idn_conn_hash(&seed, &k), idn_conn_hash(&s2, &k), "seeded hash differs");
	}
}

/*
 * Sequential sources (the benchmark's, a scan's) must land on sets that
 * look random: no arithmetic progression a stride prefetcher could follow,
 * and as many sets used as random keys would use.
 */
static void test_sequential_spread(void)
{
	enum { N = 20000 };
	static int load[IDN_CONN_SETS], strides[IDN_CONN_SETS];
	struct idn_tab_seed seed = { { 0 } };
	int used = 0, max = 0, distinct = 0, top = 0;
	__u32 prev = 0;

	memset(load, 0, sizeof(load));
	memset(strides, 0, sizeof(strides));
	for (__u32 i = 0; i < N; i++) {
		struct idn_flow_key k = flow4(0x0a800000 + i, 40000, 0x0ac80001, 80);
		struct idn_tab_pos p;

		idn_conn_pos(idn_conn_hash(&seed, &k), &p);
		if (!load[p.set]++)
			used++;
		if (load[p.set] > max)
			max = load[p.set];
		if (i && !strides[(p.set - prev) & (IDN_CONN_SETS - 1)]++)
			distinct++;
		prev = p.set;
	}
	for (int i = 0; i < IDN_CONN_SETS; i++)
		if (strides[i] > top)
			top = strides[i];
	printf("# %d keys: %d sets used, fullest %d, %d distinct strides (most common %d)\n", N,
	       used, max, distinct, top);
	/* random: 32768 * (1 - e^(-20000/32768)) = 14,977 sets, fullest ~7 */
	ASSERT_TRUE(used > 14500, "sequential keys spread like random ones");
	ASSERT_TRUE(max <= 10, "no crowded set");
	ASSERT_TRUE(distinct > N / 2 && top < 50, "no stride a prefetcher could follow");
}

/* an in-memory set of each table, with its metadata */
static struct idn_conn_set CS;
static struct idn_aff_set AS;
static struct idn_tab_meta CM, AM;

static struct idn_tab_pos pos_at(__u32 check, __u8 start)
{
	struct idn_tab_pos p = { .set = 0, .check = check | 1, .start = start };

	p.c8 = (__u8)(p.check >> 24) ? (__u8)(p.check >> 24) : 1;
	return p;
}

static void test_conn_set(void)
{
	struct idn_flow_key k[10];
	struct idn_tab_pos p[10];
	__u64 tag;
	int w;

	memset(&CS, 0, sizeof(CS));
	memset(&CM, 0, sizeof(CM));
	for (int i = 0; i < 10; i++) {
		k[i] = flow4(0x0a000001 + i, 1000, 0x0ac80001, 80);
		/* the same check byte for all: every way is a candidate */
		p[i] = pos_at(0x7f000000 | (i << 4), (__u8)i & 7);
	}
	ASSERT_EQ(idn_ct_find(&CS, &CM, &k[0], &p[0], &tag), -1, "empty set: miss");
	/* 8 entries fill the 8 ways in order */
	for (int i = 0; i < 8; i++) {
		w = idn_ct_victim(&CS, &CM, &k[i], &p[i], 0);
		ASSERT_EQ(w, i, "an empty way first");
		idn_ct_write(&CS, &CM, w, &k[i], &p[i], 100 + i, 7, 0x100);
	}
	for (int i = 0; i < 8; i++) {
		w = idn_ct_find(&CS, &CM, &k[i], &p[i], &tag);
		if (!ASSERT_EQ(w, i, "found in its way"))
			return;
		ASSERT_EQ((__u32)tag, 100 + i, "its node");
		ASSERT_EQ(CS.way[w].generation, 7, "generation");
	}
	/* a re-insert replaces its own way; noexist keeps it */
	ASSERT_EQ(idn_ct_victim(&CS, &CM, &k[3], &p[3], 0), 3, "re-insert: own way");
	ASSERT_EQ(idn_ct_victim(&CS, &CM, &k[3], &p[3], 1), -1, "noexist: kept");
	/* a key whose bytes match but whose check does not: not found */
	{
		struct idn_tab_pos q = p[2];

		q.check ^= 0x10;
		ASSERT_EQ(idn_ct_find(&CS, &CM, &k[2], &q, &tag), -1, "another check: miss");
	}
	/*
	 * A torn entry: the key of one flow under the tag of another (a
	 * reader between two writers' stores) is no entry at all.
	 */
	CS.way[5].key = k[6];
	ASSERT_EQ(idn_ct_find(&CS, &CM, &k[6], &p[6], &tag), 6, "k6 still in its own way");
	ASSERT_EQ(idn_ct_find(&CS, &CM, &k[5], &p[5], &tag), -1, "k5's way has k6's key: miss");
	CS.way[5].key = k[5];
	/* the clock: ways 2 and 4 used since; start 0 evicts 0 (unused) */
	CM.use[2] = CM.use[4] = 1;
	w = idn_ct_victim(&CS, &CM, &k[8], &p[8], 0);
	ASSERT_EQ(w, 0, "full set: the first unused way from the start");
	/* start 2: way 2 is used (second chance, cleared), way 3 goes */
	p[9].start = 2;
	w = idn_ct_victim(&CS, &CM, &k[9], &p[9], 0);
	ASSERT_EQ(w, 3, "a used way gets a second chance");
	ASSERT_EQ(CM.use[2], 0, "its use cleared on the way");
	ASSERT_EQ(CM.use[4], 1, "ways past the choice untouched");
	/* all used: the start goes, every use cleared */
	memset(CM.use, 1, sizeof(CM.use));
	w = idn_ct_victim(&CS, &CM, &k[9], &p[9], 0);
	ASSERT_EQ(w, 2, "all used: the start's way");
	{
		int used = 0;

		for (int i = 0; i < 8; i++)
			used += CM.use[i];
		ASSERT_EQ(used, 0, "all uses cleared");
	}
	/* a new entry starts unused, a cleared way is empty */
	idn_ct_write(&CS, &CM, w, &k[9], &p[9], 9, 1, 0x100);
	ASSERT_EQ(CM.use[w], 0, "new entry unused");
	idn_ct_clear(&CS, &CM, w);
	ASSERT_EQ(idn_ct_find(&CS, &CM, &k[9], &p[9], &tag), -1, "cleared: gone");
	ASSERT_EQ(idn_ct_victim(&CS, &CM, &k[8], &p[8], 0), w, "cleared: the empty way");
}

static void test_aff_set(void)
{
	struct idn_tab_pos p[10];
	__u64 tag;
	int w;

	memset(&AS, 0, sizeof(AS));
	memset(&AM, 0, sizeof(AM));
	for (int i = 0; i < 10; i++) {
		p[i] = pos_at(0x8800 + (i << 1), 0);
		p[i].check &= 0xffff;
		p[i].c8 = (__u8)(p[i].check >> 8);
	}
	ASSERT_EQ(idn_aff_find(&AS, &AM, 1, &p[0], &tag), -1, "empty: miss");
	for (int i = 0; i < 8; i++)
		idn_aff_put(&AS, &AM, -1, 100 + i, &p[i], i, 1000 + i);
	for (int i = 0; i < 8; i++) {
		w = idn_aff_find(&AS, &AM, 100 + i, &p[i], &tag);
		if (!ASSERT_EQ(w, i, "in its way"))
			return;
		ASSERT_EQ(IDN_AFF_TAG_NODE(tag), i, "node");
		ASSERT_EQ(IDN_AFF_TAG_LAST(tag), 1000 + i, "last use");
	}
	/* another class of a token: another check, another entry */
	ASSERT_EQ(idn_aff_find(&AS, &AM, 100, &p[1], &tag), -1, "token 100 under 1's check: miss");
	/* the token's own way, refreshed in place */
	idn_aff_put(&AS, &AM, -1, 103, &p[3], 9, 2000);
	ASSERT_EQ(idn_aff_find(&AS, &AM, 103, &p[3], &tag), 3, "refresh: same way");
	ASSERT_EQ(IDN_AFF_TAG_NODE(tag), 9, "refresh: new node");
	/* full: the way used longest ago goes (0, used at 1000) */
	idn_aff_put(&AS, &AM, -1, 200, &p[8], 1, 2001);
	ASSERT_EQ(idn_aff_find(&AS, &AM, 200, &p[8], &tag), 0, "oldest way taken");
	ASSERT_EQ(idn_aff_find(&AS, &AM, 100, &p[0], &tag), -1, "its entry gone");
	/* ages are modulo 256: 250 s old beats 10 s old across the wrap */
	for (int i = 0; i < 8; i++)
		AM.use[i] = (__u8)(300 - 10);
	AM.use[6] = (__u8)(300 - 250);
	idn_aff_put(&AS, &AM, -1, 201, &p[9], 2, 300);
	ASSERT_EQ(idn_aff_find(&AS, &AM, 201, &p[9], &tag), 6, "oldest across the wrap");
	/* a torn way (a token under another entry's tag) is no entry */
	AS.way[5].token = 999;
	ASSERT_EQ(idn_aff_find(&AS, &AM, 105, &p[5], &tag), -1, "torn: miss");
}

/* ---- parse.h: common SYN option layouts against the walk -------------- */

static int walk_only(const __u8 *b, __u32 len)
{
	struct idn_optwalk w;

	memset(&w, 0, sizeof(w));
	memcpy(w.buf.b, b, len);
	w.len = len;
	w.off = 0;
	w.ret = 0;
	for (__u32 i = 0; i < IDN_TCPOPT_SPACE; i++)
		if (idn_optwalk_step(i, &w))
			break;
	return w.ret;
}

static int plain(const __u8 *b, __u32 len)
{
	struct idn_optwalk w;

	memset(&w, 0, sizeof(w));
	memcpy(w.buf.b, b, len);
	w.len = len;
	return idn_tcpopt_plain(&w);
}

static void test_opt_layouts(void)
{
	static const __u8 linux_ts[20] = { 2, 4, 5, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0,
					   1, 3, 3, 7 };
	static const __u8 linux_nots[12] = { 2, 4, 5, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7 };
	static const __u8 windows[12] = { 2, 4, 5, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2 };
	static const __u8 macos[24] = { 2, 4, 5, 0xb4, 1, 3, 3, 6, 1, 1, 8, 10, 9, 9, 9, 9,
					 0, 0, 0, 0, 4, 2, 0, 0 };
	const struct { const __u8 *b; __u32 len; const char *name; } lay[] = {
		{ linux_ts, 20, "Linux" }, { linux_nots, 12, "Linux without timestamps" },
		{ windows, 12, "Windows" }, { macos, 24, "macOS" },
	};
	int disagree = 0, hits = 0;
	__u8 b[IDN_TCPOPT_SPACE];

	for (size_t i = 0; i < sizeof(lay) / sizeof(lay[0]); i++) {
		ASSERT_EQ(plain(lay[i].b, lay[i].len), 1, lay[i].name);
		ASSERT_EQ(walk_only(lay[i].b, lay[i].len), 0, "the walk agrees: no IDN option");
	}
	/*
	 * Every list the shortcut takes, the walk must find well formed and
	 * without an IDN option: the layouts with any one byte changed, and
	 * random lists.
	 */
	for (size_t i = 0; i < sizeof(lay) / sizeof(lay[0]); i++) {
		for (__u32 at = 0; at < lay[i].len; at++) {
			for (int v = 0; v < 256; v++) {
				memcpy(b, lay[i].b, lay[i].len);
				b[at] = (__u8)v;
				if (plain(b, lay[i].len)) {
					hits++;
					disagree += walk_only(b, lay[i].len) != 0;
				}
			}
		}
	}
	for (int i = 0; i < 200000; i++) {
		__u32 len = (__u32)rnd() % (IDN_TCPOPT_SPACE + 1);

		for (__u32 j = 0; j < len; j++)
			b[j] = (__u8)rnd() % 12;
		b[0] = 2;
		b[1] = 4;
		if (plain(b, len)) {
			hits++;
			disagree += walk_only(b, len) != 0;
		}
	}
	printf("# %d lists taken by the shortcut\n", hits);
	ASSERT_EQ(disagree, 0, "shortcut never takes a list the walk refuses or finds IDN in");
	/* an IDN option (kind 253) where the Linux layout has its timestamps */
	memcpy(b, linux_ts, 20);
	b[6] = 253;
	ASSERT_EQ(plain(b, 20), 0, "kind 253 in place of TS: walked");
}

/* ---- stateless.h: the ring ---------------------------------------------- */

static struct idn_node nodes[64];
static struct idn_plan plan;
static struct idn_plan_key plan_key;

static const struct idn_node *env_node(void *priv, __u32 id)
{
	return id < 64 ? &nodes[id] : NULL;
}

static const struct idn_plan *env_plan(void *priv, const struct idn_plan_key *k)
{
	return !memcmp(k, &plan_key, sizeof(*k)) ? &plan : NULL;
}

static struct idn_env ENV = { env_node, env_plan, NULL };

/* rendezvous over the usable candidates: what the pick did before the ring */
static __u32 hrw_usable(__u64 hash)
{
	__u32 best = IDN_NODE_NONE;
	__u64 best_w = 0;

	for (int i = 0; i < plan.n_cand; i++) {
		__u32 id = plan.cand[i].node;
		__u64 w = idn_hrw(hash, id);

		if (idn_node_usable(&nodes[id], IDN_AF_INET) && (best == IDN_NODE_NONE || w > best_w)) {
			best = id;
			best_w = w;
		}
	}
	return best;
}

static void test_stateless_ring(void)
{
	struct idn_sl_in in = { .cap = 0x100, .aff_node = IDN_NODE_NONE, .tier = IDN_ANY,
				.policy = IDN_ANY, .family = IDN_AF_INET };
	int per[64] = { 0 }, mism = 0, fallback_ok = 0, fallback = 0;

	memset(nodes, 0, sizeof(nodes));
	memset(&plan, 0, sizeof(plan));
	plan_key = (struct idn_plan_key){ .cap = 0x100, .tier = IDN_ANY, .policy = IDN_ANY };
	plan.n_cand = 16;
	for (int i = 0; i < 16; i++) {
		plan.cand[i].node = 10 + i;
		nodes[10 + i].flags = IDN_NODE_F_VALID | IDN_NODE_F_LOC4;
		nodes[10 + i].health = IDN_HEALTH_UP;
	}
	/* each bucket: the candidate with the highest weight for it */
	for (__u32 b = 0; b < IDN_SL_RING; b++) {
		__u8 c = idn_sl_bucket(&plan, b);
		__u64 hb = idn_mix64((__u64)b + 0x5bd1e9955bd1e995ULL);
		int ok = c >= 1 && c <= 16;

		for (int i = 0; ok && i < 16; i++)
			ok = idn_hrw(hb, plan.cand[i].node) <= idn_hrw(hb, plan.cand[c - 1].node);
		mism += !ok;
		per[c]++;
	}
	ASSERT_EQ(mism, 0, "every bucket goes to its highest-weight candidate");
	{
		int got = 0;

		for (int i = 1; i <= 16; i++)
			got += per[i] > 0;
		ASSERT_TRUE(got >= 14, "128 buckets spread over the 16 candidates");
	}
	/* flows: their bucket's node; deterministic */
	for (int i = 0; i < 5000; i++) {
		__u32 id, id2;

		in.hash = rnd();
		id = idn_stateless_pick(&ENV, &in);
		id2 = idn_stateless_pick(&ENV, &in);
		if (id != id2 ||
		    id != plan.cand[idn_sl_bucket(&plan, (__u32)in.hash & (IDN_SL_RING - 1)) - 1].node) {
			ASSERT_EQ(id, id2, "the ring's node, every time");
			break;
		}
	}
	/* a ring entry the plan carries (a dataplane filled it) is used as is */
	in.hash = 5;
	plan.sl_ring[5] = 3;
	ASSERT_EQ(idn_stateless_pick(&ENV, &in), plan.cand[2].node, "filled entry used");
	plan.sl_ring[5] = 17;
	ASSERT_EQ(idn_stateless_pick(&ENV, &in), hrw_usable(5), "out of range: rendezvous");
	memset(plan.sl_ring, 0, sizeof(plan.sl_ring));
	/* a bucket's node down: rendezvous over the usable ones; others stay */
	nodes[12].health = IDN_HEALTH_DOWN;
	for (int i = 0; i < 5000; i++) {
		__u8 c;
		__u32 id;

		in.hash = rnd();
		c = idn_sl_bucket(&plan, (__u32)in.hash & (IDN_SL_RING - 1));
		id = idn_stateless_pick(&ENV, &in);
		if (plan.cand[c - 1].node == 12) {
			fallback++;
			fallback_ok += id == hrw_usable(in.hash) && id != 12;
		} else if (id != plan.cand[c - 1].node) {
			ASSERT_EQ(id, plan.cand[c - 1].node, "a usable bucket node keeps its flows");
			break;
		}
	}
	ASSERT_TRUE(fallback > 0 && fallback_ok == fallback,
		    "the down node's buckets: rendezvous over the usable candidates");
	/* draining keeps its flows (usable) */
	nodes[12].health = IDN_HEALTH_DRAIN;
	for (__u32 b = 0; b < IDN_SL_RING; b++)
		if (plan.cand[idn_sl_bucket(&plan, b) - 1].node == 12) {
			in.hash = b;
			ASSERT_EQ(idn_stateless_pick(&ENV, &in), 12, "draining node: its buckets");
			break;
		}
	/* the affinity node first */
	in.aff_node = 20;
	ASSERT_EQ(idn_stateless_pick(&ENV, &in), 20, "affinity node first");
}

/* ---- select.h: lazy tie hashes ------------------------------------------ */

static void eager_better(__u32 *best, __u32 *best_cost, __u64 *best_hash, __u32 node,
			 __u32 cost, __u64 token)
{
	__u64 h;

	if (cost > *best_cost)
		return;
	h = idn_tie_hash(token, node);
	if (cost == *best_cost && *best != IDN_NODE_NONE && h <= *best_hash)
		return;
	*best = node;
	*best_cost = cost;
	*best_hash = h;
}

static void test_lazy_ties(void)
{
	int bad = 0;

	for (int t = 0; t < 20000; t++) {
		__u32 b1 = IDN_NODE_NONE, c1 = 0xffffffffU, b2 = IDN_NODE_NONE, c2 = 0xffffffffU;
		__u64 h1 = 0, h2 = 0, token = rnd();
		int n = 1 + (int)(rnd() % 16);

		for (int i = 0; i < n; i++) {
			__u32 node = (__u32)(rnd() % 4096), cost = (__u32)(rnd() % 4);

			if (rnd() % 8 == 0)
				cost = 0xffffffffU;
			eager_better(&b1, &c1, &h1, node, cost, token);
			idn_better(&b2, &c2, &h2, node, cost, token);
		}
		bad += b1 != b2 || c1 != c2;
	}
	ASSERT_EQ(bad, 0, "lazy tie hashes pick what eager ones did");
}

int main(void)
{
	tap_plan(0);
	TAP_RUN(test_positions);
	TAP_RUN(test_sequential_spread);
	TAP_RUN(test_conn_set);
	TAP_RUN(test_aff_set);
	TAP_RUN(test_opt_layouts);
	TAP_RUN(test_stateless_ring);
	TAP_RUN(test_lazy_ties);
	return tap_done();
}
