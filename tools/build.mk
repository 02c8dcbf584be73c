# SPDX-License-Identifier: GPL-2.0

# ---- stamp: client-side TCP option stamping (tools/stamp/) -------------
# build/idn-stamp        loader/CLI for bpf/idn_stamp.bpf.c
# build/libidnstamp.a    per-socket descriptors for applications (stamp.h)
STAMP_LIB_OBJS := $(O)/obj/stamp/stamp.o
STAMP_OBJS := $(O)/obj/stamp/idn-stamp.o $(STAMP_LIB_OBJS)
STAMP_HDRS := tools/stamp/stamp.h bpf/idn_stamp.h include/uapi/linux/idn.h

ALL_TARGETS += $(O)/idn-stamp $(O)/libidnstamp.a

$(O)/obj/stamp:
	$(Q)mkdir -p $@

$(O)/obj/stamp/%.o: tools/stamp/%.c $(STAMP_HDRS) $(O)/bpf/idn_stamp.skel.h | $(O)/obj/stamp
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Itools/stamp -Ictl/lib -c $< -o $@

$(O)/libidnstamp.a: $(STAMP_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)$(AR) rcs $@ $^

$(O)/idn-stamp: $(STAMP_OBJS) $(IDN_VERSION_OBJ)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_BPF)
# ---- end stamp ----------------------------------------------------------

# ---- bench: make bench (tools/bench/) -----------------------------------
# build/tools/idn_bench   XDP per-packet cost vs floor (BPF_PROG_TEST_RUN)
# run by tools/bench/run.sh, which also measures router requests/s
BENCH_HDRS := tools/bench/idn_bench.h selftests/lib/pktgen.h include/uapi/linux/idn.h \
	ctl/lib/dp_features.h ctl/lib/tables.h $(BPF_HDRS)

# build/tools/idn_rps     attaches idn_xdp with a minimal config (router_rps.sh)
# build/tools/idn_httpd   tiny epoll HTTP server for the requests/s benchmark
ALL_TARGETS += $(O)/tools/idn_bench $(O)/tools/idn_rps $(O)/tools/idn_httpd

# bpf/build.mk builds bpf/idn_bench.bpf.c; it also includes our header
$(O)/bpf/idn_bench.tmp.o: tools/bench/idn_bench.h

$(O)/tools/idn_bench: tools/bench/idn_bench.c $(BENCH_HDRS) $(O)/bpf/idn_bench.skel.h $(LIBIDN) \
		$(LIBIDN_HDRS) | $(O)/tools
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(CTL_CFLAGS) -o $@ $< $(LDFLAGS) $(LIBIDN) $(LDLIBS_BPF) \
		-ljson-c -lsodium -lpthread
$(O)/tools/idn_rps: tools/bench/idn_rps.c include/uapi/linux/idn.h ctl/lib/dp_features.h | $(O)/tools
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Ictl/lib -o $@ $< $(LDFLAGS) $(LDLIBS_BPF)

$(O)/tools/idn_httpd: tools/bench/idn_httpd.c | $(O)/tools
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)
# build/tools/idn_flood   spoofed SYNs and mid-flow segments (conn_state.sh)
ALL_TARGETS += $(O)/tools/idn_flood
$(O)/tools/idn_flood: tools/bench/idn_flood.c | $(O)/tools
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)
# build/tools/idn_agentbench  kv_tcp_vs_socket, residency_load_vs_read, linked
#                             with the agent's library sources; agent/build.mk is
#                             read later, so its variables are used in the recipe
#                             (expanded when it runs) and the prerequisites name
#                             the agent's files by wildcard
ALL_TARGETS += $(O)/tools/idn_agentbench
$(O)/tools/idn_agentbench: tools/bench/idn_agentbench.c $(wildcard agent/*.c agent/*.h) \
		| $(O)/tools
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(AGENT_CFLAGS) -o $@ $< $(AGENT_LIB_SRCS) $(LDFLAGS) $(AGENT_LIBS)
# build/tools/idn_scalebench  scale_* (run.sh scale): simulated agents (the
#                             agent's own ctl_lease) and watchers on one etcd
ALL_TARGETS += $(O)/tools/idn_scalebench
$(O)/tools/idn_scalebench: tools/bench/idn_scalebench.c $(wildcard agent/*.c agent/*.h) \
		ctl/idnd/etcd.c ctl/idnd/etcd.h | $(O)/tools
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(AGENT_CFLAGS) -o $@ $< $(AGENT_LIB_SRCS) $(LDFLAGS) $(AGENT_LIBS)
# ---- end bench ----------------------------------------------------------
