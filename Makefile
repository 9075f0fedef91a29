# aistack: one non-recursive Makefile.
#
#   make            build every command into $(BUILD)/bin
#   make check      install missing packages, build, run every test
#   make demo       install missing packages, build, run the learning flow
#   make bench      optimised build, benchmarks side by side with baselines
#   make install    PREFIX=/usr/local DESTDIR=
#   make deb        the Debian package, lintian-checked, into build-deb/
#   make package-check  build it, install it, use it, purge it (root; .ci/run)
#   make SANITIZE=1 check   the same suite under ASan + UBSan (build-san/)
#   make analyse    cppcheck, clang-tidy, shellcheck, valgrind of the unit tests
#   make fuzz       libFuzzer targets (clang) into build-fuzz/; make fuzz-smoke
#                   runs each for FUZZ_TIME (60) seconds (fuzz/README.md)

VERSION    = 0.1.0
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
MANDIR    ?= $(PREFIX)/share/man
DATADIR   ?= $(PREFIX)/share
UNITDIR   ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
DOCDIR    ?= $(DATADIR)/doc/aistack
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR  ?= $(DATADIR)/zsh/vendor-completions
FISHCOMPDIR ?= $(DATADIR)/fish/vendor_completions.d

CC        ?= cc
SANITIZE  ?=
ifeq ($(SANITIZE),1)
BUILD     ?= build-san
OPTFLAGS   = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=undefined
SANLDFLAGS = -fsanitize=address,undefined
else
BUILD     ?= build
OPTFLAGS   = -O2 -g -D_FORTIFY_SOURCE=2
SANLDFLAGS =
endif

WARNFLAGS  = -Wall -Wextra -Wshadow -Wformat=2 -Wformat-security \
             -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
             -Wwrite-strings -Wvla -Wnull-dereference -Wimplicit-fallthrough \
             -Wdeclaration-after-statement \
             -Werror=implicit-function-declaration
HARDFLAGS  = -fstack-protector-strong -fPIE -fstack-clash-protection
AS_CFLAGS  = -std=gnu11 -D_GNU_SOURCE -DAISTACK_VERSION='"$(VERSION)"' -Ilib \
             $(OPTFLAGS) $(WARNFLAGS) $(HARDFLAGS) $(CPPFLAGS) $(CFLAGS)
AS_LDFLAGS = -pie -Wl,-z,relro,-z,now -Wl,--as-needed $(SANLDFLAGS) $(LDFLAGS)

# "make V=1" shows the commands
Q          = $(if $(V),,@)
say        = $(if $(V),,@printf '  %-6s %s\n' $(1) $(2);)

# pkg-config runs when a recipe runs (recursive variables), so flags are
# found even when "make deps" installed the packages a moment before.
pkgcflags  = $(shell pkg-config --cflags $(1) 2>/dev/null)
pkglibs    = $(shell pkg-config --libs $(1) 2>/dev/null)

# --- the library: lib/FOLDER/NAME.c, layered (lib/*/README) ------------
LIB_BASE    = err parse buf clock fsutil lock statedir config metrics sig
LIB_FORMAT  = json jsonget stream reader consumer
LIB_SRCS   := $(wildcard lib/*/*.c)
LIB_HDRS   := $(wildcard lib/*/*.h)
# every module, by name (lib/FOLDER/NAME.c)
LIB_ALL     = $(notdir $(basename $(LIB_SRCS)))

# --- each command links only what it uses ----------------------------------
# cmd_X = library modules;  pkg_X = pkg-config packages
cmd_aistack-ingest      = $(LIB_BASE) $(LIB_FORMAT) canon keypath dedupkey pqdl pg follow
pkg_aistack-ingest      = jansson zlib libcrypto
cmd_aistack-checkpoint  = $(LIB_BASE) $(LIB_FORMAT) consumerlock stateview breaker
pkg_aistack-checkpoint  = jansson zlib
cmd_aistack-dedup       = $(LIB_BASE) $(LIB_FORMAT) canon keypath dedupkey digestset minhash keystore
pkg_aistack-dedup       = jansson zlib libcrypto
cmd_aistack-rotate      = $(LIB_BASE) $(LIB_FORMAT) gzfile retention copytrunc rotcopy follow
pkg_aistack-rotate      = jansson zlib
cmd_aistack-breaker     = $(LIB_BASE) breaker pqdl probe stateview stream consumer jsonget
pkg_aistack-breaker     = jansson
cmd_aistack-proxy       = $(LIB_BASE) $(LIB_FORMAT) breaker ratelimit siphash connlimit httpclient route promtext prommerge stateview stateview_dedup stateprom keystore digestset minhash
pkg_aistack-proxy       = jansson zlib libcurl libmicrohttpd libcrypto
PKG_ALL     = jansson zlib libcurl libpq libcrypto libmicrohttpd

