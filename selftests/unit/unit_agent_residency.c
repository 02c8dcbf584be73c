// SPDX-License-Identifier: GPL-2.0
/*
 * unit_agent_residency.c - the residency manager with the host backend:
 * real artifact files load under a budget with their bytes intact; over
 * budget is refused, or makes room by evicting the least recently loaded
 * when allowed; a corrupt (digest mismatch), missing or duplicate artifact
 * is refused and rolls back completely (budget, list, would-be victims).
 * Confinement (--artifact-dir, res_open_beneath): a regular file under the
 * directory opens, by absolute or relative path; "..", ".", a symlinked
 * file or directory, a FIFO (without blocking), a directory, a path outside
 * and a missing file are all the same -EPERM; an order with .dir set loads
 * only what is under it.
 */
#include <sys/stat.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "agent.h"
#include "tap.h"

static char dir[] = "/tmp/idn-unit-res.XXXXXX";
static char path[4][300];

static void mkfile(int i, size_t size, bool sidecar)
{
	uint8_t *b = malloc(size), d[32];
	char hex[65], sp[320];
	FILE *f;

	for (size_t j = 0; j < size; j++)
		b[j] = (uint8_t)(j * 31 + i);
	snprintf(path[i], sizeof(path[i]), "%s/a%d.bin", dir, i);
	f = fopen(path[i], "w");
	fwrite(b, 1, size, f);
	fclose(f);
	if (sidecar) {
		crypto_hash_sha256(d, b, size);
		sodium_bin2hex(hex, sizeof(hex), d, 32);
		snprintf(sp, sizeof(sp), "%s.sha256", path[i]);
		f = fopen(sp, "w");
		fprintf(f, "%s  a%d.bin\n", hex, i);
		fclose(f);
	}
	free(b);
}

