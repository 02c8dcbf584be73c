// SPDX-License-Identifier: GPL-2.0
/*
 * state.c - the agent's state (DESIGN 3.5): state descriptors S reported
 * to idnd with the heartbeat, the request identity that scopes cached
 * state (tenant, session token, scope from request headers), and the
 * affinity self-check (docs/agent.md, "State").
 *
 * Descriptors S = <type, compatibility hash, scope, size, reuse, migration
 * cost>: the cached KV blocks grouped by (scope, owner, prefix root = the
 * key of the prefix's first block, affinity token of the request that
 * wrote them), and the resident artifacts. A group written under a token
 * names it ("token"): a first block every prompt shares (a system prompt)
 * would otherwise make all sessions' blocks one descriptor. At most
 * STATE_MAX_DESC go upward, the most valuable first; "groups" says how many
 * there were.
 *
 * Affinity self-check: the router's view is its idn_affinity table (token,
 * class) -> node (a set-associative array, uapi idn.h), read from the pins
 * (--affinity-pin DIR). For a sample of
 * the tokens it maps to this node, the agent looks up the prefix it last
 * served for that token (remembered from requests carrying X-IDN-Token)
 * and asks its cache whether every remembered leading block is still there
 * for that requester: agree, mismatch, or unknown (never served here).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/bpf.h>

#include <json-c/json.h>
#include <linux/idn.h>

#include "agent.h"
#include "../ctl/lib/prom.h"

IDN_ASSERT_ABI();

static inline uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* ---- request identity ------------------------------------------------- */

static int parse_u64(const char *s, uint64_t max, uint64_t *v)
{
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, 0);
	if (errno || *end || *v > max)
		return -EINVAL;
	return 0;
}

int state_who_parse(const char *tenant, const char *session, const char *scope,
		    const char *token, struct kv_who *w, uint64_t *tok, char *msg, size_t len)
{
	uint64_t v;
	int s;

	memset(w, 0, sizeof(*w));
	*tok = 0;
	if (tenant) {
		if (parse_u64(tenant, 65535, &v)) {
			snprintf(msg, len, "X-IDN-Tenant: integer 0..65535 expected");
			return -EINVAL;
		}
		w->tenant = v;
	}
	if (session) {
		if (parse_u64(session, UINT64_MAX, &v) || !v) {
			snprintf(msg, len, "X-IDN-Session: non-zero 64-bit token expected");
			return -EINVAL;
		}
		w->session = v;
	}
	if (token && parse_u64(token, UINT64_MAX, tok)) {
		snprintf(msg, len, "X-IDN-Token: 64-bit token expected");
		return -EINVAL;
	}
	if (scope) {
		s = kv_scope_parse(scope);
		if (s < 0) {
			snprintf(msg, len, "X-IDN-Scope: public, tenant, session or hardware expected");
			return -EINVAL;
		}
		w->scope = s;
	} else {	/* default: the narrowest owner given */
		w->scope = w->session ? KV_SCOPE_SESSION : w->tenant ? KV_SCOPE_TENANT :
			   KV_SCOPE_PUBLIC;
	}
	if (kv_who_check(w)) {
		snprintf(msg, len, "X-IDN-Scope %s needs %s", kv_scope_name(w->scope),
			 w->scope == KV_SCOPE_TENANT ? "X-IDN-Tenant" : "X-IDN-Session");
		return -EINVAL;
	}
	return 0;
}

/* ---- state descriptors ------------------------------------------------ */

struct sgroup {
	uint64_t root, session, token;
	uint16_t tenant;
	uint8_t scope, used;
	uint32_t blocks, pinned;
	uint64_t hits;
	double value_us, reuse_sum;
};

static uint64_t compat_hash(const struct engine *e, const char *model)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const char *p = model; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	h = mix(h ^ e->p.block_tokens);
	return mix(h ^ ((uint64_t)e->p.kv_bytes_per_token << 32));
}

static void hex16(char *buf, uint64_t v)
{
	snprintf(buf, 17, "%016llx", (unsigned long long)v);
}

