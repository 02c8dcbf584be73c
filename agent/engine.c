// SPDX-License-Identifier: GPL-2.0
/*
 * engine.c - the engine emulator's scheduler: continuous batching over
 * the KV cache of kvcache.c, with the timing model of docs/agent.md
 *
 *   iteration = base + prefill_tok_us * (uncached prefill tokens scheduled)
 *             + decode_seq_us * (decoding sequences)
 *             + attn_ctx_ns/1000 * (context tokens of decoding sequences)
 *             + prefill_attn_ns/1000 * sum over prefill chunks of
 *               chunk * (tokens before the chunk + chunk / 2)
 *
 * (defaults: 5.75 ms, 17.25 us, 6.0 us, 0, 0 - the BLIS fit for
 * Llama-3.1-8B on one H100 quoted by DESIGN.md; the two attention terms
 * are rooflines that matter for long prompts: 39.1 ns and 0.874 ns there,
 * as tools/eval sets them, see docs/benchmarks.md).
 *
 * Each iteration: admit waiting requests in order while their blocks fit
 * (head of line blocks: no overtaking), give every decoding sequence one
 * token, then fill the rest of the token budget with prefill chunks
 * (chunked prefill). A sequence's first token comes with the iteration
 * that finishes its prefill. engine_step() runs one iteration in emulated
 * time (tests, replay); engine_start() runs them in a thread that ends
 * each iteration its duration / speed after the previous one ended
 * (absolute deadlines: a late wake-up does not slow the engine down).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"

const double eng_ttft_buckets[12] = {
	0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1.0, 2.5,
};

void eng_params_defaults(struct eng_params *p)
{
	p->iter_base_us = 5750;
	p->prefill_tok_us = 17.25;
	p->decode_seq_us = 6.0;
	p->attn_ctx_ns = 0;
	p->prefill_attn_ns = 0;
	p->block_tokens = 512;
	p->capacity_tokens = 467 * 1024;
	p->kv_bytes_per_token = 16;
	p->kv_link_gbps = STATE_LINK_GBPS;
	p->max_batch_tokens = 8192;
	p->max_seqs = 256;
	p->speed = 1.0;
	p->cache_policy = KV_POLICY_EQ8;
	p->cache_half_life = 1.0;
}

double eng_iter_attn_us(const struct eng_params *p, uint64_t prefill_tokens, uint32_t ndecode,
			uint64_t decode_ctx_tokens, double prefill_attn)
{
	if (!prefill_tokens && !ndecode)
		return 0;
	return p->iter_base_us + p->prefill_tok_us * (double)prefill_tokens +
	       p->decode_seq_us * ndecode + p->attn_ctx_ns / 1000.0 * (double)decode_ctx_tokens +
	       p->prefill_attn_ns / 1000.0 * prefill_attn;
}

double eng_iter_us(const struct eng_params *p, uint64_t prefill_tokens, uint32_t ndecode,
		   uint64_t decode_ctx_tokens)
{
	return eng_iter_attn_us(p, prefill_tokens, ndecode, decode_ctx_tokens, 0);
}

int engine_init(struct engine *e, const struct eng_params *p)
{
	uint64_t nb;
	int err;

	memset(e, 0, sizeof(*e));
	e->p = *p;
	if (!p->block_tokens || !p->max_batch_tokens || !p->max_seqs || p->speed <= 0)
		return -EINVAL;
	nb = p->capacity_tokens / p->block_tokens;
	err = kv_init(&e->kv, nb, p->block_tokens, p->kv_bytes_per_token);
	if (!err)
		err = kv_set_policy(&e->kv, p->cache_policy, p->cache_half_life,
				    p->prefill_tok_us * p->block_tokens);
	if (err) {
		kv_free(&e->kv);
		return err;
	}
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->work, NULL);
	pthread_cond_init(&e->progress, NULL);
	return 0;
}

static void req_free(struct eng_req *r)
{
	free(r->keys);
	free(r->blk);
	free(r);
}

void engine_free(struct engine *e)
{
	struct eng_req *r, *n;

	engine_stop(e);
	for (r = e->wait_head; r; r = n) {
		n = r->next;
		req_free(r);
	}
	for (r = e->run_head; r; r = n) {
		n = r->next;
		req_free(r);
	}
	kv_free(&e->kv);
	free(e->sum_tab);
	e->sum_tab = NULL;
	e->sum_cap = 0;
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->work);
	pthread_cond_destroy(&e->progress);
}

int eng_keys_from_ids(const int64_t *ids, uint32_t n, uint64_t **keys)
{
	uint64_t prev = 0;

	*keys = NULL;
	if (!n)
		return 0;
	*keys = malloc(sizeof(**keys) * n);
	if (!*keys)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		(*keys)[i] = prev = kv_chain(prev, (uint64_t)ids[i]);
	return 0;
}

uint32_t eng_keys_from_text(const char *s, uint32_t block_tokens, uint64_t **keys,
			    uint32_t *tokens)
{
	uint64_t prev = 0, h = 1469598103934665603ULL;
	uint32_t ntok = 0, nk = 0, cap = 0;
	bool in_word = false;

	*keys = NULL;
	for (;; s++) {
		bool sp = !*s || *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r';

		if (!sp) {
			h = (h ^ (uint8_t)*s) * 1099511628211ULL;
			in_word = true;
		} else if (in_word) {
			in_word = false;
			h = (h ^ ' ') * 1099511628211ULL;
			if (++ntok % block_tokens == 0) {
				if (nk == cap) {
					uint64_t *k;

					cap = cap ? cap * 2 : 16;
					k = realloc(*keys, sizeof(*k) * cap);
					if (!k)
						break;
					*keys = k;
				}
				(*keys)[nk++] = prev = kv_chain(prev, h);
				h = 1469598103934665603ULL;
			}
		}
		if (!*s)
			break;
	}
	*tokens = ntok;
	return nk;
}

static void list_add(struct eng_req **head, struct eng_req **tail, struct eng_req *r)
{
	r->next = NULL;
	if (*tail)
		(*tail)->next = r;
	else
		*head = r;
	*tail = r;
}

static uint32_t blocks_for(const struct engine *e, uint32_t in, uint32_t out)
{
	uint64_t t = (uint64_t)in + out;

	return (t + e->p.block_tokens - 1) / e->p.block_tokens;
}

struct eng_req *engine_submit(struct engine *e, uint32_t in_tokens, uint32_t out_tokens,
			      uint64_t *keys, uint32_t nkeys, int *err)
{
	return engine_submit_as(e, NULL, in_tokens, out_tokens, keys, nkeys, err);
}

static struct eng_req *submit(struct engine *e, const struct kv_who *who, uint32_t in_tokens,
			      uint32_t out_tokens, uint64_t *keys, uint32_t nkeys, bool held,
			      int *err)
{
	struct eng_req *r;
	uint32_t nb = 0;

	*err = 0;
	if (who && kv_who_check(who))
		*err = -EINVAL;
	else if (!in_tokens || !out_tokens)
		*err = -EINVAL;
	else if ((nb = blocks_for(e, in_tokens, out_tokens)) > e->kv.nblocks || nkeys > nb)
		*err = -E2BIG;
	r = *err ? NULL : calloc(1, sizeof(*r));
	if (r)
		r->blk = malloc(sizeof(*r->blk) * nb);
	if (!*err && (!r || !r->blk)) {
		*err = -ENOMEM;
		if (r)
			free(r);
		r = NULL;
	}
	if (!r) {
		free(keys);
		return NULL;
	}
	r->in_tokens = in_tokens;
	r->out_tokens = out_tokens;
	r->keys = keys;
	r->nkeys = nkeys;
	r->nblocks = nb;
	if (who)
		r->who = *who;
	r->refs = 2;		/* the engine's and the caller's */
	r->state = ENG_WAITING;
	r->held = held;
	pthread_mutex_lock(&e->mu);
	r->id = ++e->next_id;
	r->t_arrival = e->now_us;
	r->est_cached = kv_match_as(&e->kv, &r->who, keys, nkeys) * e->p.block_tokens;
	if (r->est_cached >= in_tokens)
		r->est_cached = in_tokens - 1;
	e->pending_wait += in_tokens - r->est_cached;
	e->admit_reqs++;
	e->admit_tokens += in_tokens;
	list_add(&e->wait_head, &e->wait_tail, r);
	e->n_wait++;
	pthread_cond_signal(&e->work);
	pthread_mutex_unlock(&e->mu);
	return r;
}

