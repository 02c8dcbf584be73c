# SPDX-License-Identifier: GPL-2.0
# ctl/: libidn (ctl/lib -> $(O)/libidn.a), idnctl ($(O)/idnctl) and their
# unit tests (selftests/unit/unit_ctl_*.c -> $(O)/tests/unit_idnctl_*,
# built with ASan/UBSan straight from the library sources).
#
# idnctl embeds the skeletons of bpf/idn_steer.bpf.c and bpf/idn_node.bpf.c
# when those sources exist (dp attach / dp decap); without them it builds
# and the map commands work against maps pinned by another loader.
# libidn's generic netlink client of idn.ko (ctl/lib/hold.c: idnctl hold,
# monitor events) needs libnl-genl-3 (tools/deps.sh).

LIBIDN_SRCS := $(wildcard ctl/lib/*.c)
LIBIDN_HDRS := $(wildcard ctl/lib/*.h) $(BPF_HDRS)
LIBIDN_OBJS := $(patsubst ctl/lib/%.c,$(O)/obj/ctl/lib/%.o,$(LIBIDN_SRCS))
LIBIDN := $(O)/libidn.a

IDNCTL_SRCS := ctl/idnctl.c ctl/dp.c ctl/vip.c ctl/node.c ctl/plan.c ctl/cap.c \
	ctl/route.c ctl/stats.c ctl/receipt.c ctl/receipt_verify.c ctl/print_idn.c ctl/dp_decap.c ctl/hold.c \
	ctl/controller.c ctl/state.c ctl/capsig.c ctl/sign.c ctl/node_ident.c ctl/bgp.c ctl/peer.c
IDNCTL_OBJS := $(patsubst ctl/%.c,$(O)/obj/ctl/%.o,$(IDNCTL_SRCS))
IDNCTL := $(O)/idnctl

CTL_SKELS := $(if $(wildcard bpf/idn_steer.bpf.c),$(O)/bpf/idn_steer.skel.h) \
	$(if $(wildcard bpf/idn_node.bpf.c),$(O)/bpf/idn_node.skel.h)
NL_CFLAGS := $(shell $(PKG_CONFIG) --cflags libnl-genl-3.0 2>/dev/null || echo -I/usr/include/libnl3)
NL_LIBS := $(shell $(PKG_CONFIG) --libs libnl-genl-3.0 2>/dev/null || echo -lnl-genl-3 -lnl-3)
CTL_CFLAGS := -Ictl/lib -Ictl -Wno-unknown-pragmas $(NL_CFLAGS)
# ctl/lib/http.c: the control plane's HTTP/TLS transport (tools/deps.sh)
HTTP_LIBS := -lmicrohttpd -lcurl -lgnutls
# ctl/lib/conf.c: configuration files (/etc/idn/*.conf) through libinih
INIH_LIBS := $(shell $(PKG_CONFIG) --libs inih 2>/dev/null || echo -linih)

UNIT_CTL_SRCS := $(wildcard selftests/unit/unit_ctl_*.c)
UNIT_CTL_BINS := $(patsubst selftests/unit/unit_ctl_%.c,$(O)/tests/unit_idnctl_%,$(UNIT_CTL_SRCS))
SAN_FLAGS ?= -fsanitize=address,undefined -fno-omit-frame-pointer

ALL_TARGETS += $(LIBIDN) $(IDNCTL) $(UNIT_CTL_BINS)

.PHONY: ctl
ctl: $(LIBIDN) $(IDNCTL)

$(O)/obj/ctl/lib:
	$(Q)mkdir -p $@

$(O)/obj/ctl/lib/%.o: ctl/lib/%.c $(LIBIDN_HDRS) | $(O)/obj/ctl/lib
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(CTL_CFLAGS) -c $< -o $@

$(LIBIDN): $(LIBIDN_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(O)/obj/ctl/%.o: ctl/%.c ctl/idnctl.h ctl/dp_load.h ctl/capsig.h $(LIBIDN_HDRS) $(CTL_SKELS) | $(O)/obj/ctl/lib
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(CTL_CFLAGS) -c $< -o $@

$(IDNCTL): $(IDNCTL_OBJS) $(LIBIDN) $(IDN_VERSION_OBJ)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(IDNCTL_OBJS) $(IDN_VERSION_OBJ) $(LIBIDN) $(LDLIBS_BPF) $(NL_LIBS) $(HTTP_LIBS) $(INIH_LIBS) -ljson-c -lsodium

$(O)/tests/unit_idnctl_%: selftests/unit/unit_ctl_%.c $(LIBIDN_SRCS) $(LIBIDN_HDRS) \
		selftests/lib/tap.h | $(O)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(CFLAGS) $(CTL_CFLAGS) -Iselftests/lib $(SAN_FLAGS) -o $@ $< \
		$(LIBIDN_SRCS) $(LDFLAGS) $(LDLIBS_BPF) $(NL_LIBS) $(HTTP_LIBS) $(INIH_LIBS)

# ---- idnd: the controller daemon (ctl/idnd/) ------------------------------
# build/idnd                  daemon (SQLite, libmicrohttpd, json-c, libidn)
# build/tests/unit_idnd_*     selftests/unit/unit_idnd_*.c with the solver,
#                             ASan/UBSan; CBC/GLPK references when present
# build/tools/idn_placement   placement benchmark (tools/bench/run.sh placement)
IDND_SRCS := ctl/idnd/idnd.c ctl/idnd/model.c ctl/idnd/store.c ctl/idnd/api.c ctl/idnd/loop.c \
	ctl/idnd/dist.c ctl/idnd/etcd.c ctl/idnd/activate.c ctl/idnd/orders.c ctl/idnd/state.c \
	ctl/idnd/solver.c ctl/idnd/audit.c ctl/idnd/signed.c ctl/capsig.c ctl/idnd/ident.c \
	ctl/idnd/migrate.c ctl/idnd/fed.c ctl/fedsum.c ctl/idnd/quota.c
PLACE_SRCS := ctl/idnd/placement.c ctl/idnd/placement_exact.c ctl/idnd/placement_gen.c
IDND_HDRS := ctl/idnd/idnd.h ctl/idnd/placement.h ctl/idnd/etcd.h ctl/idnd/orders.h \
	ctl/idnd/solver.h ctl/idnd/audit.h ctl/capsig.h ctl/idnd/ident.h ctl/lib/migrate.h \
	ctl/idnd/fed.h ctl/fedsum.h
IDND := $(O)/idnd
HAVE_CBC := $(shell $(PKG_CONFIG) --exists cbc 2>/dev/null && echo 1)
HAVE_GLPK := $(if $(wildcard /usr/include/glpk.h),1)
PLACE_CFLAGS := -Ictl/idnd $(if $(HAVE_CBC),-DIDN_HAVE_CBC) $(if $(HAVE_GLPK),-DIDN_HAVE_GLPK)
PLACE_LIBS := $(if $(HAVE_CBC),$(shell $(PKG_CONFIG) --libs cbc)) $(if $(HAVE_GLPK),-lglpk) -lm
IDND_LIBS := -lsqlite3 $(HTTP_LIBS) $(INIH_LIBS) -ljson-c -lsodium -lpthread
UNIT_IDND_SRCS := $(wildcard selftests/unit/unit_idnd_*.c)
UNIT_IDND_BINS := $(patsubst selftests/unit/%.c,$(O)/tests/%,$(UNIT_IDND_SRCS))

ALL_TARGETS += $(IDND) $(UNIT_IDND_BINS) $(O)/tools/idn_placement

$(IDND): $(IDND_SRCS) $(PLACE_SRCS) $(IDND_HDRS) $(LIBIDN) $(IDN_VERSION_OBJ)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(CTL_CFLAGS) $(PLACE_CFLAGS) -o $@ $(IDND_SRCS) $(PLACE_SRCS) $(IDN_VERSION_OBJ) \
		$(LDFLAGS) $(LIBIDN) $(LDLIBS_BPF) $(NL_LIBS) $(IDND_LIBS) $(PLACE_LIBS)

$(O)/tests/unit_idnd_%: selftests/unit/unit_idnd_%.c $(PLACE_SRCS) $(IDND_HDRS) \
		selftests/lib/tap.h | $(O)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(CFLAGS) $(PLACE_CFLAGS) -Iselftests/lib $(SAN_FLAGS) -o $@ $< $(PLACE_SRCS) \
		$(LDFLAGS) $(PLACE_LIBS)

# the plan compiler: model.c included by the test, its callees stubbed there
$(O)/tests/unit_idnd_compile: selftests/unit/unit_idnd_compile.c ctl/idnd/model.c $(PLACE_SRCS) \
		$(IDND_HDRS) selftests/lib/tap.h | $(O)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(CFLAGS) $(CTL_CFLAGS) $(PLACE_CFLAGS) -Iselftests/lib $(SAN_FLAGS) -o $@ $< \
		$(PLACE_SRCS) $(LDFLAGS) $(PLACE_LIBS) -ljson-c

# per-principal limits: quota.c included by the test, its callees stubbed there
$(O)/tests/unit_idnd_quota: selftests/unit/unit_idnd_quota.c ctl/idnd/quota.c ctl/lib/prom.c \
		ctl/lib/prom.h $(IDND_HDRS) selftests/lib/tap.h | $(O)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(CFLAGS) $(CTL_CFLAGS) $(PLACE_CFLAGS) -Iselftests/lib $(SAN_FLAGS) -o $@ $< \
		ctl/lib/prom.c $(LDFLAGS) -lm -lpthread

# signed capability metadata: the canonical encoding, sign and verify
$(O)/tests/unit_idnd_capsig: selftests/unit/unit_idnd_capsig.c ctl/capsig.c ctl/capsig.h \
		selftests/lib/tap.h | $(O)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(CFLAGS) -Ictl -Iselftests/lib $(SAN_FLAGS) -o $@ $< ctl/capsig.c \
		$(LDFLAGS) -ljson-c -lsodium

# federation summaries: encode, sign, verify, the strict parse
$(O)/tests/unit_idnd_fedsum: selftests/unit/unit_idnd_fedsum.c ctl/fedsum.c ctl/fedsum.h \
		ctl/capsig.c ctl/capsig.h selftests/lib/tap.h | $(O)/tests
	$(call msg,CC-TEST,$@)
	$(Q)$(CC) $(CFLAGS) -Ictl -Iselftests/lib $(SAN_FLAGS) -o $@ $< ctl/fedsum.c ctl/capsig.c \
		$(LDFLAGS) -ljson-c -lsodium

$(O)/tools/idn_placement: tools/bench/idn_placement.c $(PLACE_SRCS) $(IDND_HDRS) | $(O)/tools
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(PLACE_CFLAGS) -o $@ $< $(PLACE_SRCS) $(LDFLAGS) $(PLACE_LIBS)
# ---- end idnd ---------------------------------------------------------------

# build/tools/idn_ctlbench    plan_push_10k_ms, node_down_to_drained_ms,
#                             revoke_to_plans_ms
#                             against real pinned maps (run.sh placement)
ALL_TARGETS += $(O)/tools/idn_ctlbench
$(O)/tools/idn_ctlbench: tools/bench/idn_ctlbench.c ctl/capsig.c ctl/capsig.h $(LIBIDN) \
		$(LIBIDN_HDRS) | $(O)/tools
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(CTL_CFLAGS) -o $@ $< ctl/capsig.c $(LDFLAGS) $(LIBIDN) $(LDLIBS_BPF) \
		-ljson-c -lsodium -lpthread

# build/tools/idn_tlsbench    tls_api_rps_vs_plain: idnd's API over mutual TLS
#                             vs plain, keep-alive clients (run.sh placement)
ALL_TARGETS += $(O)/tools/idn_tlsbench
$(O)/tools/idn_tlsbench: tools/bench/idn_tlsbench.c ctl/lib/http.c ctl/lib/http.h ctl/lib/log.c | $(O)/tools
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(CTL_CFLAGS) -o $@ $< ctl/lib/http.c ctl/lib/log.c $(LDFLAGS) $(HTTP_LIBS) -lpthread
