// SPDX-License-Identifier: GPL-2.0
/*
 * profile.c - the node's resource profile R, detected from the machine:
 * CPUs and their model (sysconf, /proc/cpuinfo), memory (/proc/meminfo),
 * GPUs through NVML, else the CUDA driver API. Both GPU libraries are
 * looked up with dlopen() at run time, so the agent builds and runs on
 * machines without them (IDN_AGENT_NO_GPU at build time turns the probe
 * off). The JSON form is what idnd's POST /v1/nodes accepts, nothing more
 * (idnd rejects unknown fields).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent.h"

static void cpu_model(char *out, size_t len)
{
	char line[256];
	FILE *f = fopen("/proc/cpuinfo", "re");

	snprintf(out, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && c) {
			c += 2;
			c[strcspn(c, "\n")] = 0;
			snprintf(out, len, "%s", c);
			break;
		}
	}
	fclose(f);
}

static void meminfo(uint64_t *total, uint64_t *avail)
{
	char line[256];
	unsigned long long v;
	FILE *f = fopen("/proc/meminfo", "re");

	*total = *avail = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %llu kB", &v) == 1)
			*total = v * 1024;
		else if (sscanf(line, "MemAvailable: %llu kB", &v) == 1)
			*avail = v * 1024;
	}
	fclose(f);
}

#ifndef IDN_AGENT_NO_GPU
/* NVML: the few entry points we use, declared here (no header needed) */
struct nvml_mem { unsigned long long total, free, used; };

static int probe_nvml(struct agent_profile *p)
{
	int (*init)(void), (*shutdown)(void), (*count)(unsigned int *);
	int (*handle)(unsigned int, void **), (*name)(void *, char *, unsigned int);
	int (*mem)(void *, struct nvml_mem *);
	void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
	unsigned int n = 0;

	if (!lib)
		return -ENOENT;
	init = dlsym(lib, "nvmlInit_v2");
	shutdown = dlsym(lib, "nvmlShutdown");
	count = dlsym(lib, "nvmlDeviceGetCount_v2");
	handle = dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
	name = dlsym(lib, "nvmlDeviceGetName");
	mem = dlsym(lib, "nvmlDeviceGetMemoryInfo");
	if (!init || !shutdown || !count || !handle || !name || !mem || init()) {
		dlclose(lib);
		return -ENOENT;
	}
	if (count(&n) == 0) {
		for (unsigned int i = 0; i < n && p->n_gpus < AGENT_MAX_GPUS; i++) {
			struct agent_gpu *g = &p->gpu[p->n_gpus];
			struct nvml_mem m;
			void *h;

			if (handle(i, &h) || name(h, g->name, sizeof(g->name)) || mem(h, &m))
				continue;
			g->mem_total = m.total;
			g->mem_free = m.free;
			p->n_gpus++;
		}
	}
	shutdown();
	dlclose(lib);
	snprintf(p->gpu_source, sizeof(p->gpu_source), "nvml");
	return 0;
}

static int probe_cuda(struct agent_profile *p)
{
	int (*init)(unsigned int), (*count)(int *), (*get)(int *, int);
	int (*name)(char *, int, int), (*total)(size_t *, int);
	void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	int n = 0;

	if (!lib)
		return -ENOENT;
	init = dlsym(lib, "cuInit");
	count = dlsym(lib, "cuDeviceGetCount");
	get = dlsym(lib, "cuDeviceGet");
	name = dlsym(lib, "cuDeviceGetName");
	total = dlsym(lib, "cuDeviceTotalMem_v2");
	if (!init || !count || !get || !name || !total || init(0) || count(&n)) {
		dlclose(lib);
		return -ENOENT;
	}
	for (int i = 0; i < n && p->n_gpus < AGENT_MAX_GPUS; i++) {
		struct agent_gpu *g = &p->gpu[p->n_gpus];
		size_t t = 0;
		int dev;

		if (get(&dev, i) || name(g->name, sizeof(g->name), dev) || total(&t, dev))
			continue;
		g->mem_total = t;
		p->n_gpus++;
	}
	dlclose(lib);
	snprintf(p->gpu_source, sizeof(p->gpu_source), "cuda");
	return 0;
}
#endif

