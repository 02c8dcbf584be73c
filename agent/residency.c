// SPDX-License-Identifier: GPL-2.0
/*
 * residency.c - the residency manager: model artifacts (weights,
 * adapters, quantised variants - real files) loaded into a backend's
 * memory under a budget, and the host-memory backend.
 *
 * A load is a transaction: under the lock it reserves its size (and marks
 * the LRU victims it needs, when allowed to evict); outside the lock it
 * reads the file into fresh backend memory in 8 MiB steps (progress is
 * visible in res_json) while hashing it (SHA-256, when a digest is expected:
 * from the order or PATH.sha256); then, under the lock
 * again, it commits (victims freed, artifact ready) or rolls back (its
 * memory freed, reservation returned, victims ready again). No failure
 * leaves a half-loaded artifact or a lost victim.
 *
 * The load path is as fast as a raw read of the file (make bench,
 * residency_load_vs_read): a backend with host_ptr (the host backend) gets
 * the file read straight into its memory (no bounce buffer, no copy), the
 * host backend's memory uses transparent huge pages (on a VM a 4 KiB page
 * fault costs more than reading the page), an artifact without an expected
 * digest is not hashed (nothing to check it against), and a digest check
 * runs in a second thread that follows the reads chunk by chunk, with the
 * CPU's SHA
 * instructions through libcrypto where it can be dlopen()ed (libsodium's
 * portable SHA-256 otherwise: same digest, slower).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "agent.h"

#define RES_CHUNK (8U << 20)
#define RES_HUGE (2U << 20)

/* ---- host backend: anonymous mappings, unmapped on release ---------- */

static int host_init(void **ctx)
{
	*ctx = NULL;
	return 0;
}

static void host_fini(void *ctx)
{
}

static int host_alloc(void *ctx, uint64_t size, void **h)
{
	void *p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -ENOMEM;
	/* huge pages where THP allows (advisory: no error if it does not) */
	if (size >= RES_HUGE)
		madvise(p, size, MADV_HUGEPAGE);
	*h = p;
	return 0;
}

static void *host_ptr(void *ctx, void *h)
{
	return h;
}

static int host_write(void *ctx, void *h, uint64_t off, const void *buf, size_t len)
{
	memcpy((uint8_t *)h + off, buf, len);
	return 0;
}

static void host_release(void *ctx, void *h, uint64_t size)
{
	munmap(h, size ? size : 1);
}

static int64_t host_free_bytes(void *ctx)
{
	long pages = sysconf(_SC_AVPHYS_PAGES), ps = sysconf(_SC_PAGESIZE);

	return pages > 0 && ps > 0 ? (int64_t)pages * ps : -ENOSYS;
}

const struct res_backend res_backend_host = {
	.name = "host",
	.init = host_init,
	.fini = host_fini,
	.alloc = host_alloc,
	.write = host_write,
	.release = host_release,
	.free_bytes = host_free_bytes,
	.host_ptr = host_ptr,
};

/*
 * The CUDA backend is a plugin (agent/res_cuda.cu -> idn_res_cuda.so, built
 * where nvcc exists): $IDN_AGENT_CUDA_SO, else next to the executable.
 */
const struct res_backend *res_backend_cuda(void)
{
	const struct res_backend *(*get)(void);
	const char *env = getenv("IDN_AGENT_CUDA_SO");
	char path[PATH_MAX];
	void *lib;
	ssize_t n;

	if (env && *env) {
		snprintf(path, sizeof(path), "%s", env);
	} else {
		n = readlink("/proc/self/exe", path, sizeof(path) - 32);
		if (n <= 0)
			return NULL;
		path[n] = 0;
		if (strrchr(path, '/'))
			strcpy(strrchr(path, '/') + 1, "idn_res_cuda.so");
	}
	lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		return NULL;
	get = (const struct res_backend *(*)(void))dlsym(lib, "idn_res_cuda_backend");
	return get ? get() : NULL;
}

/* ---- SHA-256: libcrypto (SHA instructions) when present, else libsodium - */

static struct {
	void *(*ctx_new)(void);
	void (*ctx_free)(void *);
	const void *(*sha256)(void);
	int (*init)(void *, const void *, void *);
	int (*update)(void *, const void *, size_t);
	int (*final)(void *, unsigned char *, unsigned int *);
} ossl;
static pthread_once_t ossl_once = PTHREAD_ONCE_INIT;

