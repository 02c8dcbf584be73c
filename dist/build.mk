# SPDX-License-Identifier: GPL-2.0
# ---- dist: make install, make deb (dist/, debian/) -----------------------
#   make install [PREFIX=/usr/local] [DESTDIR=]   everything below
#   make install-dataplane | install-idnd | install-agent | install-dkms
#                                      one Debian package's files each
#                                      (debian/rules installs them one by one)
#   make deb                           dpkg-buildpackage -b: $(O)/deb/*.deb
#
# Layout (PREFIX=/usr, as the packages install it):
#   /usr/bin/idnctl /usr/bin/idn-stamp /usr/sbin/idnd /usr/sbin/idn-agent
#   /usr/lib/idn/bpf/*.bpf.o   the dataplane's BPF objects, for inspection and
#                              other loaders (bpftool, ip link ... obj); idnctl
#                              and idn-stamp embed them as skeletons and need
#                              no file at run time
#   /usr/lib/idn/idn_res_cuda.so  the agent's CUDA plugin (where nvcc built it;
#                              the agent looks there, agent/residency.c)
#   SYSCONFDIR/idn/{idnd,agent,dataplane}.conf   default configuration (INI,
#                              docs/operator.md); never overwritten by install
#   SYSTEMDUNITDIR: idnd.service idn-agent.service idn-dataplane@.service
#                   idn-watcher.service idn-exporter.service (dist/systemd/*.in,
#                   paths substituted)
#   BASHCOMPDIR/idnctl         generated from idnctl's grammar (dist/gen-completion.sh)
#   MANDIR/man8, DOCDIR        man pages, docs/*.md, README.md
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
IDN_LIBDIR ?= $(LIBDIR)/idn
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/idn
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SYSTEMDUNITDIR ?= $(LIBDIR)/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
DKMS_VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\{0,1\}\([^"]*\)"\{0,1\}/\1/p' kernel/dkms.conf)
DKMSSRCDIR ?= $(PREFIX)/src/idn-$(DKMS_VERSION)
INSTALL ?= install

IDN_SHIP_BPF := $(filter $(O)/bpf/idn_steer.bpf.o $(O)/bpf/idn_node.bpf.o \
	$(O)/bpf/idn_stamp.bpf.o $(O)/bpf/idn_pass.bpf.o,$(BPF_OBJS))
IDN_UNITS := idnd.service idn-agent.service idn-dataplane@.service idn-watcher.service \
	idn-exporter.service
IDN_UNIT_OUT := $(addprefix $(O)/dist/,$(IDN_UNITS))
IDN_COMPLETION := $(O)/dist/idnctl.bash

ALL_TARGETS += $(IDN_UNIT_OUT) $(IDN_COMPLETION)

# the agent finds its CUDA plugin under IDN_LIBDIR (after $IDN_AGENT_CUDA_SO
# and the executable's own directory)
AGENT_CFLAGS += -DIDN_LIBDIR='"$(IDN_LIBDIR)"'

$(O)/dist:
	$(Q)mkdir -p $@

$(O)/dist/%: dist/systemd/%.in Makefile dist/build.mk | $(O)/dist
	$(call msg,GEN,$@)
	$(Q)sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SBINDIR@|$(SBINDIR)|g' \
		-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $< > $@

$(IDN_COMPLETION): dist/gen-completion.sh $(IDNCTL) | $(O)/dist
	$(call msg,GEN,$@)
	$(Q)dist/gen-completion.sh $(IDNCTL) > $@

.PHONY: install install-dataplane install-idnd install-agent install-dkms deb dist-programs

# what the packages ship, without the tests and benchmarks (debian/rules)
dist-programs: $(IDNCTL) $(O)/idn-stamp $(IDND) $(AGENT) $(AGENT_CUDA) $(IDN_SHIP_BPF) \
	$(IDN_UNIT_OUT) $(IDN_COMPLETION)

install: install-dataplane install-idnd install-agent install-dkms

# $(1): file, $(2): directory, $(3): mode -- a config file is installed only
# where none is (an operator's edits survive make install)
define idn_conf
	$(Q)$(INSTALL) -d $(DESTDIR)$(2)
	$(Q)[ -e $(DESTDIR)$(2)/$(notdir $(1)) ] || $(INSTALL) -m $(3) $(1) $(DESTDIR)$(2)/
endef

install-dataplane: $(IDNCTL) $(O)/idn-stamp $(IDN_SHIP_BPF) $(IDN_UNIT_OUT) $(IDN_COMPLETION)
	$(call msg,INSTALL,idn-dataplane -> $(DESTDIR)$(PREFIX))
	$(Q)$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(IDN_LIBDIR)/bpf $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(DOCDIR)
	$(Q)$(INSTALL) -m 0755 $(IDNCTL) $(O)/idn-stamp $(DESTDIR)$(BINDIR)/
	$(Q)$(INSTALL) -m 0644 $(IDN_SHIP_BPF) $(DESTDIR)$(IDN_LIBDIR)/bpf/
	$(Q)$(INSTALL) -m 0644 docs/idnctl.8 docs/idn-stamp.8 $(DESTDIR)$(MANDIR)/man8/
	$(Q)$(INSTALL) -m 0644 $(O)/dist/idn-dataplane@.service $(O)/dist/idn-exporter.service \
		$(DESTDIR)$(SYSTEMDUNITDIR)/
	$(Q)$(INSTALL) -m 0644 $(IDN_COMPLETION) $(DESTDIR)$(BASHCOMPDIR)/idnctl
	$(Q)$(INSTALL) -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	$(call idn_conf,dist/etc/dataplane.conf,$(SYSCONFDIR)/idn,0644)

install-idnd: $(IDND) $(IDN_UNIT_OUT)
	$(call msg,INSTALL,idnd -> $(DESTDIR)$(PREFIX))
	$(Q)$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSTEMDUNITDIR)
	$(Q)$(INSTALL) -m 0755 $(IDND) $(DESTDIR)$(SBINDIR)/
	$(Q)$(INSTALL) -m 0644 docs/idnd.8 $(DESTDIR)$(MANDIR)/man8/
	$(Q)$(INSTALL) -m 0644 $(O)/dist/idnd.service $(O)/dist/idn-watcher.service \
		$(DESTDIR)$(SYSTEMDUNITDIR)/
	$(call idn_conf,dist/etc/idnd.conf,$(SYSCONFDIR)/idn,0644)
	$(call idn_conf,dist/etc/watcher.conf,$(SYSCONFDIR)/idn,0644)

install-agent: $(AGENT) $(IDN_UNIT_OUT)
	$(call msg,INSTALL,idn-agent -> $(DESTDIR)$(PREFIX))
	$(Q)$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSTEMDUNITDIR)
	$(Q)$(INSTALL) -m 0755 $(AGENT) $(DESTDIR)$(SBINDIR)/
	$(Q)if [ -f $(O)/idn_res_cuda.so ]; then $(INSTALL) -d $(DESTDIR)$(IDN_LIBDIR) && \
		$(INSTALL) -m 0644 $(O)/idn_res_cuda.so $(DESTDIR)$(IDN_LIBDIR)/; fi
	$(Q)$(INSTALL) -m 0644 docs/idn-agent.8 $(DESTDIR)$(MANDIR)/man8/
	$(Q)$(INSTALL) -m 0644 $(O)/dist/idn-agent.service $(DESTDIR)$(SYSTEMDUNITDIR)/
	$(call idn_conf,dist/etc/agent.conf,$(SYSCONFDIR)/idn,0644)

# idn.ko's sources for DKMS (kernel/dkms.conf); the header it shares with
# userspace travels inside the tree as include/uapi/linux/idn*.h
install-dkms:
	$(call msg,INSTALL,idn-dkms -> $(DESTDIR)$(DKMSSRCDIR))
	$(Q)$(INSTALL) -d $(DESTDIR)$(DKMSSRCDIR)/include/uapi/linux
	$(Q)$(INSTALL) -m 0644 kernel/*.c kernel/*.h kernel/Kbuild kernel/Makefile kernel/dkms.conf \
		$(DESTDIR)$(DKMSSRCDIR)/
	$(Q)$(INSTALL) -m 0644 include/uapi/linux/idn*.h $(DESTDIR)$(DKMSSRCDIR)/include/uapi/linux/
	$(call idn_conf,dist/dkms/idn-sign.conf,$(SYSCONFDIR)/dkms/framework.conf.d,0644)

deb:
	$(Q)dist/make-deb.sh $(O)
# ---- end dist ---------------------------------------------------------------