int64_t state_migration_us(uint64_t bytes, double gbps)
{
	if (!(gbps > 0))
		gbps = STATE_LINK_GBPS;
	return STATE_XFER_SETUP_US + (int64_t)(bytes * 8 / (gbps * 1000.0));
}

static int cmp_value(const void *a, const void *b)
{
	const struct sgroup *x = a, *y = b;

	if (x->value_us != y->value_us)
		return x->value_us < y->value_us ? 1 : -1;
	return x->root < y->root ? -1 : x->root > y->root;
}

static json_object *kv_desc(const struct state_desc *d)
{
	json_object *o = json_object_new_object();
	char hx[17];

	json_object_object_add(o, "type", json_object_new_string("kv_prefix"));
	hex16(hx, d->compat);
	json_object_object_add(o, "compat", json_object_new_string(hx));
	json_object_object_add(o, "scope", json_object_new_string(kv_scope_name(d->scope)));
	json_object_object_add(o, "tenant", json_object_new_int(d->tenant));
	if (d->scope == KV_SCOPE_SESSION) {
		hex16(hx, d->session);
		json_object_object_add(o, "session", json_object_new_string(hx));
	}
	hex16(hx, d->root);
	json_object_object_add(o, "root", json_object_new_string(hx));
	if (d->token) {	/* the session whose requests wrote these blocks */
		hex16(hx, d->token);
		json_object_object_add(o, "token", json_object_new_string(hx));
	}
	json_object_object_add(o, "blocks", json_object_new_int64(d->blocks));
	json_object_object_add(o, "tokens", json_object_new_int64(d->tokens));
	json_object_object_add(o, "size", json_object_new_int64(d->size));
	json_object_object_add(o, "reuse", json_object_new_double(d->reuse));
	json_object_object_add(o, "hits", json_object_new_int64(d->hits));
	json_object_object_add(o, "value_us", json_object_new_int64(d->value_us));
	json_object_object_add(o, "migration_us", json_object_new_int64(d->migration_us));
	return o;
}

/* a group as its descriptor reports it (the values kv_desc() writes) */
static void desc_of(const struct engine *e, const struct sgroup *g, uint64_t compat,
		    struct state_desc *d)
{
	double reuse = g->reuse_sum / g->blocks;	/* a mean of probabilities: 0..1 */

	memset(d, 0, sizeof(*d));
	d->compat = compat;
	d->root = g->root;
	d->session = g->scope == KV_SCOPE_SESSION ? g->session : 0;
	d->token = g->token;
	d->tenant = g->tenant;
	d->scope = g->scope;
	d->blocks = g->blocks;
	d->tokens = (uint64_t)g->blocks * e->kv.block_tokens;
	d->size = (uint64_t)g->blocks * e->kv.block_bytes;
	d->reuse = (double)(int64_t)((reuse < 1 ? reuse : 1) * 10000 + 0.5) / 10000;
	d->hits = g->hits;
	d->value_us = (int64_t)(g->value_us + 0.5);
	d->migration_us = g->scope == KV_SCOPE_HW ? -1 :
			  state_migration_us(d->size, e->p.kv_link_gbps);
}

