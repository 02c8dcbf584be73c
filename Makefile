# SPDX-License-Identifier: GPL-2.0
# IDN top-level build: one `make` builds everything that exists.
#
#   make            build BPF objects, skeletons, libidn, idnctl, tests
#   make demo       the main job: a working IDN on this machine (tools/demo.sh)
#   make demo-fed   two domains federated: peering, signed summaries, remote
#                   candidates, withdrawal (tools/demo-fed.sh)
#   make check      run every test tier (TAP, closing "N passed, ..." line)
#   make bench      run benchmarks (one "name value unit" line per figure)
#   make eval       routing evaluation: simulated traces, IDN vs baselines
#   make install    install under PREFIX (/usr/local), DESTDIR honoured
#   make deb        Debian packages (debhelper) in $(O)/deb/
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

# --version of every shipped binary: $(O)/version.c, rewritten only when
# tools/version.sh's answer changes (so only a new commit relinks)
IDN_VERSION_STR := $(shell tools/version.sh)
IDN_VERSION_OBJ := $(O)/obj/version.o

.PHONY: all check bench demo demo-fed clean help eval FORCE
all: real-all

include bpf/build.mk
include ctl/build.mk
include tools/build.mk
include selftests/build.mk
include agent/build.mk
include selftests/fuzz/build.mk
include tools/eval/build.mk
include dist/build.mk

real-all: $(ALL_TARGETS)

check: all
	$(Q)O=$(O) selftests/run.sh

bench: all
	$(Q)O=$(O) tools/bench/run.sh

# the demo's build is quiet (its lines go to $(O)/demo-build.log, shown
# when it fails): the demo's own output is what matters
demo:
	$(Q)mkdir -p $(O)
	$(Q)printf '  building (log: %s) ... ' '$(O)/demo-build.log'; \
	if $(MAKE) --no-print-directory all > $(O)/demo-build.log 2>&1; then echo done; \
	else echo FAILED; tail -40 $(O)/demo-build.log; exit 1; fi
	$(Q)O=$(O) tools/demo.sh

demo-fed:
	$(Q)mkdir -p $(O)
	$(Q)printf '  building (log: %s) ... ' '$(O)/demo-build.log'; \
	if $(MAKE) --no-print-directory $(O)/idnctl $(O)/idnd $(O)/idn-agent $(O)/bpf/idn_steer.bpf.o \
		$(O)/bpf/idn_node.bpf.o $(O)/bpf/idn_pass.bpf.o > $(O)/demo-build.log 2>&1; \
	then echo done; else echo FAILED; tail -40 $(O)/demo-build.log; exit 1; fi
	$(Q)O=$(O) tools/demo-fed.sh

clean:
	$(call msg,CLEAN,$(O))
	$(Q)rm -rf $(O)

help:
	@sed -n '2,18p' Makefile | sed 's/^# \{0,1\}//'

$(O) $(O)/bpf $(O)/obj $(O)/tests $(O)/tools:
	$(Q)mkdir -p $@

$(O)/version.c: FORCE | $(O)
	$(Q)printf 'const char idn_version[] = "%s";\n' '$(IDN_VERSION_STR)' > $@.tmp && \
		{ cmp -s $@.tmp $@ && rm -f $@.tmp || mv -f $@.tmp $@; }

$(IDN_VERSION_OBJ): $(O)/version.c | $(O)/obj
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

FORCE:

.DELETE_ON_ERROR:
.SECONDARY:
