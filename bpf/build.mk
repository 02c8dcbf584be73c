# SPDX-License-Identifier: GPL-2.0
# bpf/: steering programs -> BPF objects -> bpftool skeletons.
#   idn_steer.bpf.c   router: XDP + TC ingress steering, telemetry
#   idn_node.bpf.c    node: TC ingress decapsulation
#   idn_stamp.bpf.c   client: cgroup sock_ops TCP option stamping
#   idn_floor.bpf.c   benchmark floor (XDP_TX MAC swap)

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(O)/bpf/%.bpf.o,$(BPF_SRCS))
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(O)/bpf/%.skel.h,$(BPF_SRCS))
BPF_HDRS := $(wildcard bpf/lib/*.h) include/uapi/linux/idn.h
# Build id of the dataplane: a hash of its sources, in .rodata
# (idn_build_id), shown by `idnctl dp status`; a pinned program of another
# build is flagged stale and `idnctl dp replace` swaps it.
IDN_BPF_BUILD_ID := $(shell cat $(BPF_SRCS) $(BPF_HDRS) 2>/dev/null | sha256sum | cut -c1-16)
BPF_CFLAGS := -O2 -g -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-Wno-unused-function -Iinclude/uapi -Ibpf -I/usr/include/$(MULTIARCH) \
	-DIDN_BUILD_ID=0x$(IDN_BPF_BUILD_ID)ULL

ALL_TARGETS += $(BPF_OBJS) $(BPF_SKELS)

$(O)/bpf/%.tmp.o: bpf/%.bpf.c $(BPF_HDRS) | $(O)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(O)/bpf/%.bpf.o: $(O)/bpf/%.tmp.o
	$(call msg,GEN-OBJ,$@)
	$(Q)$(BPFTOOL) gen object $@ $<

$(O)/bpf/%.skel.h: $(O)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst .bpf.o,,$(notdir $<)) > $@
