# SPDX-License-Identifier: GPL-2.0
# selftests/fuzz/: libFuzzer harnesses (clang -fsanitize=fuzzer,address,
# undefined), run by selftests/unit/test_fuzz.sh with the seed corpus in
# selftests/fuzz/corpus/. Built only when clang's fuzzer runtime exists.
#   $(O)/fuzz/fuzz_args        libidn's CLI value parsers (ctl/lib/args.c)
#   $(O)/fuzz/fuzz_idnd_body   idnd's request bodies (api.c parse_body +
#                              cap/node/heartbeat/demand validation)
#   $(O)/fuzz/fuzz_agent_metrics  the agent's Prometheus parser (adapter.c)
#   $(O)/fuzz/fuzz_eval_trace  make eval's trace parser (tools/eval/trace.c)
#   $(O)/fuzz/fuzz_agent_body  the agent's request bodies (http.c serve() +
#                              completions, residency, kv/push, LoRA handlers)
#   $(O)/fuzz/fuzz_fedsum      a peer domain's federation summary (ctl/fedsum.c:
#                              the envelope, and payloads signed to reach the parse)
#   $(O)/fuzz/fuzz_agent_kvx   the KV transfer receiver (kvxfer.c rx_stream():
#                              hello, auth, slice frames), with and without a key,
#                              and into the agent's cache (agent_kv_commit())

FUZZ_CC ?= clang
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
HAVE_FUZZER := $(shell echo 'int LLVMFuzzerTestOneInput(const char *d, long n){return 0;}' | \
	$(FUZZ_CC) -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null && echo 1)
FUZZ_BINS := $(O)/fuzz/fuzz_args $(O)/fuzz/fuzz_idnd_body $(O)/fuzz/fuzz_agent_metrics \
	$(O)/fuzz/fuzz_eval_trace $(O)/fuzz/fuzz_agent_body $(O)/fuzz/fuzz_agent_kvx \
	$(O)/fuzz/fuzz_fedsum

ifeq ($(HAVE_FUZZER),1)
ALL_TARGETS += $(FUZZ_BINS)
endif

.PHONY: fuzz
fuzz: $(FUZZ_BINS)

$(O)/fuzz:
	$(Q)mkdir -p $@

$(O)/fuzz/fuzz_args: selftests/fuzz/fuzz_args.c ctl/lib/args.c ctl/lib/names.c ctl/lib/log.c ctl/lib/log_bpf.c \
		$(LIBIDN_HDRS) | $(O)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) $(INCLUDES) -Ictl/lib -o $@ $< \
		ctl/lib/args.c ctl/lib/names.c ctl/lib/log.c ctl/lib/log_bpf.c $(LDLIBS_BPF)

# api.c is #included by the harness (its handlers are static); the rest of
# idnd is linked as is, idnd.c with its main() renamed; no libmicrohttpd.
FUZZ_IDND_SRCS := $(filter-out ctl/idnd/api.c,$(IDND_SRCS))
$(O)/fuzz/fuzz_idnd_body: selftests/fuzz/fuzz_idnd_body.c $(IDND_SRCS) $(PLACE_SRCS) \
		$(IDND_HDRS) $(LIBIDN_SRCS) $(LIBIDN_HDRS) $(IDN_VERSION_OBJ) | $(O)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) $(INCLUDES) $(CTL_CFLAGS) $(PLACE_CFLAGS) -Dmain=idnd_main \
		-Wno-unknown-warning-option -o $@ $< $(FUZZ_IDND_SRCS) $(PLACE_SRCS) \
		$(LIBIDN_SRCS) $(IDN_VERSION_OBJ) $(LDLIBS_BPF) $(NL_LIBS) -lsqlite3 -ljson-c $(HTTP_LIBS) \
		$(INIH_LIBS) -lsodium -lpthread $(PLACE_LIBS)

$(O)/fuzz/fuzz_agent_metrics: selftests/fuzz/fuzz_agent_metrics.c agent/adapter.c agent/agent.h \
		| $(O)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) $(INCLUDES) -Iagent -o $@ $< agent/adapter.c \
		-ljson-c -lcurl -lpthread -lm

$(O)/fuzz/fuzz_eval_trace: selftests/fuzz/fuzz_eval_trace.c tools/eval/trace.c tools/eval/eval.h \
		agent/kvcache.c agent/agent.h | $(O)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) $(INCLUDES) -Iagent -Itools/eval -o $@ $< tools/eval/trace.c \
		agent/kvcache.c -ljson-c -lz -lm

# http.c is #included by the harness (its handlers are static); the rest of
# the agent's library is linked as is, without RDMA (kvxfer.c's stubs)
FUZZ_AGENT_SRCS := $(filter-out agent/http.c agent/kvx_rdma.c,$(AGENT_LIB_SRCS))
$(O)/fuzz/fuzz_agent_body: selftests/fuzz/fuzz_agent_body.c $(AGENT_LIB_SRCS) $(AGENT_HDRS) \
		| $(O)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) $(INCLUDES) -Iagent -Ictl/lib -Wno-unknown-warning-option \
		-o $@ $< $(FUZZ_AGENT_SRCS) -lmicrohttpd -ljson-c -lcurl -lgnutls -lsodium -lxxhash -linih \
		-lpthread -ldl -lm

# kvxfer.c is #included (rx_stream() is static); the rest of the agent's
# library is linked for agent_kv_commit() (IDN_FUZZ_KV=agent)
FUZZ_KVX_SRCS := $(filter-out agent/kvxfer.c agent/kvx_rdma.c,$(AGENT_LIB_SRCS))
$(O)/fuzz/fuzz_agent_kvx: selftests/fuzz/fuzz_agent_kvx.c $(AGENT_LIB_SRCS) $(AGENT_HDRS) \
		| $(O)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) $(INCLUDES) -Iagent -Ictl/lib -Wno-unknown-warning-option \
		-o $@ $< $(FUZZ_KVX_SRCS) -lmicrohttpd -ljson-c -lcurl -lgnutls -lsodium -lxxhash -linih \
		-lpthread -ldl -lm

$(O)/fuzz/fuzz_fedsum: selftests/fuzz/fuzz_fedsum.c ctl/fedsum.c ctl/fedsum.h ctl/capsig.c \
		ctl/capsig.h | $(O)/fuzz
	$(call msg,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -Ictl -o $@ $< ctl/fedsum.c ctl/capsig.c -ljson-c -lsodium
