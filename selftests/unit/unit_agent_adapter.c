// SPDX-License-Identifier: GPL-2.0
/*
 * unit_agent_adapter.c - the real-engine adapter's Prometheus parser and
 * load mapping (agent/adapter.c): vLLM text as vLLM 0.8 writes it (label
 * sets summed, KV usage the largest), SGLang's names, the emulator's
 * pending prefill tokens, malformed lines counted and skipped (never a
 * crash, never a figure from them), and what an engine that is down or
 * busy reads as (queue, saturation, KV permille, estimated pending tokens);
 * the prefill ledger of requests passed to the engine.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <linux/idn.h>

#include "agent.h"
#include "tap.h"

static const char vllm_text[] =
"# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
"# TYPE vllm:num_requests_running gauge\n"
"vllm:num_requests_running{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B\"} 3.0\n"
"vllm:num_requests_running{engine=\"1\",model_name=\"meta-llama/Llama-3.1-8B\"} 2.0\n"
"vllm:num_requests_waiting{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B\"} 7.0\n"
"vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.25\n"
"vllm:gpu_cache_usage_perc{engine=\"1\",model_name=\"m\"} 0.5\r\n"
"vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"m\"} 1000.0\n"
"vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"m\"} 400.0\n"
"vllm:prompt_tokens_total{engine=\"0\",model_name=\"m\"} 12000.0 1712345678000\n"
"vllm:generation_tokens_total{engine=\"0\",model_name=\"m\"} 3000.0\n"
"vllm:request_success_total{engine=\"0\",finished_reason=\"stop\",model_name=\"m\"} 8.0\n"
"vllm:request_success_total{engine=\"0\",finished_reason=\"length\",model_name=\"m\"} 2.0\n"
"vllm:time_to_first_token_seconds_bucket{le=\"0.001\",model_name=\"m\"} 0.0\n"
"vllm:lora_requests_info{max_lora=\"4\",running_lora_adapters=\"a,b\",waiting_lora_adapters=\"\"} 1.7e+09\n"
"  \n"
"python_gc_objects_collected_total{generation=\"0\"} 123.0\n";

static void test_vllm(void)
{
	struct adapter_metrics m;

	if (!ASSERT_EQ(adapter_parse_metrics(vllm_text, strlen(vllm_text), &m), 0, "parses"))
		return;
	ASSERT_EQ(m.malformed, 0, "no malformed line");
	ASSERT_EQ(m.lines, 14, "sample lines");
	ASSERT_EQ(m.running, 5, "running summed over engines");
	ASSERT_EQ(m.waiting, 7, "waiting");
	ASSERT_TRUE(m.kv_use == 0.5, "KV usage: the largest gauge (both names)");
	ASSERT_EQ(m.prefix_queries, 1000, "prefix queries");
	ASSERT_EQ(m.prefix_hits, 400, "prefix hits");
	ASSERT_EQ(m.prompt_tokens, 12000, "prompt tokens (with a timestamp)");
	ASSERT_EQ(m.requests, 10, "finished requests summed over reasons");
	ASSERT_TRUE(!m.sglang, "vLLM flavour");
	ASSERT_TRUE(!(m.have & ADM_PENDING), "no pending tokens from vLLM");
}

static void test_sglang(void)
{
	static const char t[] =
		"sglang:num_running_reqs{model_name=\"q\"} 4\n"
		"sglang:num_queue_reqs{model_name=\"q\"} 1\n"
		"sglang:token_usage{model_name=\"q\"} 0.125\n"
		"sglang:prompt_tokens_total{model_name=\"q\"} 900\n"
		"sglang:num_requests_total{model_name=\"q\"} 3\n";
	struct adapter_metrics m;

	ASSERT_EQ(adapter_parse_metrics(t, strlen(t), &m), 0, "parses");
	ASSERT_TRUE(m.sglang, "SGLang flavour");
	ASSERT_EQ(m.running, 4, "running");
	ASSERT_EQ(m.waiting, 1, "queue");
	ASSERT_TRUE(m.kv_use == 0.125, "token usage as KV usage");
	ASSERT_EQ(m.requests, 3, "requests");
}

static void test_malformed(void)
{
	static const char t[] =
		"vllm:num_requests_running{model_name=\"m\"} 3\n"
		"vllm:num_requests_waiting{model_name=\"m\" 5\n"		/* unclosed labels */
		"vllm:num_requests_waiting{model_name=\"a}b\\\"c\"} 2\n"	/* } and \" in a value: fine */
		"this is not prometheus\n"
		"vllm:kv_cache_usage_perc{model_name=\"m\"} banana\n"
		"vllm:num_requests_waiting -7\n"				/* negative */
		"vllm:num_requests_running NaN\n"
		"{}{}{} 1\n"
		"vllm:num_requests_running 1 12x\n"				/* bad timestamp */
		"vllm:num_requests_running\n"					/* no value */
		"\x01\x02\xff 3\n";
	struct adapter_metrics m;
	char *big;
	size_t n = 1 << 20;

	ASSERT_EQ(adapter_parse_metrics(t, strlen(t), &m), -EBADMSG, "malformed reported");
	ASSERT_EQ(m.malformed, 9, "each bad line counted");
	ASSERT_EQ(m.running, 3, "good lines still used");
	ASSERT_EQ(m.waiting, 2, "quoted } and escaped quote inside a label");
	ASSERT_TRUE(m.kv_use == 0, "no figure from a bad line");
	/* a megabyte without a newline, and a text cut in the middle */
	big = malloc(n);
	if (!ASSERT_TRUE(big, "alloc"))
		return;
	memset(big, 'x', n);
	adapter_parse_metrics(big, n, &m);
	ASSERT_EQ(m.malformed, 1, "one long line");
	adapter_parse_metrics(vllm_text, 30, &m);
	ASSERT_EQ(m.lines, 0, "cut inside a comment");
	adapter_parse_metrics(vllm_text + 110, 60, &m);
	ASSERT_TRUE(m.lines >= 1, "cut inside a sample: no crash");
	free(big);
	ASSERT_EQ(adapter_parse_metrics("", 0, &m), 0, "empty");
}