struct eng_req *engine_submit_as(struct engine *e, const struct kv_who *who,
				 uint32_t in_tokens, uint32_t out_tokens, uint64_t *keys,
				 uint32_t nkeys, int *err)
{
	return submit(e, who, in_tokens, out_tokens, keys, nkeys, false, err);
}

struct eng_req *engine_submit_held(struct engine *e, const struct kv_who *who,
				   uint32_t in_tokens, uint32_t out_tokens, uint64_t *keys,
				   uint32_t nkeys, int *err)
{
	return submit(e, who, in_tokens, out_tokens, keys, nkeys, true, err);
}

/* the pulled blocks are in (or will not come): admit it from its place */
void engine_release(struct engine *e, struct eng_req *r)
{
	uint32_t est;

	pthread_mutex_lock(&e->mu);
	if (r->held && r->state == ENG_WAITING) {
		est = kv_match_as(&e->kv, &r->who, r->keys, r->nkeys) * e->p.block_tokens;
		if (est >= r->in_tokens)
			est = r->in_tokens - 1;
		e->pending_wait += r->est_cached;	/* was counted as in - est_cached */
		e->pending_wait -= est;
		r->est_cached = est;
	}
	r->held = false;
	pthread_cond_signal(&e->work);
	pthread_mutex_unlock(&e->mu);
}