int agent_profile_detect(struct agent_profile *p)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	memset(p, 0, sizeof(*p));
	p->cpus = n > 0 ? n : 1;
	cpu_model(p->cpu_model, sizeof(p->cpu_model));
	meminfo(&p->mem_total, &p->mem_avail);
	snprintf(p->gpu_source, sizeof(p->gpu_source), "none");
#ifndef IDN_AGENT_NO_GPU
	if (probe_nvml(p) && probe_cuda(p))
		snprintf(p->gpu_source, sizeof(p->gpu_source), "none");
#endif
	return 0;
}

json_object *agent_profile_json(const struct agent_profile *p, const struct agent_cfg *c)
{
	json_object *o = json_object_new_object();
	uint64_t mem = 0;
	char acc[32];	/* idnd keeps 31 characters */

	if (p->n_gpus) {
		for (uint32_t i = 0; i < p->n_gpus; i++)
			mem += p->gpu[i].mem_total;
		snprintf(acc, sizeof(acc), "%.18s x%u", p->gpu[0].name, p->n_gpus % 1000);
	} else {
		mem = p->mem_total;
		snprintf(acc, sizeof(acc), "cpu x%u", p->cpus);
	}
	json_object_object_add(o, "id", json_object_new_int64(c->node_id));
	if (c->addr4[0])
		json_object_object_add(o, "addr4", json_object_new_string(c->addr4));
	if (c->addr6[0])
		json_object_object_add(o, "addr6", json_object_new_string(c->addr6));
	json_object_object_add(o, "mem_gb", json_object_new_double(
		(double)(mem >> 20) / 1024.0));
	json_object_object_add(o, "region", json_object_new_int(c->region));
	json_object_object_add(o, "domain", json_object_new_int(c->domain));
	json_object_object_add(o, "net_us", json_object_new_int64(c->net_us));
	for (int last = 15; last >= 0; last--) {	/* per-region RTT, up to the last known */
		json_object *a;

		if (!c->region_net_us[last])
			continue;
		a = json_object_new_array();
		for (int r = 0; r <= last; r++)
			json_object_array_add(a, json_object_new_int64(c->region_net_us[r]));
		json_object_object_add(o, "region_net_us", a);
		break;
	}
	json_object_object_add(o, "trust", json_object_new_int(c->trust));
	json_object_object_add(o, "confidential", json_object_new_boolean(c->confidential));
	json_object_object_add(o, "runtime", json_object_new_int(c->runtime));
	json_object_object_add(o, "accelerator", json_object_new_string(acc));
	/* prefill cost per token: what T_queue multiplies pending tokens by */
	json_object_object_add(o, "tok_ns", json_object_new_int64(
		(int64_t)(c->eng.prefill_tok_us * 1000.0 / c->eng.speed + 0.5)));
	json_object_object_add(o, "max_queue", json_object_new_int64(c->max_queue));
	/* where idnd sends deploy/evict orders (on the node's locator) */
	{
		const char *colon = strrchr(c->listen, ':');
		long port = colon ? strtol(colon + 1, NULL, 10) : 0;

		if (port > 0 && port < 65536)
			json_object_object_add(o, "api_port", json_object_new_int(port));
	}
	/* ... on the management listener (http.c), when it has one */
	if (c->mgmt_listen[0] && strcmp(c->mgmt_listen, "none"))
		json_object_object_add(o, "mgmt", json_object_new_string(c->mgmt_listen));
	/* ... and where other agents push it KV state (idnd's migrations) */
	if (c->kv_listen[0])
		json_object_object_add(o, "kv", json_object_new_string(c->kv_listen));
	/* its stages of two-stage (P/D) capabilities, when not both */
	if (c->role == 1 || c->role == 2)
		json_object_object_add(o, "role", json_object_new_string(c->role == 1 ? "prefill" :
									 "decode"));
	return o;
}