static void test_load(void)
{
	struct adapter ad;
	struct eng_load l;

	if (!ASSERT_EQ(adapter_init(&ad, "http://127.0.0.1:1/", 100, 8), 0, "init"))
		return;
	ASSERT_TRUE(!strcmp(ad.base, "http://127.0.0.1:1"), "trailing / dropped");
	adapter_load(&ad, &l);
	ASSERT_EQ(l.load, 1000, "never scraped: saturated");
	ASSERT_EQ(l.queue_depth, 0, "no queue");
	adapter_parse_metrics(vllm_text, strlen(vllm_text), &ad.m);
	ad.up = true;
	adapter_load(&ad, &l);
	ASSERT_EQ(l.running, 5, "running");
	ASSERT_EQ(l.queue_depth, 12, "queue = running + waiting");
	ASSERT_EQ(l.load, 1000, "requests wait: saturated");
	ASSERT_EQ(l.kv_use, 500, "KV permille");
	ASSERT_EQ(l.pending_tokens, 7 * 1200, "pending: waiting x mean prompt");
	ad.m.waiting = 0;
	ad.m.running = 2;
	ad.m.pending_tokens = 77;
	ad.m.have |= ADM_PENDING;
	adapter_load(&ad, &l);
	ASSERT_EQ(l.load, 250, "2 of 8 running");
	ASSERT_EQ(l.pending_tokens, 77, "the emulator's own figure wins");
	/* down: a scrape of a closed port */
	ASSERT_TRUE(adapter_scrape(&ad) < 0, "scrape of a dead engine fails");
	ASSERT_TRUE(!adapter_up(&ad) && strstr(ad.last_err, "/health"), "down, with the reason");
	ASSERT_EQ(ad.downs, 1, "one up->down");
	adapter_stop(&ad);
	ASSERT_EQ(adapter_init(&ad, "ftp://x", 100, 8), -EINVAL, "http(s) only");
}