static void ossl_load(void)
{
	void *lib = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);

	if (!lib)
		lib = dlopen("libcrypto.so", RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		return;
	*(void **)&ossl.ctx_new = dlsym(lib, "EVP_MD_CTX_new");
	*(void **)&ossl.ctx_free = dlsym(lib, "EVP_MD_CTX_free");
	*(void **)&ossl.sha256 = dlsym(lib, "EVP_sha256");
	*(void **)&ossl.init = dlsym(lib, "EVP_DigestInit_ex");
	*(void **)&ossl.update = dlsym(lib, "EVP_DigestUpdate");
	*(void **)&ossl.final = dlsym(lib, "EVP_DigestFinal_ex");
	if (!ossl.ctx_new || !ossl.ctx_free || !ossl.sha256 || !ossl.init ||
	    !ossl.update || !ossl.final)
		ossl.ctx_new = NULL;	/* not usable: libsodium */
}

struct sha {
	void *evp;			/* libcrypto context, or NULL: sodium */
	crypto_hash_sha256_state st;
};

static void sha_init(struct sha *h)
{
	pthread_once(&ossl_once, ossl_load);
	h->evp = ossl.ctx_new ? ossl.ctx_new() : NULL;
	if (h->evp && ossl.init(h->evp, ossl.sha256(), NULL) != 1) {
		ossl.ctx_free(h->evp);
		h->evp = NULL;
	}
	crypto_hash_sha256_init(&h->st);
}

static void sha_update(struct sha *h, const void *p, size_t n)
{
	if (h->evp)
		ossl.update(h->evp, p, n);
	else
		crypto_hash_sha256_update(&h->st, p, n);
}

static void sha_final(struct sha *h, uint8_t out[32])
{
	unsigned int len = 32;

	if (h->evp) {
		ossl.final(h->evp, out, &len);
		ossl.ctx_free(h->evp);
		h->evp = NULL;
	} else {
		crypto_hash_sha256_final(&h->st, out);
	}
}

/* "libcrypto" or "libsodium": which SHA-256 loads use (res_json) */
static const char *sha_impl(void)
{
	pthread_once(&ossl_once, ossl_load);
	return ossl.ctx_new ? "libcrypto" : "libsodium";
}

/*
 * The hasher follows the reader: the reader publishes how many bytes of
 * the destination are final (ready), the hasher hashes up to there.
 */
struct hasher {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const uint8_t *base;
	uint64_t ready, done;
	bool end;
	struct sha sha;
};

static void *hasher_run(void *arg)
{
	struct hasher *hs = arg;
	uint64_t upto;

	for (;;) {
		pthread_mutex_lock(&hs->mu);
		while (hs->ready == hs->done && !hs->end)
			pthread_cond_wait(&hs->cv, &hs->mu);
		upto = hs->ready;
		if (upto == hs->done && hs->end) {
			pthread_mutex_unlock(&hs->mu);
			return NULL;
		}
		pthread_mutex_unlock(&hs->mu);
		sha_update(&hs->sha, hs->base + hs->done, upto - hs->done);
		hs->done = upto;	/* only this thread writes done */
	}
}

static void hasher_publish(struct hasher *hs, uint64_t ready, bool end)
{
	pthread_mutex_lock(&hs->mu);
	hs->ready = ready;
	hs->end |= end;
	pthread_cond_signal(&hs->cv);
	pthread_mutex_unlock(&hs->mu);
}

/*
 * Parallel direct reads (no digest to compute): up to RES_READERS threads,
 * the caller one of them, take 8 MiB chunks in order and pread() each
 * straight into the destination. With a digest the hash (one stream, in
 * order) is the bound, and one reader with the hasher behind it is best.
 */
#define RES_READERS 4

struct preader {
	struct res_artifact *a;
	uint8_t *dst;
	int fd;
	uint64_t nchunks, next;		/* next: atomic */
	int err;			/* first error, atomic */
};

static void *preader_run(void *arg)
{
	struct preader *p = arg;
	uint64_t size = p->a->size;

	while (!__atomic_load_n(&p->err, __ATOMIC_RELAXED)) {
		uint64_t k = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
		uint64_t off = k * RES_CHUNK, end;
		int err = 0;

		if (k >= p->nchunks)
			break;
		end = size - off < RES_CHUNK ? size : off + RES_CHUNK;
		while (off < end) {
			ssize_t n = pread(p->fd, p->dst + off, end - off, off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				err = n < 0 ? -errno : -EIO;	/* file shrank under us */
				break;
			}
			off += n;
			__atomic_add_fetch(&p->a->loaded, n, __ATOMIC_RELAXED);
		}
		if (err) {
			__atomic_compare_exchange_n(&p->err, &(int){ 0 }, err, false,
						    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
			break;
		}
	}
	return NULL;
}

/* 0: done, the outcome in *errp; -EAGAIN: one CPU or one chunk, read sequentially */
static int load_parallel(struct res_artifact *a, int fd, uint8_t *dst, int *errp)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct preader p = { .a = a, .dst = dst, .fd = fd };
	pthread_t th[RES_READERS];
	int nth = 0, want;

	p.nchunks = (a->size + RES_CHUNK - 1) / RES_CHUNK;
	want = cpus < RES_READERS ? (int)cpus : RES_READERS;
	if (want > (int)p.nchunks)
		want = p.nchunks;
	if (want < 2)
		return -EAGAIN;
	while (nth < want - 1 && !pthread_create(&th[nth], NULL, preader_run, &p))
		nth++;
	preader_run(&p);
	while (nth)
		pthread_join(th[--nth], NULL);
	*errp = p.err;
	return 0;
}