static void put_locked(struct eng_req *r)
{
	if (--r->refs == 0)
		req_free(r);
}

void engine_put(struct engine *e, struct eng_req *r)
{
	pthread_mutex_lock(&e->mu);
	put_locked(r);
	pthread_mutex_unlock(&e->mu);
}

void engine_cancel(struct engine *e, struct eng_req *r)
{
	pthread_mutex_lock(&e->mu);
	r->cancelled = true;
	pthread_mutex_unlock(&e->mu);
}

static void ttft_observe(struct engine *e, double s)
{
	for (int i = 0; i < 12; i++)
		if (s <= eng_ttft_buckets[i])
			e->st.ttft_bucket[i]++;
	e->st.ttft_sum_s += s;
	e->st.ttft_count++;
}

/* r leaves the waiting list (prev: the one before it, NULL: the head) */
static void wait_unlink(struct engine *e, struct eng_req *prev, struct eng_req *r)
{
	if (prev)
		prev->next = r->next;
	else
		e->wait_head = r->next;
	if (e->wait_tail == r)
		e->wait_tail = prev;
	r->next = NULL;
}

/*
 * admit from the waiting list while blocks fit, in arrival order; a held
 * request (its pulled blocks still coming) keeps its place and is passed
 */
static void admit(struct engine *e)
{
	struct eng_req *prev = NULL, *r = e->wait_head, *next;

	for (; r && e->n_run < e->p.max_seqs; r = next) {
		uint32_t hits, cached;

		next = r->next;
		if (r->held && !r->cancelled) {
			prev = r;
			continue;
		}
		if (r->cancelled) {
			wait_unlink(e, prev, r);
			e->n_wait--;
			e->pending_wait -= r->in_tokens - r->est_cached;
			r->state = ENG_FAILED;
			r->err = -ECANCELED;
			put_locked(r);
			continue;
		}
		if (kv_acquire_as(&e->kv, &r->who, r->keys, r->nkeys, r->nblocks, r->blk, &hits))
			break;
		wait_unlink(e, prev, r);
		e->n_wait--;
		e->pending_wait -= r->in_tokens - r->est_cached;
		cached = hits * e->p.block_tokens;
		if (cached > r->in_tokens)
			cached = r->in_tokens;
		if (cached == r->in_tokens)	/* logits need one computed token */
			cached = r->in_tokens - 1;
		r->cached_tokens = cached;
		r->prefill_left = r->in_tokens - cached;
		r->state = ENG_PREFILL;
		e->st.prefix_query_tokens += r->in_tokens;
		e->st.prefix_hit_tokens += cached;
		list_add(&e->run_head, &e->run_tail, r);
		e->n_run++;
	}
}

