// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_agent_body.c - libFuzzer harness for idn-agent's request bodies:
 * serve() (body accumulation under the per-endpoint limit, the json-c
 * tokener) and then the POST handler of one endpoint, chosen by
 * IDN_FUZZ_AGENT:
 *   completions  POST /v1/completions        parse_creq(), the emulator, SSE
 *   chat         POST /v1/chat/completions   the same, messages
 *   load         POST /v1/residency/load     residency_post() (management)
 *   evict        POST /v1/residency/evict
 *   kv_push      POST /v1/kv/push            kv_push() (management)
 *   lora_load    POST /v1/load_lora_adapter  emu_lora() (management)
 *   lora_unload  POST /v1/unload_lora_adapter
 * http.c is included so that its static handlers are reachable; the
 * libmicrohttpd calls a request makes are replaced by the stubs below
 * (no daemon, no sockets; a streamed answer is read to its end). The
 * agent runs the emulated engine at 1e6x, a small KV cache, a residency
 * budget of 1 MiB over a scratch --artifact-dir, a KV engine without a
 * listener and one --kv-peers entry on a closed loopback port.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../agent/http.c"

/* ---- libmicrohttpd stubs: what a request's handlers call ---- */
struct MHD_Response {
	size_t len;
	char *body;
	MHD_ContentReaderCallback crc;
	MHD_ContentReaderFreeCallback crfc;
	void *cls;
};

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer,
						     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = calloc(1, sizeof(*r));

	if (!r || !(r->body = malloc(size + 1)))
		abort();
	memcpy(r->body, buffer, size);
	r->body[size] = 0;
	r->len = size;
	if (mode == MHD_RESPMEM_MUST_FREE)
		free(buffer);
	return r;
}

struct MHD_Response *MHD_create_response_from_callback(uint64_t size, size_t block_size,
						       MHD_ContentReaderCallback crc, void *crc_cls,
						       MHD_ContentReaderFreeCallback crfc)
{
	struct MHD_Response *r = calloc(1, sizeof(*r));

	if (!r)
		abort();
	r->crc = crc;
	r->crfc = crfc;
	r->cls = crc_cls;
	return r;
}

enum MHD_Result MHD_add_response_header(struct MHD_Response *r, const char *h, const char *v)
{
	return MHD_YES;
}

/* a streamed answer is read to its end, as a client would */
static bool verbose;	/* IDN_FUZZ_VERBOSE=1: each answer on stderr */

enum MHD_Result MHD_queue_response(struct MHD_Connection *c, unsigned int code,
				   struct MHD_Response *r)
{
	if (verbose)
		fprintf(stderr, "%u %.200s\n", code, r->body ? r->body : "(stream)");
	if (r->crc) {
		char buf[16384];
		uint64_t pos = 0;

		for (;;) {
			ssize_t n = r->crc(r->cls, pos, buf, sizeof(buf));

			if (n < 0)
				break;
			pos += n;
		}
	}
	return MHD_YES;
}

void MHD_destroy_response(struct MHD_Response *r)
{
	if (r->crfc)
		r->crfc(r->cls);
	free(r->body);
	free(r);
}

const char *MHD_lookup_connection_value(struct MHD_Connection *c, enum MHD_ValueKind k,
					const char *key)
{
	return NULL;
}

static struct agent A;
static const char *url = "/v1/completions";
static bool mgmt;
static char art_file[64];

/* the scratch --artifact-dir goes at exit */
static void fz_cleanup(void)
{
	unlink(art_file);
	rmdir(A.cfg.artifact_dir);
}

static void fz_setup(void)
{
	static const struct { const char *name, *url; bool mgmt; } eps[] = {
		{ "completions", "/v1/completions", false },
		{ "chat", "/v1/chat/completions", false },
		{ "load", "/v1/residency/load", true },
		{ "evict", "/v1/residency/evict", true },
		{ "kv_push", "/v1/kv/push", true },
		{ "lora_load", "/v1/load_lora_adapter", true },
		{ "lora_unload", "/v1/unload_lora_adapter", true },
	};
	const char *ep = getenv("IDN_FUZZ_AGENT");
	char dir[] = "/tmp/idn-fuzz-agent.XXXXXX", err[256];
	struct kvx_opts o;
	FILE *f;

	verbose = getenv("IDN_FUZZ_VERBOSE");
	for (size_t i = 0; ep && i < sizeof(eps) / sizeof(eps[0]); i++)
		if (!strcmp(ep, eps[i].name)) {
			url = eps[i].url;
			mgmt = eps[i].mgmt;
		}
	agent_cfg_defaults(&A.cfg);
	A.cfg.engine = true;
	A.cfg.eng.speed = 1e6;
	A.cfg.eng.block_tokens = 16;
	A.cfg.eng.capacity_tokens = 16384;
	A.cfg.eng.kv_bytes_per_token = 64;
	snprintf(A.cfg.kv_peers, sizeof(A.cfg.kv_peers), "127.0.0.1:1");
	if (!mkdtemp(dir))
		abort();
	snprintf(A.cfg.artifact_dir, sizeof(A.cfg.artifact_dir), "%s", dir);
	snprintf(art_file, sizeof(art_file), "%s/w.bin", dir);
	f = fopen(art_file, "w");
	if (!f)
		abort();
	atexit(fz_cleanup);
	fputs("weights", f);
	fclose(f);
	if (engine_init(&A.eng, &A.cfg.eng) || engine_start(&A.eng) || state_init(&A.st) ||
	    res_init(&A.res, &res_backend_host, 1U << 20))
		abort();
	kvx_opts_defaults(&o);
	o.policy = KVX_POLICY_TCP;
	o.timeout_ms = 200;
	if (kvx_create(&A.kvx, &o, err, sizeof(err)))
		abort();
	pthread_mutex_init(&A.rc.mu, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	void *cls = NULL;
	size_t sz = 0;

	if (!A.kvx)
		fz_setup();
	/* as libmicrohttpd calls it: headers, body data, then the end */
	serve(&A, mgmt, NULL, url, "POST", NULL, &sz, &cls);
	sz = size;
	if (cls && size)
		serve(&A, mgmt, NULL, url, "POST", (const char *)data, &sz, &cls);
	sz = 0;
	if (cls)
		serve(&A, mgmt, NULL, url, "POST", NULL, &sz, &cls);
	completed(NULL, NULL, &cls, MHD_REQUEST_TERMINATED_COMPLETED_OK);
	return 0;
}