/*
 * Read size bytes of fd into the artifact's memory, hashing them into
 * got when hash is set. Direct (host_ptr): read into the final memory;
 * without a digest by several threads where there are CPUs for them,
 * with one by one reader and a hasher thread behind it (inline when the
 * thread cannot start). Else: a bounce buffer, hashed, then written to
 * the backend.
 */
static int load_bytes(struct residency *r, struct res_artifact *a, int fd, bool hash,
		      uint8_t got[32])
{
	uint8_t *dst = r->be->host_ptr ? r->be->host_ptr(r->ctx, a->h) : NULL;
	struct hasher hs = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	uint64_t off = 0;
	uint8_t *buf = NULL;
	pthread_t th;
	bool thread = false;
	int err = 0;

	sha_init(&hs.sha);
	if (dst) {
		hs.base = dst;
		thread = hash && a->size > RES_CHUNK &&
			 !pthread_create(&th, NULL, hasher_run, &hs);
	} else {
		buf = malloc(RES_CHUNK);
		if (!buf)
			err = -ENOMEM;
	}
	if (dst && !hash && !load_parallel(a, fd, dst, &err))
		off = a->size;		/* done, or failed (err): not the loop below */
	while (!err && off < a->size) {
		size_t want_n = a->size - off < RES_CHUNK ? a->size - off : RES_CHUNK;
		ssize_t n = read(fd, dst ? dst + off : buf, want_n);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;	/* file shrank under us */
			break;
		}
		if (!dst) {
			if (hash)
				sha_update(&hs.sha, buf, n);
			err = r->be->write(r->ctx, a->h, off, buf, n);
		} else if (thread) {
			hasher_publish(&hs, off + n, false);
		} else if (hash) {
			sha_update(&hs.sha, dst + off, n);
		}
		off += n;
		__atomic_store_n(&a->loaded, off, __ATOMIC_RELAXED);
	}
	if (thread) {
		hasher_publish(&hs, off, true);
		pthread_join(th, NULL);
	}
	free(buf);
	sha_final(&hs.sha, got);
	pthread_mutex_destroy(&hs.mu);
	pthread_cond_destroy(&hs.cv);
	return err;
}

/* ---- manager ---------------------------------------------------------- */

int res_init(struct residency *r, const struct res_backend *be, uint64_t budget)
{
	int err;

	memset(r, 0, sizeof(*r));
	if (sodium_init() < 0)
		return -EIO;
	r->be = be;
	r->budget = budget;
	err = be->init(&r->ctx);
	if (err)
		return err;
	pthread_mutex_init(&r->mu, NULL);
	return 0;
}

void res_fini(struct residency *r)
{
	struct res_artifact *a, *n;

	if (!r->be)
		return;
	for (a = r->head; a; a = n) {
		n = a->next;
		if (a->h)
			r->be->release(r->ctx, a->h, a->size);
		free(a);
	}
	r->be->fini(r->ctx);
	pthread_mutex_destroy(&r->mu);
	r->be = NULL;
}

