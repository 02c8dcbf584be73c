# SPDX-License-Identifier: GPL-2.0
# ---- agent: idn-agent, the node agent (agent/) ---------------------------
# build/idn-agent            daemon: profile R, engine emulator, residency,
#                            idnd client, telemetry (libmicrohttpd, json-c,
#                            libcurl, libsodium)
# build/idn_res_cuda.so      CUDA VMM residency backend (plugin), only where
#                            nvcc exists; never needed to build or run the rest
# build/tests/unit_agent_*   selftests/unit/unit_agent_*.c with the agent's
#                            library sources, ASan/UBSan
# idnd's etcd client (ctl/idnd/etcd.c) is built into the agent as is: the
# node's own lease in distributed mode (--etcd, agent/ctlclient.c)
AGENT_LIB_SRCS := agent/config.c agent/profile.c agent/kvcache.c agent/engine.c \
	agent/residency.c agent/telemetry.c agent/ctlclient.c agent/http.c \
	agent/kvxfer.c agent/receipt.c agent/state.c agent/adapter.c agent/pd.c agent/handoff.c \
	ctl/idnd/etcd.c ctl/lib/http.c ctl/lib/prom.c ctl/lib/conf.c ctl/lib/log.c
AGENT_SRCS := $(AGENT_LIB_SRCS) agent/main.c
AGENT_HDRS := agent/agent.h agent/kvxfer.h agent/kvx_priv.h agent/receipt.h include/uapi/linux/idn.h \
	ctl/idnd/etcd.h ctl/lib/http.h ctl/lib/prom.h ctl/lib/conf.h ctl/lib/log.h
AGENT_LIBS := -lmicrohttpd -ljson-c -lcurl -lgnutls -lsodium -lpthread -ldl -lm -linih
# ctl/lib/http.c (the TLS transport, shared with idnd and idnctl) as -Ictl/lib's http.h;
# ctl/lib/log.c: idnd's levelled log lines (without log_bpf.c: no libbpf here)
AGENT_CFLAGS := -Iagent -Ictl/lib
# KV transfer slice hashes: XXH3-64 (Debian's libxxhash, tools/deps.sh)
AGENT_CFLAGS += $(shell pkg-config --cflags libxxhash 2>/dev/null)
AGENT_LIBS += $(shell pkg-config --libs libxxhash 2>/dev/null || echo -lxxhash)
# KV transfer over RDMA (agent/kvx_rdma.c) only where libibverbs + librdmacm
# are installed; otherwise kvxfer.c's stubs refuse policy rdma, saying why
KVX_RDMA := $(shell pkg-config --exists libibverbs librdmacm 2>/dev/null && echo y)
ifeq ($(KVX_RDMA),y)
AGENT_LIB_SRCS += agent/kvx_rdma.c
AGENT_SRCS += agent/kvx_rdma.c
AGENT_CFLAGS += -DKVX_HAVE_RDMA
AGENT_LIBS += $(shell pkg-config --libs libibverbs librdmacm)
endif
AGENT := $(O)/idn-agent

NVCC ?= $(shell command -v nvcc 2>/dev/null || \
	  { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; })
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
AGENT_CUDA := $(if $(NVCC),$(O)/idn_res_cuda.so)

UNIT_AGENT_SRCS := $(wildcard selftests/unit/unit_agent_*.c)
UNIT_AGENT_BINS := $(patsubst selftests/unit/%.c,$(O)/tests/%,$(UNIT_AGENT_SRCS))

ALL_TARGETS += $(AGENT) $(AGENT_CUDA) $(UNIT_AGENT_BINS)

.PHONY: agent
agent: $(AGENT) $(AGENT_CUDA)

$(AGENT): $(AGENT_SRCS) $(AGENT_HDRS) $(IDN_VERSION_OBJ)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(AGENT_CFLAGS) -o $@ $(AGENT_SRCS) $(IDN_VERSION_OBJ) $(LDFLAGS) $(AGENT_LIBS)

# nvcc compiles it as C++; the driver API only (-lcuda, the stub at build time)
$(O)/idn_res_cuda.so: agent/res_cuda.cu $(AGENT_HDRS)
	$(call msg,NVCC,$@)
	$(Q)$(NVCC) -O2 -shared -Xcompiler -fPIC $(AGENT_CFLAGS) -Iinclude/uapi -o $@ $< \
		-L$(CUDA_HOME)/lib64/stubs -L$(CUDA_HOME)/lib64 -lcuda

$(O)/tests/unit_agent_%: selftests/unit/unit_agent_%.c $(AGENT_LIB_SRCS) $(AGENT_HDRS) \
		selftests/lib/tap.h selftests/lib/trace.h | $(O)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(CFLAGS) $(AGENT_CFLAGS) -Iselftests/lib $(SAN_FLAGS) -o $@ $< \
		$(AGENT_LIB_SRCS) $(LDFLAGS) $(AGENT_LIBS)
# build/tools/idn_cachebench  eq. 8 vs LRU on the Mooncake trace (run.sh agent)
ALL_TARGETS += $(O)/tools/idn_cachebench
$(O)/tools/idn_cachebench: tools/bench/idn_cachebench.c agent/kvcache.c agent/engine.c \
		$(AGENT_HDRS) selftests/lib/trace.h | $(O)/tools
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(AGENT_CFLAGS) -Iselftests -o $@ $< agent/kvcache.c agent/engine.c $(LDFLAGS) \
		-ljson-c -lpthread -lm
# ---- end agent -------------------------------------------------------------