double engine_plan(struct engine *e)
{
	uint32_t budget = e->p.max_batch_tokens, ndec = 0;
	uint64_t pre = 0, ctx = 0;
	double attn = 0;
	struct eng_req *r;

	admit(e);
	for (r = e->run_head; r; r = r->next) {
		r->chunk = 0;
		if (r->state == ENG_DECODE && budget) {
			ndec++;
			budget--;
			ctx += r->in_tokens + r->generated;
		}
	}
	for (r = e->run_head; r && budget; r = r->next) {
		if (r->state != ENG_PREFILL)
			continue;
		r->chunk = r->prefill_left < budget ? r->prefill_left : budget;
		budget -= r->chunk;
		pre += r->chunk;
		attn += (double)r->chunk * ((r->in_tokens - r->prefill_left) + r->chunk / 2.0);
	}
	return eng_iter_attn_us(&e->p, pre, ndec, ctx, attn);
}

static void finish(struct engine *e, struct eng_req *r, struct eng_req *prev)
{
	if (prev)
		prev->next = r->next;
	else
		e->run_head = r->next;
	if (e->run_tail == r)
		e->run_tail = prev;
	e->n_run--;
	kv_release(&e->kv, r->blk, r->nblocks);
	r->t_done = e->now_us;
	if (r->state == ENG_FAILED) {
		e->st.requests_failed++;
	} else {
		r->state = ENG_DONE;
		e->st.requests_ok++;
	}
	put_locked(r);
}

void engine_apply(struct engine *e, double dur)
{
	struct eng_req *r, *prev = NULL, *next;

	e->now_us += dur;
	if (dur > 0) {
		e->st.iterations++;
		e->st.busy_us += dur;
	}
	for (r = e->run_head; r; r = next) {
		next = r->next;
		if (r->state == ENG_DECODE && r->generated < r->out_tokens &&
		    (r->chunk || dur > 0)) {
			r->generated++;
			e->st.gen_tokens++;
		} else if (r->state == ENG_PREFILL && r->chunk) {
			r->prefill_left -= r->chunk;
			if (!r->prefill_left) {
				uint32_t full = r->nkeys;

				kv_commit(&e->kv, r->keys, r->blk, 0, full);
				r->state = ENG_DECODE;
				r->generated = 1;
				r->t_first = e->now_us;
				e->st.gen_tokens++;
				e->st.prompt_tokens += r->in_tokens;
				ttft_observe(e, (r->t_first - r->t_arrival) / 1e6);
			}
		}
		if (r->cancelled && r->state != ENG_DONE) {
			r->state = ENG_FAILED;
			r->err = -ECANCELED;
		}
		if ((r->state == ENG_DECODE && r->generated >= r->out_tokens) ||
		    r->state == ENG_FAILED) {
			finish(e, r, prev);
			continue;
		}
		prev = r;
	}
	pthread_cond_broadcast(&e->progress);
}

double engine_step(struct engine *e)
{
	double d;

	pthread_mutex_lock(&e->mu);
	d = engine_plan(e);
	engine_apply(e, d);
	pthread_mutex_unlock(&e->mu);
	return d;
}

/*
 * The time to clear @pend outstanding prefill tokens, in emulated us: each
 * token's own cost (B), the attention of each request's remaining tokens
 * over those before them (E, @attn as engine_plan() sums it), and the
 * iterations it takes, each paying the fixed cost (A) and the running
 * decodes' step (C, D): they share the iteration's token budget, so they
 * also stretch how many iterations the prefill needs.
 */