static struct res_artifact *find(struct residency *r, const char *name)
{
	for (struct res_artifact *a = r->head; a; a = a->next)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

static void unlink_art(struct residency *r, struct res_artifact *a)
{
	struct res_artifact **pp = &r->head;

	while (*pp && *pp != a)
		pp = &(*pp)->next;
	if (*pp)
		*pp = a->next;
}

static int parse_hex32(const char *s, uint8_t out[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned int v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = v;
	}
	return strlen(s) >= 64 && (s[64] == 0 || s[64] == ' ' || s[64] == '\n') ? 0 : -EINVAL;
}

int res_open_beneath(const char *dir, const char *path)
{
	char buf[PATH_MAX], *save = NULL, *comp, *next;
	size_t dl = strlen(dir);
	int dfd, fd = -1;
	struct stat st;

	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	if (path[0] == '/') {	/* absolute: must name a path under dir */
		if (strncmp(path, dir, dl) || path[dl] != '/')
			return -EPERM;
		path += dl + 1;
	}
	if (strlen(path) >= sizeof(buf) || !*path)
		return -EPERM;
	strcpy(buf, path);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -EPERM;
	comp = strtok_r(buf, "/", &save);
	while (comp) {
		next = strtok_r(NULL, "/", &save);
		if (!strcmp(comp, "..") || !strcmp(comp, "."))
			break;
		/* O_NOFOLLOW: a symlink component fails (ELOOP), the last one too */
		fd = openat(dfd, comp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
			    (next ? O_DIRECTORY : 0));
		close(dfd);
		dfd = -1;
		if (fd < 0 || !next)
			break;
		dfd = fd;
		fd = -1;
		comp = next;
	}
	if (dfd >= 0)
		close(dfd);
	if (fd >= 0 && (fstat(fd, &st) || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0) {		/* regular: blocking reads from here on */
		int fl = fcntl(fd, F_GETFL);

		if (fl >= 0)
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	return fd >= 0 ? fd : -EPERM;
}

/* the expected digest: from the order, else "<path>.sha256" (sha256sum format) */
static int expected_digest(const struct res_order *o, uint8_t out[32], bool *have)
{
	char p[300], line[160];
	FILE *f;
	int err;

	*have = false;
	if (o->sha256_hex) {
		*have = true;
		return parse_hex32(o->sha256_hex, out);
	}
	snprintf(p, sizeof(p), "%s.sha256", o->path);
	if (o->dir) {	/* confined like the artifact; none readable there = none */
		int fd = res_open_beneath(o->dir, p);

		f = fd >= 0 ? fdopen(fd, "r") : NULL;
		if (!f) {
			if (fd >= 0)
				close(fd);
			return 0;
		}
	} else {
		f = fopen(p, "re");
	}
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	err = fgets(line, sizeof(line), f) ? parse_hex32(line, out) : -EBADMSG;
	fclose(f);
	*have = true;
	return err == -EINVAL ? -EBADMSG : err;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= RES_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

int res_load(struct residency *r, const struct res_order *o)
{
	uint8_t want[32], got[32] = { 0 };
	struct res_artifact *a, *v, *victims[64];
	int nv = 0, fd, err = 0;
	bool have_digest;
	struct stat st;
	uint64_t need;

	if (!o->name || !o->path || !valid_name(o->name) || strlen(o->path) >= sizeof(a->path))
		return -EINVAL;
	/* confined: the artifact first, so nothing outside is even looked for */
	fd = o->dir ? res_open_beneath(o->dir, o->path) : open(o->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return o->dir ? fd : -errno;
	err = expected_digest(o, want, &have_digest);
	if (err) {
		close(fd);
		return err;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		close(fd);
		return -ENOMEM;
	}
	snprintf(a->name, sizeof(a->name), "%s", o->name);
	snprintf(a->path, sizeof(a->path), "%s", o->path);
	a->cap = o->cap;
	a->size = st.st_size;
	a->state = RES_LOADING;

	/* 1. reserve */
	pthread_mutex_lock(&r->mu);
	if (find(r, o->name)) {
		err = -EEXIST;
	} else if (a->size > r->budget) {
		err = -ENOSPC;
	} else {
		need = r->used + a->size > r->budget ? r->used + a->size - r->budget : 0;
		while (need && o->evict_lru && nv < 64) {
			struct res_artifact *lru = NULL;

			for (v = r->head; v; v = v->next)
				if (v->state == RES_READY && (!lru || v->last_use < lru->last_use))
					lru = v;
			if (!lru)
				break;
			lru->state = RES_EVICTING;
			victims[nv++] = lru;
			need = lru->size >= need ? 0 : need - lru->size;
		}
		if (need) {
			err = -ENOSPC;
			while (nv)
				victims[--nv]->state = RES_READY;
		} else {
			r->used += a->size;
			a->next = r->head;
			r->head = a;
		}
	}
	pthread_mutex_unlock(&r->mu);
	if (err) {
		free(a);
		close(fd);
		return err;
	}

	/* 2. load outside the lock */
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	err = r->be->alloc(r->ctx, a->size, &a->h);
	if (!err)
		err = load_bytes(r, a, fd, have_digest, got);
	close(fd);
	if (!err && have_digest && memcmp(got, want, 32))
		err = -EBADMSG;

	/*
	 * 3. commit or roll back. The artifact is listed (GET /v1/residency)
	 * since step 1: its digest and "verified" change only here, under the
	 * lock, and only once the digest was checked and matched.
	 */
	pthread_mutex_lock(&r->mu);
	if (!err) {
		memcpy(a->sha256, got, 32);
		a->verified = have_digest;
	}
	if (err) {
		unlink_art(r, a);
		r->used -= a->size;
		while (nv)
			victims[--nv]->state = RES_READY;
		r->load_failures++;
	} else {
		while (nv) {
			v = victims[--nv];
			unlink_art(r, v);
			r->used -= v->size;
			r->be->release(r->ctx, v->h, v->size);
			free(v);
			r->evictions++;
		}
		a->state = RES_READY;
		a->last_use = ++r->tick;
		r->loads++;
	}
	pthread_mutex_unlock(&r->mu);
	if (err) {
		if (a->h)
			r->be->release(r->ctx, a->h, a->size);
		free(a);
	}
	return err;
}

int res_evict(struct residency *r, const char *name)
{
	struct res_artifact *a;
	int err = 0;

	pthread_mutex_lock(&r->mu);
	a = find(r, name);
	if (!a)
		err = -ENOENT;
	else if (a->state != RES_READY)
		err = -EBUSY;
	else {
		unlink_art(r, a);
		r->used -= a->size;
		r->evictions++;
	}
	pthread_mutex_unlock(&r->mu);
	if (!err) {
		r->be->release(r->ctx, a->h, a->size);
		free(a);
	}
	return err;
}

static const char *state_name(enum res_state s)
{
	return s == RES_LOADING ? "loading" : s == RES_READY ? "ready" : "evicting";
}

struct json_object *res_json(struct residency *r)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	int64_t fb = r->be->free_bytes(r->ctx);
	char hex[65];

	pthread_mutex_lock(&r->mu);
	json_object_object_add(o, "backend", json_object_new_string(r->be->name));
	json_object_object_add(o, "sha256_impl", json_object_new_string(sha_impl()));
	json_object_object_add(o, "budget", json_object_new_int64(r->budget));
	json_object_object_add(o, "used", json_object_new_int64(r->used));
	json_object_object_add(o, "loads", json_object_new_int64(r->loads));
	json_object_object_add(o, "load_failures", json_object_new_int64(r->load_failures));
	json_object_object_add(o, "evictions", json_object_new_int64(r->evictions));
	if (fb >= 0)
		json_object_object_add(o, "device_free", json_object_new_int64(fb));
	for (struct res_artifact *a = r->head; a; a = a->next) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "name", json_object_new_string(a->name));
		json_object_object_add(e, "path", json_object_new_string(a->path));
		json_object_object_add(e, "cap", json_object_new_int64(a->cap));
		json_object_object_add(e, "size", json_object_new_int64(a->size));
		json_object_object_add(e, "loaded", json_object_new_int64(
			__atomic_load_n(&a->loaded, __ATOMIC_RELAXED)));
		json_object_object_add(e, "state", json_object_new_string(state_name(a->state)));
		json_object_object_add(e, "verified", json_object_new_boolean(a->verified));
		if (a->state == RES_READY && a->verified) {
			sodium_bin2hex(hex, sizeof(hex), a->sha256, 32);
			json_object_object_add(e, "sha256", json_object_new_string(hex));
		}
		json_object_array_add(arr, e);
	}
	pthread_mutex_unlock(&r->mu);
	json_object_object_add(o, "artifacts", arr);
	return o;
}

struct json_object *res_resident_caps(struct residency *r)
{
	json_object *arr = json_object_new_array();

	pthread_mutex_lock(&r->mu);
	for (struct res_artifact *a = r->head; a; a = a->next) {
		bool dup = false;

		if (a->state != RES_READY || !a->cap)
			continue;
		for (struct res_artifact *b = r->head; b != a; b = b->next)
			dup |= b->state == RES_READY && b->cap == a->cap;
		if (!dup)
			json_object_array_add(arr, json_object_new_int64(a->cap));
	}
	pthread_mutex_unlock(&r->mu);
	return arr;
}

bool res_cap_digest(struct residency *r, uint32_t cap, uint8_t out[32])
{
	bool found = false;

	pthread_mutex_lock(&r->mu);
	for (struct res_artifact *a = r->head; a && !found; a = a->next)
		if (a->state == RES_READY && a->cap == cap && cap && a->verified) {
			memcpy(out, a->sha256, 32);
			found = true;
		}
	pthread_mutex_unlock(&r->mu);
	return found;
}