uint32_t state_descs(struct engine *e, const char *model, uint32_t max, struct state_desc *d,
		     uint32_t *groups, uint64_t *cached_out)
{
	struct sgroup *g;
	uint32_t ng = 0, cap = 16, n = 0;
	uint64_t compat, cached = 0;

	pthread_mutex_lock(&e->mu);
	compat = compat_hash(e, model);
	while (cap < 2 * e->kv.nblocks && cap < (1U << 19))
		cap <<= 1;
	/* the group table, kept with the engine (one call at a time: e->mu) */
	if (e->sum_cap < cap) {
		g = realloc(e->sum_tab, (size_t)cap * sizeof(*g));
		if (g) {
			e->sum_tab = g;
			e->sum_cap = cap;
		}
	}
	g = e->sum_cap >= cap ? e->sum_tab : NULL;
	if (g)
		memset(g, 0, (size_t)cap * sizeof(*g));
	for (uint32_t i = 0; g && i < e->kv.nblocks; i++) {
		const struct kv_block *b = &e->kv.b[i];
		double r;
		uint64_t h;
		struct sgroup *x;

		if (!b->cached)
			continue;
		cached++;
		h = mix(b->root ^ mix(b->session ^ ((uint64_t)b->tenant << 8 | b->scope)) ^
			mix(b->token));
		for (;; h++) {	/* at most half full: a free slot exists */
			x = &g[h & (cap - 1)];
			if (!x->used || (x->root == b->root && x->session == b->session &&
					 x->token == b->token && x->tenant == b->tenant &&
					 x->scope == b->scope))
				break;
		}
		if (!x->used) {
			if (ng >= cap / 2)
				continue;	/* more groups than that: uncounted */
			x->used = 1;
			x->root = b->root;
			x->session = b->session;
			x->token = b->token;
			x->tenant = b->tenant;
			x->scope = b->scope;
			ng++;
		}
		x->blocks++;
		x->pinned += b->ref > 0;
		x->hits += b->nacc ? b->nacc - 1 : 0;
		/*
		 * A block in use now: the chance of an access after
		 * this one (its class's, not yet aged), which is what
		 * moving or keeping it is worth; not certainty.
		 */
		r = b->ref ? kv_reuse_next(&e->kv, b) : kv_reuse_p(&e->kv, b);
		x->reuse_sum += r;
		x->value_us += r * e->kv.saved_us;
	}
	/* compact the table, most valuable first */
	for (uint32_t i = 0; g && i < cap; i++)
		if (g[i].used)
			g[n++] = g[i];
	if (g)
		qsort(g, n, sizeof(*g), cmp_value);
	for (uint32_t i = 0; i < n && i < max; i++)
		desc_of(e, &g[i], compat, &d[i]);
	pthread_mutex_unlock(&e->mu);
	if (groups)
		*groups = n;
	if (cached_out)
		*cached_out = cached;
	return n < max ? n : max;
}

json_object *state_summary(struct engine *e, struct residency *res, const char *model,
			   uint32_t max)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	struct state_desc *d = NULL;
	uint32_t n = 0, ng = 0, emitted = 0;
	uint64_t cached = 0;

	if (e) {
		d = max ? calloc(max, sizeof(*d)) : NULL;
		if (d)
			n = state_descs(e, model, max, d, &ng, &cached);
		json_object_object_add(o, "policy",
				       json_object_new_string(kv_policy_name(e->kv.policy)));
		json_object_object_add(o, "kv_blocks", json_object_new_int64(e->kv.nblocks));
		json_object_object_add(o, "kv_cached", json_object_new_int64(cached));
	}
	if (res) {
		pthread_mutex_lock(&res->mu);
		for (struct res_artifact *r = res->head; r && emitted < max; r = r->next) {
			json_object *x;
			char hx[17];
			uint64_t c = 0;

			if (r->state != RES_READY)
				continue;
			for (int k = 0; k < 8; k++)
				c = c << 8 | r->sha256[k];
			x = json_object_new_object();
			json_object_object_add(x, "type", json_object_new_string("model"));
			hex16(hx, c);
			json_object_object_add(x, "compat", json_object_new_string(hx));
			json_object_object_add(x, "scope", json_object_new_string("public"));
			json_object_object_add(x, "name", json_object_new_string(r->name));
			json_object_object_add(x, "cap", json_object_new_int64(r->cap));
			json_object_object_add(x, "size", json_object_new_int64(r->size));
			json_object_object_add(x, "migration_us",
					       json_object_new_int64(state_migration_us(r->size,
						       e ? e->p.kv_link_gbps : 0)));
			json_object_array_add(a, x);
			emitted++;
		}
		pthread_mutex_unlock(&res->mu);
	}
	for (uint32_t i = 0; i < n && emitted < max; i++, emitted++)
		json_object_array_add(a, kv_desc(&d[i]));
	json_object_object_add(o, "groups", json_object_new_int64(ng));
	json_object_object_add(o, "descriptors", a);
	free(d);
	return o;
}

struct droot {
	uint64_t root, token;
	struct kv_who w;
	uint32_t idx;		/* the caller's descriptor */
};

static int cmp_droot(const void *a, const void *b)
{
	const struct droot *x = a, *y = b;

	return x->root < y->root ? -1 : x->root > y->root;
}

