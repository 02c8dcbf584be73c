// SPDX-License-Identifier: GPL-2.0
/*
 * res_cuda.cu - the residency manager's CUDA backend: artifacts in device
 * memory through the CUDA driver's virtual memory management (cuMemCreate
 * + cuMemAddressReserve + cuMemMap), so an eviction (cuMemUnmap +
 * cuMemRelease) really returns the physical memory; free_bytes asks the
 * device (cuMemGetInfo) instead of trusting bookkeeping.
 *
 * Built with nvcc only where it exists (agent/build.mk) as a plugin,
 * $(O)/idn_res_cuda.so (linked with -lcuda), that idn-agent dlopen()s for
 * --backend cuda: the agent itself never depends on libcuda, so it runs
 * on machines without a GPU driver. Device 0, primary context.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cuda.h>

extern "C" {
#include "agent.h"
}

struct cu_ctx {
	CUdevice dev;
	CUcontext ctx;
	size_t gran;
};

struct cu_mem {
	CUdeviceptr ptr;
	CUmemGenericAllocationHandle h;
	size_t size;
};

static void prop_of(const struct cu_ctx *c, CUmemAllocationProp *p)
{
	memset(p, 0, sizeof(*p));
	p->type = CU_MEM_ALLOCATION_TYPE_PINNED;
	p->location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	p->location.id = c->dev;
}

static int cu_init(void **ctx)
{
	struct cu_ctx *c = (struct cu_ctx *)calloc(1, sizeof(*c));
	CUmemAllocationProp p;
	int vmm = 0;

	if (!c)
		return -ENOMEM;
	if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&c->dev, 0) != CUDA_SUCCESS ||
	    cuDeviceGetAttribute(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED,
				 c->dev) != CUDA_SUCCESS || !vmm ||
	    cuDevicePrimaryCtxRetain(&c->ctx, c->dev) != CUDA_SUCCESS) {
		free(c);
		return -ENODEV;
	}
	prop_of(c, &p);
	if (cuMemGetAllocationGranularity(&c->gran, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM) !=
	    CUDA_SUCCESS || !c->gran) {
		cuDevicePrimaryCtxRelease(c->dev);
		free(c);
		return -ENODEV;
	}
	*ctx = c;
	return 0;
}

static void cu_fini(void *ctx)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;

	cuDevicePrimaryCtxRelease(c->dev);
	free(c);
}

static int cu_alloc(void *ctx, uint64_t size, void **h)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;
	struct cu_mem *m = (struct cu_mem *)calloc(1, sizeof(*m));
	CUmemAllocationProp p;
	CUmemAccessDesc acc;

	if (!m)
		return -ENOMEM;
	cuCtxSetCurrent(c->ctx);
	m->size = (size ? size : 1);
	m->size = (m->size + c->gran - 1) / c->gran * c->gran;
	prop_of(c, &p);
	if (cuMemCreate(&m->h, m->size, &p, 0) != CUDA_SUCCESS) {
		free(m);
		return -ENOMEM;
	}
	if (cuMemAddressReserve(&m->ptr, m->size, 0, 0, 0) != CUDA_SUCCESS)
		goto release;
	if (cuMemMap(m->ptr, m->size, 0, m->h, 0) != CUDA_SUCCESS)
		goto unreserve;
	memset(&acc, 0, sizeof(acc));
	acc.location = p.location;
	acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
	if (cuMemSetAccess(m->ptr, m->size, &acc, 1) != CUDA_SUCCESS) {
		cuMemUnmap(m->ptr, m->size);
		goto unreserve;
	}
	*h = m;
	return 0;
unreserve:
	cuMemAddressFree(m->ptr, m->size);
release:
	cuMemRelease(m->h);
	free(m);
	return -ENOMEM;
}

static int cu_write(void *ctx, void *h, uint64_t off, const void *buf, size_t len)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;
	struct cu_mem *m = (struct cu_mem *)h;

	cuCtxSetCurrent(c->ctx);
	if (off + len > m->size)
		return -EINVAL;
	return cuMemcpyHtoD(m->ptr + off, buf, len) == CUDA_SUCCESS ? 0 : -EIO;
}

static void cu_release(void *ctx, void *h, uint64_t size)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;
	struct cu_mem *m = (struct cu_mem *)h;

	cuCtxSetCurrent(c->ctx);
	cuMemUnmap(m->ptr, m->size);
	cuMemAddressFree(m->ptr, m->size);
	cuMemRelease(m->h);
	free(m);
}

static int64_t cu_free_bytes(void *ctx)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;
	size_t fr = 0, tot = 0;

	cuCtxSetCurrent(c->ctx);
	return cuMemGetInfo(&fr, &tot) == CUDA_SUCCESS ? (int64_t)fr : -EIO;
}

static struct res_backend cu_backend;

extern "C" const struct res_backend *idn_res_cuda_backend(void)
{
	cu_backend.name = "cuda";
	cu_backend.init = cu_init;
	cu_backend.fini = cu_fini;
	cu_backend.alloc = cu_alloc;
	cu_backend.write = cu_write;
	cu_backend.release = cu_release;
	cu_backend.free_bytes = cu_free_bytes;
	return &cu_backend;
}
