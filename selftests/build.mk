# SPDX-License-Identifier: GPL-2.0

# ---- selftests: bpf/lib unit tests and BPF_PROG_TEST_RUN tests ----------
# build/tests/unit_lib_*        bpf/lib compiled for userspace (+ _asan)
# build/tests/unit_bpf_stack    call-chain stack of every BPF object (<= 512)
# build/tests/bpf_steer         fixture tables through idn_xdp and idn_tc
# build/tests/bpf_diff          loaded program vs userspace bpf/lib
# build/tests/bpf_node          node side: decap learning, TS cookie stamping
TEST_CFLAGS := -Iselftests -Wno-unknown-pragmas
TEST_HDRS := selftests/lib/tap.h selftests/lib/pktgen.h selftests/build.mk $(BPF_HDRS)
UNIT_LIB_SRCS := $(wildcard selftests/unit/unit_lib_*.c)
UNIT_LIB_BINS := $(patsubst selftests/unit/%.c,$(O)/tests/%,$(UNIT_LIB_SRCS))
UNIT_LIB_ASAN := $(addsuffix _asan,$(UNIT_LIB_BINS))
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize=alignment \
	-fno-sanitize-recover=all \
	-fno-omit-frame-pointer

ALL_TARGETS += $(UNIT_LIB_BINS) $(UNIT_LIB_ASAN)

$(O)/tests/unit_lib_%: selftests/unit/unit_lib_%.c $(TEST_HDRS) | $(O)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(TEST_CFLAGS) -o $@ $< $(LDFLAGS)

$(O)/tests/unit_lib_%_asan: selftests/unit/unit_lib_%.c $(TEST_HDRS) | $(O)/tests
	$(call msg,CC-ASAN,$@)
	$(Q)$(CC) $(CFLAGS) $(ASAN_FLAGS) $(TEST_CFLAGS) -o $@ $< $(LDFLAGS)

# tele.h's SipHash checked against libsodium's (the agent's)
$(O)/tests/unit_lib_tele $(O)/tests/unit_lib_tele_asan: LDFLAGS += -lsodium

# every BPF object's worst call-chain stack against the verifier's 512
# bytes, read from the objects (no kernel needed): run after they are built
ALL_TARGETS += $(O)/tests/unit_bpf_stack
$(O)/tests/unit_bpf_stack: selftests/unit/unit_bpf_stack.c selftests/lib/tap.h | $(O)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(TEST_CFLAGS) -o $@ $< $(LDFLAGS) -lelf

# BPF tests need the steering program; skipped from the build until it exists.
ifneq ($(wildcard bpf/idn_steer.bpf.c),)
BPF_TEST_BINS := $(patsubst selftests/bpf/%.c,$(O)/tests/%,\
	$(wildcard selftests/bpf/bpf_*.c))
BPF_TEST_HDRS := $(TEST_HDRS) selftests/bpf/steer_env.h $(O)/bpf/idn_steer.skel.h \
	ctl/lib/dp_features.h ctl/lib/tables.h
ALL_TARGETS += $(BPF_TEST_BINS)

$(O)/tests/bpf_%: selftests/bpf/bpf_%.c $(BPF_TEST_HDRS) | $(O)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(TEST_CFLAGS) -Ictl/lib -o $@ $< $(LDFLAGS) $(LDLIBS_BPF)

# the node's programs (idn_decap learning, idn_stamp's TS cookie)
$(O)/tests/bpf_node: $(O)/bpf/idn_node.skel.h

# The fixture test again under ASan/UBSan: valgrind cannot model the bpf()
# syscall's output buffers (it reports their contents as uninitialised).
ALL_TARGETS += $(O)/tests/bpf_steer_asan
$(O)/tests/bpf_steer_asan: selftests/bpf/bpf_steer.c $(BPF_TEST_HDRS) | $(O)/tests
	$(call msg,CC-ASAN,$@)
	$(Q)$(CC) $(CFLAGS) $(ASAN_FLAGS) $(TEST_CFLAGS) -Ictl/lib -o $@ $< $(LDFLAGS) $(LDLIBS_BPF)
endif
# ---- end selftests bpf/lib + BPF tests ----------------------------------