# A command is cmd/aistack-NAME.c, or the folder cmd/NAME/ whose *.c files
# (its rooms) make the one binary aistack-NAME.
CMD_FILES  := $(patsubst cmd/%.c,%,$(wildcard cmd/aistack-*.c))
CMD_DIRS   := $(patsubst cmd/%/,aistack-%,$(sort $(dir $(wildcard cmd/*/*.c))))
COMMANDS   := $(sort $(CMD_FILES) $(CMD_DIRS))
# a command's own objects
cmd_objs    = $(if $(wildcard cmd/$(1).c),$(BUILD)/cmd/$(1).o,\
              $(patsubst cmd/%.c,$(BUILD)/cmd/%.o,$(wildcard cmd/$(patsubst aistack-%,%,$(1))/*.c)))
CMD_HDRS    = $(wildcard cmd/*/*.h)
# Objects a command's build makes for it: aistack-proxy carries the
# dashboard (dashboard/*, assembled in with .incbin by cmd/proxy/embed.sh).
DASH_FILES  = $(sort $(wildcard dashboard/*))
cmdgen_aistack-proxy = $(BUILD)/gen/proxy-dashboard.o
# The pure rooms of commands (no I/O, no command's struct): tests/unit
# links them beside lib/ (README, "The tree").
UNIT_CMD    = proxy/logline proxy/shed proxy/token
UNIT_CMD_OBJS = $(addprefix $(BUILD)/cmd/,$(addsuffix .o,$(UNIT_CMD)))
BINS        = $(addprefix $(BUILD)/bin/,$(COMMANDS))
MANPAGES    = $(wildcard man/*.[1-8])

# modules a command names but that do not exist yet are left out
objs_of     = $(patsubst lib/%.c,$(BUILD)/lib/%.o,\
              $(filter $(addprefix lib/%/,$(addsuffix .c,$(1))),$(LIB_SRCS)))

all: $(BINS)

$(BUILD)/lib/%.o: lib/%.c $(LIB_HDRS) | $(BUILD)/lib
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(AS_CFLAGS) $(call pkgcflags,$(PKG_ALL)) -c $< -o $@

$(BUILD)/cmd/%.o: cmd/%.c $(LIB_HDRS) $(CMD_HDRS) | $(BUILD)/cmd
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(AS_CFLAGS) $(call pkgcflags,$(PKG_ALL)) -c $< -o $@

.SECONDARY:
.SECONDEXPANSION:
$(BUILD)/gen/proxy-dashboard.c: cmd/proxy/embed.sh $(DASH_FILES) | $(BUILD)/gen
	$(call say,GEN,$@)sh cmd/proxy/embed.sh $(DASH_FILES) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/proxy-dashboard.o: $(BUILD)/gen/proxy-dashboard.c cmd/proxy/embed.h $(DASH_FILES)
	$(call say,CC,$<)$(CC) $(AS_CFLAGS) -Icmd/proxy -c $< -o $@

$(BUILD)/bin/%: $$(call cmd_objs,$$*) $$(cmdgen_$$*) $$(call objs_of,$$(cmd_$$*)) | $(BUILD)/bin
	$(call say,LD,$@)$(CC) $(AS_CFLAGS) $^ -o $@ $(AS_LDFLAGS) $(call pkglibs,$(pkg_$*)) -lm

$(BUILD)/lib $(BUILD)/cmd $(BUILD)/bin $(BUILD)/tests $(BUILD)/gen:
	mkdir -p $@

# --- tests -----------------------------------------------------------------
UNIT_SRCS   = $(wildcard tests/unit/test_*.c)
UNIT_OBJS   = $(patsubst tests/unit/%.c,$(BUILD)/tests/%.o,$(UNIT_SRCS))

$(BUILD)/tests/%.o: tests/unit/%.c tests/unit/unit.h $(LIB_HDRS) $(CMD_HDRS) | $(BUILD)/tests
	$(call say,CC,$<)$(CC) $(AS_CFLAGS) -Icmd -Wno-missing-prototypes $(call pkgcflags,$(PKG_ALL)) -c $< -o $@

$(BUILD)/bin/unit-tests: $(BUILD)/tests/unit.o $(UNIT_OBJS) $(UNIT_CMD_OBJS) $(call objs_of,$(LIB_ALL)) | $(BUILD)/bin
	$(call say,LD,$@)$(CC) $(AS_CFLAGS) $^ -o $@ $(AS_LDFLAGS) $(call pkglibs,$(PKG_ALL)) -lm -lpthread

# --- proof: fuzzing, fault injection, analysers (fuzz/README.md) ------------
# Each fuzz/fuzz_NAME.c is a libFuzzer target.  The normal build links it
# with fuzz/replay.c into $(BUILD)/fuzz/replay-NAME, which tests/fuzz.bats
# runs over fuzz/corpus/NAME; "make fuzz" builds the libFuzzer binaries
# with clang into build-fuzz/fuzz/fuzz-NAME; "make fuzz-smoke" runs each
# for FUZZ_TIME seconds.  $(BUILD)/lib/libfault.so is the LD_PRELOAD
# library of tests/fault.bats (never sanitized: it runs in front of ASan).
FUZZ_TARGETS = $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_REPLAYS = $(addprefix $(BUILD)/fuzz/replay-,$(FUZZ_TARGETS))
FUZZ_CC     ?= clang
FUZZ_TIME   ?= 60
FUZZ_SAN     = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
               -fno-omit-frame-pointer
# each target links the foundation and the modules it names
fuzz_mods    = $(LIB_BASE) $(LIB_FORMAT) $(fuzzmods_$(1))
fuzzmods_breaker = breaker
fuzzmods_route = route
fuzzmods_canon = canon
fuzzmods_keypath = keypath canon
fuzzmods_dedupkey = dedupkey keypath canon

$(BUILD)/fuzz:
	mkdir -p $@

$(BUILD)/fuzz/%.o: fuzz/%.c fuzz/fuzz.h $(LIB_HDRS) | $(BUILD)/fuzz
	$(call say,CC,$<)$(CC) $(AS_CFLAGS) $(call pkgcflags,$(PKG_ALL)) -c $< -o $@

$(BUILD)/fuzz/replay-%: $(BUILD)/fuzz/fuzz_%.o $(BUILD)/fuzz/replay.o \
    $$(call objs_of,$$(call fuzz_mods,$$*)) | $(BUILD)/fuzz
	$(call say,LD,$@)$(CC) $(AS_CFLAGS) $^ -o $@ $(AS_LDFLAGS) $(call pkglibs,$(PKG_ALL)) -lm -lpthread

$(BUILD)/fuzz/fuzz-%: $(BUILD)/fuzz/fuzz_%.o $$(call objs_of,$$(call fuzz_mods,$$*)) \
    | $(BUILD)/fuzz
	$(call say,LD,$@)$(CC) $(AS_CFLAGS) -fsanitize=fuzzer $^ -o $@ $(AS_LDFLAGS) $(call pkglibs,$(PKG_ALL)) -lm -lpthread

$(BUILD)/lib/libfault.so: tests/fault/libfault.c | $(BUILD)/lib
	$(call say,CC,$<)$(CC) -std=gnu11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -fPIC -shared $< -o $@ -ldl

replays: $(FUZZ_REPLAYS) $(BUILD)/lib/libfault.so

fuzz:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=$(FUZZ_CC) \
	    OPTFLAGS="-O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link" \
	    SANLDFLAGS="$(FUZZ_SAN)" \
	    $(addprefix build-fuzz/fuzz/fuzz-,$(FUZZ_TARGETS))

# New inputs go to build-fuzz/corpus/NAME; "make fuzz-merge" adds the ones
# that reach new code to the committed corpus.
fuzz-smoke: fuzz
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p build-fuzz/corpus/$$t build-fuzz/crash/$$t; \
	    dict=; [ -f fuzz/$$t.dict ] && dict=-dict=fuzz/$$t.dict; \
	    echo "fuzz-$$t: $(FUZZ_TIME) s"; \
	    build-fuzz/fuzz/fuzz-$$t -max_total_time=$(FUZZ_TIME) -max_len=16384 \
	        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 $$dict \
	        -artifact_prefix=build-fuzz/crash/$$t/ \
	        build-fuzz/corpus/$$t fuzz/corpus/$$t 2>build-fuzz/$$t.log || \
	        { tail -n 40 build-fuzz/$$t.log; exit 1; }; \
	    grep -E '^stat::number_of_executed_units|^Done' build-fuzz/$$t.log; \
	done

fuzz-merge: fuzz
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p build-fuzz/corpus/$$t; \
	    build-fuzz/fuzz/fuzz-$$t -merge=1 -max_len=16384 fuzz/corpus/$$t \
	        build-fuzz/corpus/$$t 2>/dev/null; \
	done

# cppcheck, clang-tidy, shellcheck and valgrind (tests/analyse)
analyse: all $(BUILD)/bin/unit-tests
	@AISTACK_BIN=$(abspath $(BUILD)/bin) tests/analyse

deps:
	@sh tests/deps.sh

check: deps
	@$(MAKE) --no-print-directory test

# The whole suite without the package check (what "check" runs).
test: all $(BUILD)/bin/unit-tests replays
	@AISTACK_BIN=$(abspath $(BUILD)/bin) SANITIZE=$(SANITIZE) tests/run

demo: deps
	@$(MAKE) --no-print-directory all
	@AISTACK_BIN=$(abspath $(BUILD)/bin) examples/demo.sh

bench: deps
	@$(MAKE) --no-print-directory BUILD=build-bench CFLAGS="-O3 -march=native" all
	@AISTACK_BIN=$(abspath build-bench/bin) bench/run

# Files whose paths are filled in as they are installed: units, drop-ins.
subst       = sed 's|@BINDIR@|$(BINDIR)|g; s|@DATADIR@|$(DATADIR)|g'
PROM_RULES  = $(wildcard prometheus/aistack.rules.yml prometheus/aistack.rules.test.yml)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 \
	    $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) \
	    $(DESTDIR)$(FISHCOMPDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(DOCDIR)/examples \
	    $(DESTDIR)$(DATADIR)/aistack
	install -m 0755 $(BINS) $(DESTDIR)$(BINDIR)
	install -m 0755 examples/learning-flow.sh $(DESTDIR)$(DATADIR)/aistack/
	install -m 0644 examples/extract.jq $(DESTDIR)$(DATADIR)/aistack/
	$(if $(PROM_RULES),install -d $(DESTDIR)$(DATADIR)/aistack/prometheus)
	$(if $(PROM_RULES),install -m 0644 $(PROM_RULES) $(DESTDIR)$(DATADIR)/aistack/prometheus/)
	for m in $(MANPAGES); do \
	    install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}; done
	for c in $(COMMANDS); do \
	    install -m 0644 completions/bash/$$c $(DESTDIR)$(BASHCOMPDIR)/$$c; \
	    install -m 0644 completions/zsh/_$$c $(DESTDIR)$(ZSHCOMPDIR)/_$$c; \
	    install -m 0644 completions/fish/$$c.fish $(DESTDIR)$(FISHCOMPDIR)/$$c.fish; \
	done
	for u in $(wildcard systemd/*.service systemd/*.timer); do \
	    $(subst) $$u > $(DESTDIR)$(UNITDIR)/$${u##*/}; \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/}; done
	install -m 0644 systemd/aistack.sysusers $(DESTDIR)$(SYSUSERSDIR)/aistack.conf
	$(subst) systemd/aistack-rotate-logs.conf > $(DESTDIR)$(DOCDIR)/examples/aistack-rotate-logs.conf
	chmod 0644 $(DESTDIR)$(DOCDIR)/examples/aistack-rotate-logs.conf

# The Debian package (debian/): built by dpkg-buildpackage in a copy of
# the tree under build-deb/, so that neither the tree nor its parent
# directory gets build products, then checked by lintian.  The copy holds
# the tracked and untracked-but-not-ignored files (the tree itself when
# it is not a git checkout).  DEB_BUILD_OPTIONS passes through
# (nocheck, parallel=N).
DEBSRC      = build-deb/aistack-$(VERSION)
DEB         = build-deb/aistack_$(VERSION)_$(shell dpkg --print-architecture 2>/dev/null || echo amd64).deb

deb: deps
	rm -rf build-deb && mkdir -p $(DEBSRC)
	if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then \
	    git ls-files -z --cached --others --exclude-standard | \
	        xargs -0 sh -c 'for f; do [ -e "$$f" ] && printf "%s\0" "$$f"; done' sh | \
	        tar --null -T - -cf - | tar -xf - -C $(DEBSRC); \
	else \
	    tar --exclude='./build*' -cf - . | tar -xf - -C $(DEBSRC); \
	fi
	cd $(DEBSRC) && dpkg-buildpackage -us -uc -b
	lintian --fail-on error,warning --info build-deb/aistack_$(VERSION)_*.changes
	@echo "$(DEB)"

# Installs the package on this machine, uses it and purges it: run it as
# root on a machine of its own (CI), never where aistack is installed.
package-check: deb
	@DEB=$(abspath $(DEB)) tests/run package/package

clean:
	rm -rf build build-san build-bench build-fuzz build-deb

.PHONY: all check test demo bench install deps clean replays fuzz fuzz-smoke \
        fuzz-merge analyse deb package-check
