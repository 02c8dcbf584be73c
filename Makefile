# SPDX-License-Identifier: GPL-2.0
# IDN top-level build: one `make` builds everything that exists.
#
#   make            build BPF objects, skeletons, libidn, idnctl, tests
#   make demo       the main job: a working IDN on this machine (tools/demo.sh)
#   make check      run every test tier (TAP, closing "N passed, ..." line)
#   make bench      run benchmarks (one "name value unit" line per figure)
#   make eval       routing evaluation: simulated traces, IDN vs baselines
#   make clean
#   V=1             show full commands
#
# Each part has its own fragment (bpf/build.mk, ctl/build.mk, ...) that
# appends to ALL_TARGETS; outputs go to $(O) (default build/).

O ?= build
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)

CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
PKG_CONFIG ?= pkg-config

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

INCLUDES := -Iinclude/uapi -Ibpf -I$(O)
CFLAGS ?= -O2 -g
CFLAGS += -Wall -Wextra -Wno-unused-parameter -std=gnu11 $(INCLUDES) $(EXTRA_CFLAGS)
LDLIBS_BPF := $(shell $(PKG_CONFIG) --libs libbpf 2>/dev/null || echo -lbpf -lelf -lz)
LDFLAGS += $(EXTRA_LDFLAGS)

ALL_TARGETS :=

.PHONY: all check bench demo clean help eval
all: real-all

include bpf/build.mk
include ctl/build.mk
include tools/build.mk
include selftests/build.mk
include agent/build.mk
include selftests/fuzz/build.mk
include tools/eval/build.mk

real-all: $(ALL_TARGETS)

check: all
	$(Q)O=$(O) selftests/run.sh

bench: all
	$(Q)O=$(O) tools/bench/run.sh

demo: all
	$(Q)O=$(O) tools/demo.sh

clean:
	$(call msg,CLEAN,$(O))
	$(Q)rm -rf $(O)

help:
	@sed -n '2,14p' Makefile | sed 's/^# \{0,1\}//'

$(O) $(O)/bpf $(O)/obj $(O)/tests $(O)/tools:
	$(Q)mkdir -p $@

.DELETE_ON_ERROR:
.SECONDARY:
