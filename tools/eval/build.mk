# SPDX-License-Identifier: GPL-2.0
# ---- eval: make eval, the routing evaluation (tools/eval/) ----------------
# build/tools/idn_eval       the simulator: agent engines (agent/engine.c,
#                            kvcache.c), agent telemetry, idnd's plan compiler
#                            (ctl/idnd/model.c, in tools/eval/plans.c) and
#                            the dataplane's idn_select() (bpf/lib/select.h)
# build/tests/unit_eval      selftests/unit/unit_eval.c, ASan/UBSan
# build/eval/                report.md, data and PNGs of `make eval`
# agent/build.mk and ctl/build.mk variables are used in recipes only (they
# are read in either order).
EVAL_SRCS := tools/eval/sim.c tools/eval/trace.c
EVAL_AGENT_SRCS := agent/engine.c agent/kvcache.c agent/telemetry.c agent/config.c ctl/lib/conf.c \
	agent/profile.c agent/state.c ctl/lib/prom.c
EVAL_HDRS := tools/eval/eval.h agent/agent.h bpf/lib/select.h bpf/lib/tele.h \
	bpf/lib/compat.h include/uapi/linux/idn.h ctl/lib/migrate.h
EVAL_PLAN_DEPS := tools/eval/plans.c ctl/idnd/model.c ctl/idnd/idnd.h ctl/lib/libidn.h
EVAL_LIBS = $(PLACE_LIBS) -ljson-c -lsodium -lz -lpthread -ldl -lm -linih
EVAL := $(O)/tools/idn_eval

ALL_TARGETS += $(EVAL) $(O)/tests/unit_eval

$(O)/obj/eval:
	$(Q)mkdir -p $@

# plans.c compiles idnd's model.c in, with idnd's include paths
$(O)/obj/eval/plans.o: $(EVAL_PLAN_DEPS) tools/eval/eval.h | $(O)/obj/eval
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(CTL_CFLAGS) $(PLACE_CFLAGS) -Wno-unused-function -c $< -o $@

$(O)/obj/eval/plans_asan.o: $(EVAL_PLAN_DEPS) tools/eval/eval.h | $(O)/obj/eval
	$(call msg,CC-ASAN,$@)
	$(Q)$(CC) $(CFLAGS) $(CTL_CFLAGS) $(PLACE_CFLAGS) $(SAN_FLAGS) -Wno-unused-function \
		-c $< -o $@

$(EVAL): tools/eval/idn_eval.c $(EVAL_SRCS) $(EVAL_AGENT_SRCS) $(EVAL_HDRS) \
		$(O)/obj/eval/plans.o $(PLACE_SRCS) | $(O)/tools
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(PLACE_CFLAGS) -Iagent -Itools/eval -Wno-unknown-pragmas -o $@ \
		tools/eval/idn_eval.c $(EVAL_SRCS) $(EVAL_AGENT_SRCS) $(O)/obj/eval/plans.o \
		$(PLACE_SRCS) $(LDFLAGS) $(EVAL_LIBS)

$(O)/tests/unit_eval: selftests/unit/unit_eval.c $(EVAL_SRCS) $(EVAL_AGENT_SRCS) $(EVAL_HDRS) \
		$(O)/obj/eval/plans_asan.o $(PLACE_SRCS) selftests/lib/tap.h | $(O)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(CFLAGS) $(PLACE_CFLAGS) -Iagent -Itools/eval -Iselftests/lib -Wno-unknown-pragmas \
		$(SAN_FLAGS) -o $@ $< $(EVAL_SRCS) $(EVAL_AGENT_SRCS) $(O)/obj/eval/plans_asan.o \
		$(PLACE_SRCS) $(LDFLAGS) $(EVAL_LIBS)

# build/tools/idn_tbclient  the testbed mode's client (tools/eval/testbed.sh):
#                            the trace slice as real streaming completions,
#                            each socket stamped (tools/stamp/stamp.c)
EVAL_TBCLIENT := $(O)/tools/idn_tbclient
ALL_TARGETS += $(EVAL_TBCLIENT)

$(EVAL_TBCLIENT): tools/eval/testbed_client.c $(EVAL_SRCS) $(EVAL_AGENT_SRCS) $(EVAL_HDRS) \
		$(O)/obj/eval/plans.o $(PLACE_SRCS) $(STAMP_LIB_OBJS) tools/stamp/stamp.h | $(O)/tools
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(PLACE_CFLAGS) -Iagent -Itools/eval -Itools/stamp -Wno-unknown-pragmas \
		-o $@ tools/eval/testbed_client.c $(EVAL_SRCS) $(EVAL_AGENT_SRCS) \
		$(O)/obj/eval/plans.o $(PLACE_SRCS) $(STAMP_LIB_OBJS) $(LDFLAGS) $(EVAL_LIBS) \
		$(LDLIBS_BPF)

# what the testbed mode runs besides its client (the binaries are read from
# agent/, ctl/, bpf/ and tools/build.mk, all included before this file)
EVAL_TESTBED_DEPS := $(IDND) $(AGENT) $(IDNCTL) $(O)/idn-stamp $(O)/bpf/idn_steer.bpf.o \
	$(O)/bpf/idn_node.bpf.o $(O)/bpf/idn_pass.bpf.o

.PHONY: eval
eval: $(EVAL) $(EVAL_TBCLIENT) $(EVAL_TESTBED_DEPS)
	$(Q)O=$(O) tools/eval/run.sh
# ---- end eval ---------------------------------------------------------------