#define DROOT_HASH	(4 * STATE_MAX_DESC)	/* a power of two, > 2 x the roots */

/* r[0..n) (n <= STATE_MAX_DESC, no token yet): each gets the token found */
static void droot_tokens(struct agent_state *s, struct droot *r, uint32_t n)
{
	uint8_t first[DROOT_HASH];
	uint64_t bits[16] = { 0 };	/* a 1024-bit filter of the roots: most slots skip */

	qsort(r, n, sizeof(*r), cmp_droot);
	/* the first descriptor of each root, by a hash of the root */
	memset(first, 0xff, sizeof(first));
	for (uint32_t i = n; i-- > 0;) {
		uint32_t h = mix(r[i].root) & (DROOT_HASH - 1);

		while (first[h] != 0xff && r[first[h]].root != r[i].root)
			h = (h + 1) & (DROOT_HASH - 1);
		first[h] = i;
		bits[(r[i].root >> 54) & 15] |= 1ULL << ((r[i].root >> 48) & 63);
	}
	/* one pass over the remembered tokens: the first with that root and owner */
	pthread_mutex_lock(&s->mu);
	for (uint32_t i = 0; i < AFF_TOKENS; i++) {
		const struct aff_rec *x;
		uint32_t h, lo;

		if (!s->root[i] ||
		    !(bits[(s->root[i] >> 54) & 15] & (1ULL << ((s->root[i] >> 48) & 63))))
			continue;
		h = mix(s->root[i]) & (DROOT_HASH - 1);
		while (first[h] != 0xff && r[first[h]].root != s->root[i])
			h = (h + 1) & (DROOT_HASH - 1);
		if (first[h] == 0xff)
			continue;
		x = &s->rec[i];	/* read only for a root still without its token */
		for (lo = first[h]; lo < n && r[lo].root == s->root[i]; lo++)
			if (!r[lo].token && x->who.scope == r[lo].w.scope &&
			    x->who.tenant == r[lo].w.tenant &&
			    (r[lo].w.scope != KV_SCOPE_SESSION ||
			     x->who.session == r[lo].w.session))
				r[lo].token = x->token;
	}
	pthread_mutex_unlock(&s->mu);
}

void state_tokens(struct agent_state *s, json_object *summary)
{
	struct droot r[STATE_MAX_DESC];
	json_object *dj[STATE_MAX_DESC];
	json_object *a, *d, *v;
	uint32_t n = 0;

	if (!s->rec || !summary || !json_object_object_get_ex(summary, "descriptors", &a))
		return;
	for (size_t i = 0; i < json_object_array_length(a) && n < STATE_MAX_DESC; i++) {
		int sc;

		d = json_object_array_get_idx(a, i);
		if (!json_object_object_get_ex(d, "type", &v) ||
		    strcmp(json_object_get_string(v), "kv_prefix") ||
		    json_object_object_get_ex(d, "token", NULL) ||	/* its writer's */
		    !json_object_object_get_ex(d, "root", &v))
			continue;
		memset(&r[n], 0, sizeof(r[n]));
		r[n].root = strtoull(json_object_get_string(v), NULL, 16);
		r[n].idx = n;
		dj[n] = d;
		if (!json_object_object_get_ex(d, "scope", &v) ||
		    (sc = kv_scope_parse(json_object_get_string(v))) < 0)
			continue;
		r[n].w.scope = sc;
		if (json_object_object_get_ex(d, "tenant", &v))
			r[n].w.tenant = json_object_get_int(v);
		if (json_object_object_get_ex(d, "session", &v))
			r[n].w.session = strtoull(json_object_get_string(v), NULL, 16);
		n++;
	}
	if (!n)
		return;
	droot_tokens(s, r, n);
	for (uint32_t i = 0; i < n; i++) {
		char hx[17];

		if (!r[i].token)
			continue;
		hex16(hx, r[i].token);
		json_object_object_add(dj[r[i].idx], "token", json_object_new_string(hx));
	}
}