static struct res_artifact *art(struct residency *r, const char *name)
{
	for (struct res_artifact *a = r->head; a; a = a->next)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

static int count(struct residency *r)
{
	int n = 0;

	for (struct res_artifact *a = r->head; a; a = a->next)
		n++;
	return n;
}

static void test_budget_and_rollback(void)
{
	struct residency r;
	struct res_order o = { 0 };
	struct res_artifact *a;
	uint8_t *want;
	FILE *f;
	json_object *j;

	if (!ASSERT_OK(res_init(&r, &res_backend_host, 3 << 20), "init"))
		return;
	o.name = "w0"; o.path = path[0];
	ASSERT_OK(res_load(&r, &o), "load 1 MiB");
	o.name = "w1"; o.path = path[1]; o.cap = 0x700;
	ASSERT_OK(res_load(&r, &o), "load 2 MiB (sidecar digest)");
	ASSERT_EQ(r.used, 3 << 20, "budget full");
	a = art(&r, "w1");
	want = malloc(2 << 20);
	f = fopen(path[1], "r");
	ASSERT_EQ(fread(want, 1, 2 << 20, f), 2 << 20, "read back");
	fclose(f);
	ASSERT_TRUE(a && a->state == RES_READY && !memcmp(a->h, want, 2 << 20),
		    "resident bytes equal the file");
	free(want);

	o.name = "w2"; o.path = path[2]; o.cap = 0;
	ASSERT_EQ(res_load(&r, &o), -ENOSPC, "over budget: refused");
	ASSERT_EQ(count(&r), 2, "nothing added");
	ASSERT_EQ(r.used, 3 << 20, "used unchanged");

	/* corrupt: wrong digest in the order; with eviction allowed the chosen
	 * victim must survive the rollback */
	o.sha256_hex = "00000000000000000000000000000000000000000000000000000000000000ff";
	o.evict_lru = true;
	ASSERT_EQ(res_load(&r, &o), -EBADMSG, "corrupt artifact refused");
	ASSERT_EQ(count(&r), 2, "no half state");
	ASSERT_EQ(r.used, 3 << 20, "reservation returned");
	ASSERT_TRUE(art(&r, "w0") && art(&r, "w0")->state == RES_READY, "victim back to ready");
	ASSERT_EQ(r.load_failures, 1, "failure counted");

	o.name = "w2"; o.path = path[2]; o.sha256_hex = NULL; o.evict_lru = true;
	ASSERT_OK(res_load(&r, &o), "evicting the LRU makes room");
	ASSERT_TRUE(!art(&r, "w0"), "w0 (least recent) evicted");
	ASSERT_TRUE(art(&r, "w1") && art(&r, "w2"), "w1, w2 resident");
	ASSERT_EQ(r.used, 3 << 20, "budget held");

	o.name = "w9"; o.path = "/nonexistent/idn/artifact.bin";
	ASSERT_EQ(res_load(&r, &o), -ENOENT, "missing artifact");
	o.name = "w1"; o.path = path[1];
	ASSERT_EQ(res_load(&r, &o), -EEXIST, "duplicate name");
	o.name = "../x"; o.path = path[1];
	ASSERT_EQ(res_load(&r, &o), -EINVAL, "bad name");

	ASSERT_OK(res_evict(&r, "w1"), "evict");
	ASSERT_EQ(res_evict(&r, "w1"), -ENOENT, "evict twice");
	ASSERT_EQ(r.used, 1 << 20, "used after evict");
	/* corrupt sidecar: file changed after its digest was written */
	o.name = "w3"; o.path = path[3]; o.sha256_hex = NULL; o.evict_lru = false;
	ASSERT_EQ(res_load(&r, &o), -EBADMSG, "file differs from its .sha256");
	ASSERT_EQ(r.used, 1 << 20, "rolled back");
	ASSERT_EQ(count(&r), 1, "only w2");
	j = res_json(&r);
	ASSERT_TRUE(strstr(json_object_to_json_string(j), "\"w2\""), "json lists w2");
	json_object_put(j);
	j = res_resident_caps(&r);
	ASSERT_EQ(json_object_array_length(j), 0, "w2 has no cap");
	json_object_put(j);
	res_fini(&r);
}

/*
 * Artifacts of several 8 MiB chunks (the last one partial): without a
 * digest the chunks are read by parallel readers, with one by a reader and
 * the hasher thread behind it; both must land byte for byte, and the
 * digest be checked (and refused when wrong).
 */
static void test_large(void)
{
	size_t size = (41U << 20) + 123;
	uint8_t *b = malloc(size), d[32];
	char p[320], hex[65];
	struct residency r;
	struct res_order o = { 0 };
	struct res_artifact *a;
	FILE *f;

	if (!ASSERT_TRUE(b, "alloc"))
		return;
	for (size_t j = 0; j < size; j++)
		b[j] = (uint8_t)(j * 7 + (j >> 20));
	snprintf(p, sizeof(p), "%s/large.bin", dir);
	f = fopen(p, "w");
	ASSERT_EQ(fwrite(b, 1, size, f), size, "write");
	fclose(f);
	crypto_hash_sha256(d, b, size);
	sodium_bin2hex(hex, sizeof(hex), d, 32);
	if (!ASSERT_OK(res_init(&r, &res_backend_host, 1ULL << 30), "init"))
		goto out;
	o.name = "big"; o.path = p;
	ASSERT_OK(res_load(&r, &o), "load, no digest (parallel readers)");
	a = art(&r, "big");
	ASSERT_TRUE(a && !memcmp(a->h, b, size), "bytes equal the file");
	ASSERT_TRUE(a && !a->verified && a->loaded == size, "not verified, all loaded");
	ASSERT_OK(res_evict(&r, "big"), "evict");
	o.sha256_hex = hex;
	ASSERT_OK(res_load(&r, &o), "load with digest (hasher thread)");
	a = art(&r, "big");
	ASSERT_TRUE(a && !memcmp(a->h, b, size) && a->verified && !memcmp(a->sha256, d, 32),
		    "bytes equal, digest checked");
	ASSERT_OK(res_evict(&r, "big"), "evict");
	hex[10] = hex[10] == '0' ? '1' : '0';
	ASSERT_EQ(res_load(&r, &o), -EBADMSG, "wrong digest refused");
	ASSERT_EQ(r.used, 0, "rolled back");
	res_fini(&r);
out:
	unlink(p);
	free(b);
}

static void test_beneath(void)
{
	char sub[320], p[400], out[320];
	struct residency r;
	int fd;
	const char *bad[] = { "../x", "a0.bin/..", "./a0.bin", "link.bin", "linkdir/a1.bin",
			      "fifo", "sub", "missing.bin", "/etc/passwd", "", "sub/../a0.bin",
			      NULL };

	snprintf(sub, sizeof(sub), "%s/sub", dir);
	mkdir(sub, 0700);
	snprintf(p, sizeof(p), "%s/sub/in.bin", dir);
	close(open(p, O_WRONLY | O_CREAT, 0600));
	snprintf(out, sizeof(out), "%s.outside", dir);
	mkdir(out, 0700);
	snprintf(p, sizeof(p), "%s/link.bin", dir);
	symlink(path[0], p);	/* even a link to a file inside is refused */
	snprintf(p, sizeof(p), "%s/linkdir", dir);
	symlink(dir, p);
	snprintf(p, sizeof(p), "%s/fifo", dir);
	mkfifo(p, 0600);

	fd = res_open_beneath(dir, path[0]);
	ASSERT_TRUE(fd >= 0, "absolute path under the directory");
	close(fd);
	fd = res_open_beneath(dir, "sub/in.bin");
	ASSERT_TRUE(fd >= 0, "relative path in a subdirectory");
	close(fd);
	snprintf(p, sizeof(p), "%s/", dir);
	fd = res_open_beneath(p, "a0.bin");
	ASSERT_TRUE(fd >= 0, "directory given with a trailing slash");
	close(fd);
	for (int i = 0; bad[i]; i++)
		ASSERT_EQ(res_open_beneath(dir, bad[i]), -EPERM, bad[i]);
	snprintf(p, sizeof(p), "%s/../%s", dir, strrchr(dir, '/') + 1);
	ASSERT_EQ(res_open_beneath(dir, p), -EPERM, "absolute path with .. back in");
	ASSERT_EQ(res_open_beneath(out, path[0]), -EPERM, "a file of another directory");

	if (!ASSERT_OK(res_init(&r, &res_backend_host, 8 << 20), "init"))
		return;
	ASSERT_EQ(res_load(&r, &(struct res_order){ .name = "x", .path = "/etc/passwd",
						     .dir = dir }), -EPERM, "order outside");
	ASSERT_EQ(res_load(&r, &(struct res_order){ .name = "y", .path = "a0.bin",
						     .dir = dir }), 0, "order inside");
	ASSERT_EQ(count(&r), 1, "one resident");
	res_fini(&r);
	snprintf(p, sizeof(p), "%s/link.bin", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/linkdir", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/fifo", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/sub/in.bin", dir);
	unlink(p);
	rmdir(sub);
	rmdir(out);
}

/*
 * "verified" is what GET /v1/residency shows: never true for an artifact
 * whose digest was not checked yet, nor for one that fails the check. A
 * reader lists the artifacts (res_json, under the lock) in a loop while
 * an artifact with a wrong digest is loaded again and again; every listing
 * of it must say verified: false. (It was set outside the lock, before the
 * digest comparison: a listing in between showed verified: true.)
 */
static struct residency race_r;
static volatile int race_stop, race_bad, race_seen;

static void *race_reader(void *arg)
{
	(void)arg;
	while (!race_stop) {
		json_object *j = res_json(&race_r), *arr, *e, *v;

		if (json_object_object_get_ex(j, "artifacts", &arr))
			for (size_t i = 0; i < json_object_array_length(arr); i++) {
				e = json_object_array_get_idx(arr, i);
				if (!json_object_object_get_ex(e, "name", &v) ||
				    strcmp(json_object_get_string(v), "bad"))
					continue;
				race_seen++;
				if (json_object_object_get_ex(e, "verified", &v) &&
				    json_object_get_boolean(v))
					race_bad++;
			}
		json_object_put(j);
	}
	return NULL;
}

static void test_verified_only_after_check(void)
{
	struct res_order o = { .name = "bad", .path = path[3] };
	pthread_t th;
	int refused = 0;

	if (!ASSERT_OK(res_init(&race_r, &res_backend_host, 4 << 20), "init"))
		return;
	race_stop = race_bad = race_seen = 0;
	pthread_create(&th, NULL, race_reader, NULL);
	for (int i = 0; i < 300; i++)
		refused += res_load(&race_r, &o) == -EBADMSG;
	race_stop = 1;
	pthread_join(th, NULL);
	ASSERT_EQ(refused, 300, "every load of the corrupt artifact refused");
	ASSERT_EQ(race_bad, 0, "no listing showed it verified");
	printf("# listed while loading: %d times\n", race_seen);
	res_fini(&race_r);
}

int main(void)
{
	int fd;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	mkfile(0, 1 << 20, false);
	mkfile(1, 2 << 20, true);
	mkfile(2, 1 << 20, true);
	mkfile(3, 1 << 20, true);
	/* flip a byte of artifact 3 after its digest was taken */
	fd = open(path[3], O_WRONLY);
	pwrite(fd, "X", 1, 4096);
	close(fd);
	tap_plan(0);
	TAP_RUN(test_budget_and_rollback);
	TAP_RUN(test_large);
	TAP_RUN(test_beneath);
	TAP_RUN(test_verified_only_after_check);
	for (int i = 0; i < 4; i++) {
		char sp[320];

		unlink(path[i]);
		snprintf(sp, sizeof(sp), "%s.sha256", path[i]);
		unlink(sp);
	}
	rmdir(dir);
	return tap_done();
}