static double drain_us(const struct eng_params *p, uint64_t pend, double attn, uint32_t ndec,
		       uint64_t ctx)
{
	uint32_t per = p->max_batch_tokens > ndec ? p->max_batch_tokens - ndec : 1;
	uint64_t iters = (pend + per - 1) / per;

	if (!pend)
		return 0;
	return (double)iters * (p->iter_base_us + p->decode_seq_us * ndec +
				p->attn_ctx_ns / 1000.0 * (double)ctx) +
	       p->prefill_tok_us * (double)pend + p->prefill_attn_ns / 1000.0 * attn;
}

void engine_load(struct engine *e, struct eng_load *l)
{
	uint64_t pend, ctx = 0;
	uint32_t ndec = 0;
	double attn = 0, work;
	struct eng_req *r;

	pthread_mutex_lock(&e->mu);
	pend = e->pending_wait;
	for (r = e->run_head; r; r = r->next) {
		if (r->state == ENG_PREFILL) {
			pend += r->prefill_left;
			attn += (double)r->prefill_left *
				((r->in_tokens - r->prefill_left) + r->prefill_left / 2.0);
		} else if (r->state == ENG_DECODE) {
			ndec++;
			ctx += r->in_tokens + r->generated;
		}
	}
	for (r = e->wait_head; r && e->p.prefill_attn_ns > 0; r = r->next) {
		double left = r->in_tokens - r->est_cached;

		attn += left * (r->est_cached + left / 2.0);
	}
	l->pending_tokens = pend > UINT32_MAX ? UINT32_MAX : pend;
	/* in prefill tokens at this engine's rate: T_queue = work_tokens x tok_ns */
	work = e->p.prefill_tok_us > 0 ?
		drain_us(&e->p, pend, attn, ndec, ctx) / e->p.prefill_tok_us : 0;
	l->work_tokens = work >= UINT32_MAX ? UINT32_MAX : (uint32_t)(work + 0.5);
	l->running = e->n_run;
	l->waiting = e->n_wait;
	l->queue_depth = e->n_run + e->n_wait;
	l->load = e->n_run >= e->p.max_seqs ? 1000 : e->n_run * 1000 / e->p.max_seqs;
	if (e->n_wait && l->load < 1000)
		l->load = 1000;	/* requests wait: saturated */
	l->kv_use = e->kv.nblocks ? (uint64_t)e->kv.nused * 1000 / e->kv.nblocks : 0;
	l->admit_reqs = e->admit_reqs;
	l->admit_tokens = e->admit_tokens;
	pthread_mutex_unlock(&e->mu);
}

static double mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* sleep until CLOCK_MONOTONIC reaches @t_us (absolute) */
static void sleep_until_us(double t_us)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(t_us / 1e6);
	ts.tv_nsec = (long)fmod(t_us * 1000.0, 1e9);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/*
 * Iterations are paced against an absolute clock: each one ends
 * duration / speed after the previous one ended, not after the thread
 * woke, so a late wake-up (a loaded CPU, timer slack) is made up by the
 * next iterations instead of slowing the emulated engine down, as a GPU
 * keeps its pace whatever the host's scheduler does. After an idle spell
 * the pace starts from now.
 */
static void *engine_thread(void *arg)
{
	struct engine *e = arg;
	double t_end = 0;
	bool idle = true;

	pthread_mutex_lock(&e->mu);
	while (!e->stop) {
		double d = engine_plan(e);

		if (d <= 0) {
			idle = true;
			pthread_cond_wait(&e->work, &e->mu);
			continue;
		}
		pthread_mutex_unlock(&e->mu);
		if (idle)
			t_end = mono_us();
		idle = false;
		t_end += d / e->p.speed;
		sleep_until_us(t_end);
		pthread_mutex_lock(&e->mu);
		engine_apply(e, d);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

int engine_start(struct engine *e)
{
	int err = pthread_create(&e->thr, NULL, engine_thread, e);

	if (err)
		return -err;
	e->threaded = true;
	return 0;
}

void engine_stop(struct engine *e)
{
	if (!e->threaded)
		return;
	pthread_mutex_lock(&e->mu);
	e->stop = true;
	pthread_cond_broadcast(&e->work);
	pthread_mutex_unlock(&e->mu);
	pthread_join(e->thr, NULL);
	e->threaded = false;
}