void state_desc_tokens(struct agent_state *s, struct state_desc *d, uint32_t nd)
{
	struct droot r[STATE_MAX_DESC];
	uint32_t n = 0;

	if (!s->rec)
		return;
	for (uint32_t i = 0; i < nd && n < STATE_MAX_DESC; i++) {
		if (d[i].token)		/* its writer's */
			continue;
		r[n] = (struct droot){ .root = d[i].root, .idx = i, .w = {
			.scope = d[i].scope, .tenant = d[i].tenant, .session = d[i].session } };
		n++;
	}
	if (!n)
		return;
	droot_tokens(s, r, n);
	for (uint32_t i = 0; i < n; i++)
		if (r[i].token)
			d[r[i].idx].token = r[i].token;
}

/* ---- affinity self-check ---------------------------------------------- */

int state_init(struct agent_state *s)
{
	memset(s, 0, sizeof(*s));
	s->aff_fd = -1;
	s->rec = calloc(AFF_TOKENS, sizeof(*s->rec));
	s->root = calloc(AFF_TOKENS, sizeof(*s->root));
	if (!s->rec || !s->root) {
		free(s->rec);
		free(s->root);
		s->rec = NULL;
		s->root = NULL;
		return -ENOMEM;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->last_ratio = 1.0;
	return 0;
}

void state_fini(struct agent_state *s)
{
	if (s->aff_fd >= 0)
		close(s->aff_fd);
	if (s->rec)
		pthread_mutex_destroy(&s->mu);
	free(s->rec);
	free(s->root);
	s->rec = NULL;
	s->root = NULL;
	s->aff_fd = -1;
}

void state_note_token(struct agent_state *s, uint64_t token, const struct kv_who *w,
		      const uint64_t *keys, uint32_t nkeys)
{
	struct aff_rec *r;

	if (!token || !s->rec)
		return;
	pthread_mutex_lock(&s->mu);
	r = &s->rec[mix(token) % AFF_TOKENS];	/* the newest token of a slot wins */
	r->token = token;
	r->who = w ? *w : (struct kv_who){ 0 };
	r->nkeys = nkeys < AFF_KEYS ? nkeys : AFF_KEYS;
	if (r->nkeys)	/* keys may be NULL when there are none */
		memcpy(r->keys, keys, sizeof(*keys) * r->nkeys);
	s->root[r - s->rec] = r->nkeys ? keys[0] : 0;	/* state_tokens() scans these */
	s->noted++;
	pthread_mutex_unlock(&s->mu);
}

int state_token_lookup(struct agent_state *s, uint64_t token, struct kv_who *w,
		       uint64_t *keys, uint32_t *nkeys)
{
	const struct aff_rec *r;
	int rc = -ENOENT;

	if (!token || !s->rec)
		return rc;
	pthread_mutex_lock(&s->mu);
	r = &s->rec[mix(token) % AFF_TOKENS];
	if (r->token == token && r->nkeys) {
		*w = r->who;
		*nkeys = r->nkeys;
		memcpy(keys, r->keys, sizeof(*keys) * r->nkeys);
		rc = 0;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void state_affinity_check(struct agent_state *s, struct engine *e, const uint64_t *tokens,
			  uint32_t n)
{
	uint32_t agree = 0, mismatch = 0, unknown = 0;

	if (!s->rec)
		return;
	pthread_mutex_lock(&s->mu);
	for (uint32_t i = 0; i < n; i++) {
		const struct aff_rec *r = &s->rec[mix(tokens[i]) % AFF_TOKENS];

		if (r->token != tokens[i] || !tokens[i]) {
			unknown++;
			continue;
		}
		if (!r->nkeys) {	/* a prompt shorter than a block: nothing to hold */
			unknown++;
			continue;
		}
		pthread_mutex_lock(&e->mu);
		if (kv_match_as(&e->kv, &r->who, r->keys, r->nkeys) == r->nkeys)
			agree++;
		else
			mismatch++;
		pthread_mutex_unlock(&e->mu);
	}
	s->checked += n;
	s->agree += agree;
	s->mismatch += mismatch;
	s->unknown += unknown;
	s->rounds++;
	if (agree + mismatch)
		s->last_ratio = (double)agree / (agree + mismatch);
	pthread_mutex_unlock(&s->mu);
}

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

int state_affinity_open(struct agent_state *s, const char *pin_dir)
{
	char path[300];
	union bpf_attr at;
	int fd;

	snprintf(path, sizeof(path), "%s/idn_affinity", pin_dir);
	memset(&at, 0, sizeof(at));
	at.pathname = (uint64_t)(uintptr_t)path;
	at.file_flags = BPF_F_RDONLY;
	fd = sys_bpf(BPF_OBJ_GET, &at);
	if (fd < 0)
		return -errno;
	s->aff_fd = fd;
	return 0;
}

int state_affinity_poll(struct agent_state *s, struct engine *e, uint32_t node, uint32_t max)
{
	uint64_t tokens[AFF_SAMPLE_MAX], seen = 0, rng = mix(s->rounds + 1);
	uint32_t n = 0, visited = 0, start = (uint32_t)(s->rounds * 7919) % IDN_AFF_SETS;
	struct idn_aff_set set;
	union bpf_attr at;

	if (s->aff_fd < 0)
		return -EBADF;
	if (max > AFF_SAMPLE_MAX)
		max = AFF_SAMPLE_MAX;
	/*
	 * walk the table's sets (bounded; uapi idn.h: an array of sets, each
	 * way a token and a tag holding the node) from a set that moves every
	 * round, reservoir-sample the tokens mapped to this node
	 */
	for (uint32_t i = 0; i < IDN_AFF_SETS && visited < AFF_WALK_MAX; i++) {
		uint32_t key = (start + i) % IDN_AFF_SETS;

		memset(&at, 0, sizeof(at));
		at.map_fd = s->aff_fd;
		at.key = (uint64_t)(uintptr_t)&key;
		at.value = (uint64_t)(uintptr_t)&set;
		if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &at))
			break;
		for (int w = 0; w < IDN_AFF_WAYS; w++) {
			uint64_t tag = set.way[w].tag;

			if (!tag)
				continue;
			visited++;
			if (IDN_AFF_TAG_NODE(tag) != node)
				continue;
			seen++;
			if (n < max) {
				tokens[n++] = set.way[w].token;
			} else {
				rng = mix(rng + seen);
				if (rng % seen < max)
					tokens[rng % seen] = set.way[w].token;
			}
		}
	}
	state_affinity_check(s, e, tokens, n);
	return n;
}

json_object *state_affinity_json(struct agent_state *s)
{
	json_object *o = json_object_new_object();

	pthread_mutex_lock(&s->mu);
	json_object_object_add(o, "checked", json_object_new_int64(s->checked));
	json_object_object_add(o, "agree", json_object_new_int64(s->agree));
	json_object_object_add(o, "mismatch", json_object_new_int64(s->mismatch));
	json_object_object_add(o, "unknown", json_object_new_int64(s->unknown));
	pthread_mutex_unlock(&s->mu);
	return o;
}

void state_metrics(struct agent_state *s, struct idn_prom *p, const char *model)
{
	pthread_mutex_lock(&s->mu);
	idn_prom_family(p, "idn_affinity_checked_total", IDN_PROM_COUNTER,
			"Tokens the router maps here that were checked against the cache.");
	idn_prom_u64(p, NULL, s->checked, "model_name", model, NULL);
	idn_prom_family(p, "idn_affinity_agree_total", IDN_PROM_COUNTER,
			"Checked tokens whose remembered prefix the cache holds.");
	idn_prom_u64(p, NULL, s->agree, "model_name", model, NULL);
	idn_prom_family(p, "idn_affinity_mismatch_total", IDN_PROM_COUNTER,
			"Checked tokens whose remembered prefix the cache lost.");
	idn_prom_u64(p, NULL, s->mismatch, "model_name", model, NULL);
	idn_prom_family(p, "idn_affinity_unknown_total", IDN_PROM_COUNTER,
			"Checked tokens this agent has not served (no prefix known).");
	idn_prom_u64(p, NULL, s->unknown, "model_name", model, NULL);
	idn_prom_family(p, "idn_affinity_agree_ratio", IDN_PROM_GAUGE,
			"agree / (agree + mismatch) in the last check with any.");
	idn_prom_f64(p, NULL, s->last_ratio, "model_name", model, NULL);
	pthread_mutex_unlock(&s->mu);
}