/*
 * The prefill ledger: tokens of passed requests out until the engine's
 * prompt-token counter or their first byte says they are prefilled; the
 * agent's figure wins over the engine's estimate once it passes requests.
 */
static void test_ledger(void)
{
	struct adapter ad;
	struct eng_load l;

	if (!ASSERT_EQ(adapter_init(&ad, "http://127.0.0.1:1", 100, 8), 0, "init"))
		return;
	adapter_parse_metrics(vllm_text, strlen(vllm_text), &ad.m);
	ad.up = true;
	adapter_credit(&ad, 12000);			/* the first scrape: the base */
	adapter_load(&ad, &l);
	ASSERT_EQ(l.pending_tokens, 7 * 1200, "nothing passed: the estimate");
	adapter_pass(&ad, 1000);
	adapter_pass(&ad, 3000);
	adapter_pass(&ad, 500);
	adapter_load(&ad, &l);
	ASSERT_EQ(l.pending_tokens, 4500, "three passed, none prefilled: their tokens");
	adapter_credit(&ad, 13000);			/* the engine prefilled the first */
	adapter_load(&ad, &l);
	ASSERT_EQ(l.pending_tokens, 3500, "counter +1000: credited");
	adapter_settle(&ad, 1000, true);		/* its first byte: already credited */
	adapter_load(&ad, &l);
	ASSERT_EQ(l.pending_tokens, 3500, "settling a credited request changes nothing");
	adapter_settle(&ad, 3000, true);		/* first byte before the counter */
	adapter_load(&ad, &l);
	ASSERT_EQ(l.pending_tokens, 500, "first byte back: prefilled");
	adapter_credit(&ad, 16000);			/* the counter catches up: +3000 */
	adapter_load(&ad, &l);
	ASSERT_EQ(l.pending_tokens, 500, "the late counter is not credited to others");
	adapter_credit(&ad, 26000);			/* +10000 from requests around the agent */
	adapter_load(&ad, &l);
	ASSERT_EQ(l.pending_tokens, 0, "credit bounded by what is out");
	ASSERT_EQ(ad.led_credit, 500, "credit = out");
	adapter_settle(&ad, 500, true);
	ASSERT_EQ(ad.led_out, 0, "all settled");
	ASSERT_EQ(ad.led_credit, 0, "no credit left");
	adapter_pass(&ad, 800);
	adapter_settle(&ad, 800, false);		/* failed: never prefilled */
	adapter_credit(&ad, 26000);
	adapter_pass(&ad, 200);
	adapter_credit(&ad, 26100);
	adapter_load(&ad, &l);
	ASSERT_EQ(l.pending_tokens, 100, "a failed request leaves no debt");
	adapter_credit(&ad, 50);			/* the engine restarted */
	adapter_load(&ad, &l);
	ASSERT_EQ(l.pending_tokens, 100, "a counter going back is a new base");
	adapter_credit(&ad, 150);
	adapter_load(&ad, &l);
	ASSERT_EQ(l.pending_tokens, 0, "counted from the new base");
	adapter_settle(&ad, 5000, true);		/* more than out: clamped */
	ASSERT_EQ(ad.led_out, 0, "never below 0");
	ASSERT_EQ(ad.passed, 5, "5 passed");
	adapter_stop(&ad);
}

/* --region-net-us: the round trip from each region's router, into the
 * registration body idnd reads as region_net_us */
