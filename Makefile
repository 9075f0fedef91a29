# aistack: one non-recursive Makefile.
#
#   make            build every command into $(BUILD)/bin
#   make check      install missing packages, build, run every test
#   make demo       install missing packages, build, run the learning flow
#   make bench      optimised build, benchmarks side by side with baselines
#   make install    PREFIX=/usr/local DESTDIR=
#   make SANITIZE=1 check   the same suite under ASan + UBSan (build-san/)

VERSION    = 0.1.0
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
MANDIR    ?= $(PREFIX)/share/man
DATADIR   ?= $(PREFIX)/share
UNITDIR   ?= $(PREFIX)/lib/systemd/system
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
             -Werror=implicit-function-declaration
HARDFLAGS  = -fstack-protector-strong -fPIE -fstack-clash-protection
AS_CFLAGS  = -std=gnu11 -D_GNU_SOURCE -DAISTACK_VERSION='"$(VERSION)"' -Ilib \
             $(OPTFLAGS) $(WARNFLAGS) $(HARDFLAGS) $(CFLAGS)
AS_LDFLAGS = -pie -Wl,-z,relro,-z,now -Wl,--as-needed $(SANLDFLAGS) $(LDFLAGS)

# "make V=1" shows the commands
Q          = $(if $(V),,@)
say        = $(if $(V),,@printf '  %-6s %s\n' $(1) $(2);)

# pkg-config runs when a recipe runs (recursive variables), so flags are
# found even when "make deps" installed the packages a moment before.
pkgcflags  = $(shell pkg-config --cflags $(1) 2>/dev/null)
pkglibs    = $(shell pkg-config --libs $(1) 2>/dev/null)

# --- the library, by layer: base -> formats -> policies ---------------------
LIB_BASE    = err parse buf fsutil lock statedir config metrics
LIB_FORMAT  = json stream reader consumer
LIB_ALL     = $(patsubst lib/%.c,%,$(wildcard lib/*.c))

# --- each command links only what it uses ----------------------------------
# cmd_X = library modules;  pkg_X = pkg-config packages
cmd_aistack-ingest      = $(LIB_BASE) $(LIB_FORMAT) pg
pkg_aistack-ingest      = jansson zlib libpq libcrypto
cmd_aistack-checkpoint  = $(LIB_BASE) $(LIB_FORMAT) consumerlock
pkg_aistack-checkpoint  = jansson zlib
cmd_aistack-dedup       = $(LIB_BASE) $(LIB_FORMAT) canon keypath digestset minhash
pkg_aistack-dedup       = jansson zlib libcrypto
cmd_aistack-rotate      = $(LIB_BASE) $(LIB_FORMAT) gzfile retention copytrunc
pkg_aistack-rotate      = jansson zlib
cmd_aistack-breaker     = $(LIB_BASE) breaker probe
pkg_aistack-breaker     = jansson
cmd_aistack-proxy       = $(LIB_BASE) $(LIB_FORMAT) breaker ratelimit httpclient
pkg_aistack-proxy       = jansson zlib libcurl libmicrohttpd
PKG_ALL     = jansson zlib libcurl libpq libcrypto libmicrohttpd

COMMANDS   := $(patsubst cmd/%.c,%,$(wildcard cmd/aistack-*.c))
BINS        = $(addprefix $(BUILD)/bin/,$(COMMANDS))
MANPAGES    = $(wildcard man/*.[1-8])

# modules a command names but that do not exist yet are left out
objs_of     = $(addprefix $(BUILD)/lib/,$(addsuffix .o,$(filter $(LIB_ALL),$(1))))

all: $(BINS)

$(BUILD)/lib/%.o: lib/%.c $(wildcard lib/*.h) | $(BUILD)/lib
	$(call say,CC,$<)$(CC) $(AS_CFLAGS) $(call pkgcflags,$(PKG_ALL)) -c $< -o $@

$(BUILD)/cmd/%.o: cmd/%.c $(wildcard lib/*.h) | $(BUILD)/cmd
	$(call say,CC,$<)$(CC) $(AS_CFLAGS) $(call pkgcflags,$(PKG_ALL)) -c $< -o $@

.SECONDARY:
.SECONDEXPANSION:
$(BUILD)/bin/%: $(BUILD)/cmd/%.o $$(call objs_of,$$(cmd_$$*)) | $(BUILD)/bin
	$(call say,LD,$@)$(CC) $(AS_CFLAGS) $^ -o $@ $(AS_LDFLAGS) $(call pkglibs,$(pkg_$*)) -lm

$(BUILD)/lib $(BUILD)/cmd $(BUILD)/bin $(BUILD)/tests:
	mkdir -p $@

# --- tests -----------------------------------------------------------------
UNIT_SRCS   = $(wildcard tests/unit/test_*.c)
UNIT_OBJS   = $(patsubst tests/unit/%.c,$(BUILD)/tests/%.o,$(UNIT_SRCS))

$(BUILD)/tests/%.o: tests/unit/%.c tests/unit/unit.h $(wildcard lib/*.h) | $(BUILD)/tests
	$(call say,CC,$<)$(CC) $(AS_CFLAGS) -Wno-missing-prototypes $(call pkgcflags,$(PKG_ALL)) -c $< -o $@

$(BUILD)/bin/unit-tests: $(BUILD)/tests/unit.o $(UNIT_OBJS) $(call objs_of,$(LIB_ALL)) | $(BUILD)/bin
	$(call say,LD,$@)$(CC) $(AS_CFLAGS) $^ -o $@ $(AS_LDFLAGS) $(call pkglibs,$(PKG_ALL)) -lm -lpthread

deps:
	@sh tests/deps.sh

check: deps
	@$(MAKE) --no-print-directory test

# The whole suite without the package check (what "check" runs).
test: all $(BUILD)/bin/unit-tests
	@AISTACK_BIN=$(abspath $(BUILD)/bin) SANITIZE=$(SANITIZE) tests/run

demo: deps
	@$(MAKE) --no-print-directory all
	@AISTACK_BIN=$(abspath $(BUILD)/bin) examples/demo.sh

bench: deps
	@$(MAKE) --no-print-directory BUILD=build-bench CFLAGS="-O3 -march=native" all
	@AISTACK_BIN=$(abspath build-bench/bin) bench/run

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 \
	    $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) \
	    $(DESTDIR)$(FISHCOMPDIR) $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BINS) $(DESTDIR)$(BINDIR)
	for m in $(MANPAGES); do \
	    install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}; done
	for c in $(COMMANDS); do \
	    install -m 0644 completions/bash/$$c $(DESTDIR)$(BASHCOMPDIR)/$$c; \
	    install -m 0644 completions/zsh/_$$c $(DESTDIR)$(ZSHCOMPDIR)/_$$c; \
	    install -m 0644 completions/fish/$$c.fish $(DESTDIR)$(FISHCOMPDIR)/$$c.fish; \
	done
	for u in $(wildcard systemd/*.service systemd/*.timer); do \
	    sed 's|@BINDIR@|$(BINDIR)|g' $$u > $(DESTDIR)$(UNITDIR)/$${u##*/}; \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/}; done

clean:
	rm -rf build build-san build-bench build-fuzz

.PHONY: all check test demo bench install deps clean
