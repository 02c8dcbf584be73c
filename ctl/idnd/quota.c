// SPDX-License-Identifier: GPL-2.0
/*
 * quota.c - per-principal limits of idnd's API (docs/security.md, "Quotas
 * and rate limits"): what one principal may hold of the registry, and how
 * fast it may change things.
 *
 * A principal is who a request authenticates as: the client certificate's
 * CN, or under --insecure the client's address (api.c principal_of()).
 *
 * Registry quotas (-Q principal-caps=N,principal-policies=N): every
 * capability and policy class records the principal that created it
 * (d_cap.owner, d_policy.owner; persisted with the object in SQLite and
 * etcd, kept across updates, restarts and takeovers). A new one beyond
 * its principal's count is refused 507 by api.c; a deletion frees the
 * count at once (counted from the registry, nothing cached). Objects
 * stored before owners were recorded have none and count for no one.
 *
 * Write rate (-Q principal-rate=R/s,principal-burst=B): a token bucket per
 * principal, charged one token by every mutating request (POST, DELETE)
 * except a node's heartbeat; reads are never charged. The table holds
 * the IDND_RATE_TABLE principals seen last; a new one evicts the least
 * recently seen (its bucket starts full again: an attacker with more
 * principals than that is held by the per-address connection limit, -C,
 * and by the CA that issues them). The table has its own mutex, not
 * D.lock.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "idnd.h"
#include "solver.h"
#include "prom.h"

struct bucket {
	char who[IDND_OWNER_MAX];
	double tokens;
	double last;		/* monotonic seconds of the last refill / use */
	uint64_t limited;	/* requests refused 429 */
};

static struct {
	pthread_mutex_t mu;
	struct bucket b[IDND_RATE_TABLE];
	int n;
	double rate, burst;	/* idnd_limits' principal-rate and -burst */
	uint64_t limited, evicted, refused_caps, refused_policies;
} R = { .mu = PTHREAD_MUTEX_INITIALIZER, .rate = 100, .burst = 1000 };

void idnd_rate_config(void)
{
	pthread_mutex_lock(&R.mu);
	R.rate = idnd_limits.principal_rate;
	R.burst = idnd_limits.principal_burst;
	pthread_mutex_unlock(&R.mu);
}

int idnd_quota_caps_of(const char *who)
{
	int n = 0;

	if (!who || !who[0])
		return 0;
	for (int i = 0; i < D.n_caps; i++)
		n += !strcmp(D.caps[i].owner, who);
	return n;
}

int idnd_quota_policies_of(const char *who)
{
	int n = 0;

	if (!who || !who[0])
		return 0;
	for (uint32_t p = 0; p < IDND_MAX_POLICIES; p++) {
		const struct d_policy *pol = idnd_policy_get(p);

		n += pol && !strcmp(pol->owner, who);
	}
	return n;
}

void idnd_quota_refused_count(int policies)
{
	pthread_mutex_lock(&R.mu);
	if (policies)
		R.refused_policies++;
	else
		R.refused_caps++;
	pthread_mutex_unlock(&R.mu);
}

/* the bucket of who: found, or a new full one (the least recent evicted) */
static struct bucket *bucket_of(const char *who, double now)
{
	struct bucket *b, *lru = NULL;

	for (int i = 0; i < R.n; i++) {
		if (!strcmp(R.b[i].who, who))
			return &R.b[i];
		if (!lru || R.b[i].last < lru->last)
			lru = &R.b[i];
	}
	if (R.n < IDND_RATE_TABLE) {
		b = &R.b[R.n++];
	} else {
		b = lru;
		R.evicted++;
	}
	memset(b, 0, sizeof(*b));
	snprintf(b->who, sizeof(b->who), "%s", who);
	b->tokens = R.burst;
	b->last = now;
	return b;
}

int idnd_rate_charge(const char *who, double now, unsigned int *retry_s, char *why, size_t len)
{
	static double last_log;
	static uint64_t unlogged;
	double rate, burst;
	struct bucket *b;
	int ret = 0;

	pthread_mutex_lock(&R.mu);
	rate = R.rate;
	burst = R.burst;
	if (!(rate > 0)) {	/* principal-rate=0: off */
		pthread_mutex_unlock(&R.mu);
		return 0;
	}
	b = bucket_of(who, now);
	if (now > b->last)
		b->tokens = fmin(burst, b->tokens + (now - b->last) * rate);
	b->last = now;
	if (b->tokens >= 1) {
		b->tokens -= 1;
	} else {
		*retry_s = (unsigned int)ceil((1 - b->tokens) / rate);
		if (*retry_s < 1)
			*retry_s = 1;
		snprintf(why, len, "rate limit: principal %s is over %g changes/s (burst %g); "
			 "retry after %u s (idnd -Q principal-rate=R/s,principal-burst=N)", who,
			 rate, burst, *retry_s);
		b->limited++;
		R.limited++;
		unlogged++;
		/* one line a second at most: a flood must not flood the log */
		if (now - last_log >= 1) {
			pr_warn("API: write rate: principal %s over %g/s (burst %g); %llu "
				"change(s) refused 429 since the last such line (idnd -Q "
				"principal-rate=R/s,principal-burst=N)\n", who, rate, burst,
				(unsigned long long)unlogged);
			last_log = now;
			unlogged = 0;
		}
		ret = -EAGAIN;
	}
	pthread_mutex_unlock(&R.mu);
	return ret;
}

void idnd_quota_metrics(struct idn_prom *p)
{
	uint64_t limited, evicted, rc, rp;
	int n;

	pthread_mutex_lock(&R.mu);
	limited = R.limited;
	evicted = R.evicted;
	rc = R.refused_caps;
	rp = R.refused_policies;
	n = R.n;
	pthread_mutex_unlock(&R.mu);
	idn_prom_one_u64(p, "idnd_api_rate_limited_total", IDN_PROM_COUNTER,
			 "Changes refused 429: their principal was over its write rate "
			 "(-Q principal-rate, principal-burst).", limited);
	idn_prom_one_u64(p, "idnd_api_rate_principals", IDN_PROM_GAUGE,
			 "Principals in the write-rate table.", n);
	idn_prom_one_u64(p, "idnd_api_rate_evicted_total", IDN_PROM_COUNTER,
			 "Principals evicted from the full write-rate table (least recently "
			 "seen).", evicted);
	idn_prom_family(p, "idnd_principal_quota_refused_total", IDN_PROM_COUNTER,
			"Registrations refused 507: their principal held its quota "
			"(-Q principal-caps, principal-policies).");
	idn_prom_u64(p, NULL, rc, "quota", "principal-caps", NULL);
	idn_prom_u64(p, NULL, rp, "quota", "principal-policies", NULL);
}