static void test_region_net_us(void)
{
	struct agent_profile prof = { .cpus = 1 };
	struct agent_cfg c;
	char err[256];
	char *ok[] = { "idn-agent", "--region-net-us", "4000,80000,0,95000", NULL };
	char *bad[][3] = {
		{ "idn-agent", "--region-net-us", "1,2," },
		{ "idn-agent", "--region-net-us", "-5" },
		{ "idn-agent", "--region-net-us", "10000001" },
		{ "idn-agent", "--region-net-us", "1,x" },
		{ "idn-agent", "--region-net-us", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17" },
	};
	json_object *o, *a;

	agent_cfg_defaults(&c);
	if (!ASSERT_OK(agent_cfg_parse(&c, 3, ok, err, sizeof(err)), "parsed"))
		return;
	ASSERT_TRUE(c.region_net_us[0] == 4000 && c.region_net_us[1] == 80000 &&
		    !c.region_net_us[2] && c.region_net_us[3] == 95000 && !c.region_net_us[4],
		    "per region");
	o = agent_profile_json(&prof, &c);
	ASSERT_TRUE(json_object_object_get_ex(o, "region_net_us", &a) &&
		    json_object_array_length(a) == 4 &&
		    json_object_get_int64(json_object_array_get_idx(a, 1)) == 80000,
		    "in the registration body");
	json_object_put(o);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = { bad[i][0], bad[i][1], bad[i][2], NULL };

		agent_cfg_defaults(&c);
		ASSERT_TRUE(agent_cfg_parse(&c, 3, argv, err, sizeof(err)) < 0, bad[i][2]);
	}
	agent_cfg_defaults(&c);
	o = agent_profile_json(&prof, &c);
	ASSERT_TRUE(!json_object_object_get_ex(o, "region_net_us", &a), "none: not sent");
	json_object_put(o);
}

/* --telemetry A:P,B:P: every datagram to each router (a router per region) */
static void test_tele_routers(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	struct idn_telemetry m;
	struct telemetry t;
	struct eng_load l = { .queue_depth = 3, .pending_tokens = 777 };
	socklen_t len = sizeof(sa);
	int fd[2];
	char dst[128];
	uint16_t port[2];

	for (int i = 0; i < 2; i++) {
		struct timeval tv = { .tv_sec = 2 };

		fd[i] = socket(AF_INET, SOCK_DGRAM, 0);
		sa.sin_port = 0;
		if (!ASSERT_TRUE(fd[i] >= 0 && !bind(fd[i], (void *)&sa, sizeof(sa)) &&
				 !getsockname(fd[i], (void *)&sa, &len), "listener"))
			return;
		setsockopt(fd[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		port[i] = ntohs(sa.sin_port);
	}
	snprintf(dst, sizeof(dst), "127.0.0.1:%u,127.0.0.1:%u", port[0], port[1]);
	if (!ASSERT_OK(tele_open(&t, dst, 9, "127.0.0.1", NULL), "two routers"))
		return;
	ASSERT_EQ(t.n_more, 1, "one more than the first");
	ASSERT_OK(tele_send(&t, &l, 0, 1000), "sent");
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(recv(fd[i], &m, sizeof(m), 0), (ssize_t)sizeof(m), "router got it");
		ASSERT_TRUE(ntohl(m.node) == 9 && ntohl(m.pending_tokens) == 777 &&
			    ntohl(m.seq) == t.seq, "its contents, the same sequence");
		close(fd[i]);
	}
	tele_close(&t);
	ASSERT_EQ(tele_open(&t, "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3,127.0.0.1:4,127.0.0.1:5",
			    9, NULL, NULL), -E2BIG, "at most 4 routers");
	ASSERT_TRUE(tele_open(&t, "127.0.0.1:1,nope", 9, NULL, NULL) < 0, "a bad one refused");
	ASSERT_TRUE(tele_open(&t, ",", 9, NULL, NULL) < 0, "none refused");
	ASSERT_EQ(t.fd, -1, "nothing left open");
}

int main(void)
{
	tap_plan(0);
	TAP_RUN(test_vllm);
	TAP_RUN(test_sglang);
	TAP_RUN(test_malformed);
	TAP_RUN(test_load);
	TAP_RUN(test_ledger);
	TAP_RUN(test_region_net_us);
	TAP_RUN(test_tele_routers);
	return tap_done();
}
