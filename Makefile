# easyflow -- one non-recursive GNU make file.
#
#   make            build build/easyflow
#   make run        install what is missing, start private PostgreSQL + Redis,
#                   migrate, serve the demo bot
#   make test       the same set-up, then unit tests and end-to-end tests on an
#                   ASan+UBSan build
#   make bench      figures of the -O2 build against a stack of its own (durable
#                   PostgreSQL, Redis, fake Bot API, wrk), each printed with its
#                   verification, never asserted (docs/performance.md)
#   make install    PREFIX=/usr/local DESTDIR=
#
# SANITIZER=address builds into build-address/ (ASan+UBSan); SANITIZER=thread
# into build-thread/.

PKGS := libwebsockets libcurl libpq hiredis json-c libpcre2-8 libcrypto yaml-0.1 libsodium hunspell
DEBIAN_PKGS := libwebsockets-dev libwebsockets-evlib-ev libev-dev libcurl4-openssl-dev libpq-dev \
               libhiredis-dev libjson-c-dev \
               libpcre2-dev libssl-dev libyaml-dev libsodium-dev libcmocka-dev \
               libhunspell-dev hunspell-ru hunspell-en-us

ifneq ($(MAKECMDGOALS),deps)
ifneq ($(shell pkg-config --exists $(PKGS) && echo yes),yes)
$(warning missing libraries; run 'scripts/deps.sh' or: apt-get install $(DEBIAN_PKGS))
endif
endif

CC ?= cc
CFLAGS ?= -O2 -g
PREFIX ?= /usr/local
SANITIZER ?=

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
        -Wno-missing-field-initializers
INCS := -Isrc
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS := $(CFLAGS) -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -MMD -MP $(WARN) \
              $(INCS) $(PKG_CFLAGS) -DEF_DEFAULT_SQL_DIR='"$(PREFIX)/share/easyflow/sql"'
# libev has no pkg-config file in Debian.
LDLIBS := $(PKG_LIBS) -lev -lssl -lpthread -lm

# Hardening, every build: stack protector, PIE, full RELRO (the GOT read-only
# after start-up, every symbol bound at load). _FORTIFY_SOURCE=2 only in the
# plain build and only when CFLAGS optimise (glibc needs -O1 or more and
# warns, an error under -Werror, without): under ASan the __*_chk variants
# it substitutes are not intercepted, so fortify would hide the accesses the
# sanitizer checks (set below, after the sanitizer choice).
HARDEN_CFLAGS := -fstack-protector-strong -fPIE
HARDEN_LDFLAGS := -pie -Wl,-z,relro,-z,now
FORTIFY_CFLAGS := -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2
ALL_CFLAGS += $(HARDEN_CFLAGS)
LDFLAGS += $(HARDEN_LDFLAGS)

ifeq ($(SANITIZER),address)
BUILD := build-address
ALL_CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
else ifeq ($(SANITIZER),thread)
BUILD := build-thread
ALL_CFLAGS += -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS += -fsanitize=thread
else
BUILD := build
endif
# FUZZ=1 (used by the fuzz targets below, with CC=clang): libFuzzer
# instrumentation plus ASan+UBSan, and -DEF_FUZZING.
ifeq ($(FUZZ),1)
BUILD := build-fuzz
ALL_CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
              -fno-omit-frame-pointer -DEF_FUZZING
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SANITIZER)$(FUZZ),)
ifneq ($(filter -O -O1 -O2 -O3 -Os -Og -Ofast,$(CFLAGS)),)
ALL_CFLAGS += $(FORTIFY_CFLAGS)
endif
endif
# BUILDDIR=dir overrides where objects go (parallel work in one tree).
ifneq ($(BUILDDIR),)
BUILD := $(BUILDDIR)
endif

SRCS := $(sort $(wildcard src/*/*.c))
LIB_SRCS := $(filter-out src/gateway/main.c,$(SRCS))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
MAIN_OBJ := $(BUILD)/src/gateway/main.o
LIB := $(BUILD)/libef.a
BIN := $(BUILD)/easyflow

UNIT_SRCS := $(sort $(wildcard tests/unit/*/test_*.c))
UNIT_BINS := $(UNIT_SRCS:%.c=$(BUILD)/%)
BENCH_SRCS := $(sort $(wildcard tests/bench/bench_*.c))
BENCH_BINS := $(BENCH_SRCS:%.c=$(BUILD)/%)

.PHONY: all test test-unit test-e2e run bench bench-run fuzz fuzz-bins fuzz-check clean install deps services-stop lint \
        format-check unit-bins valgrind
all: $(BIN)

# Every object depends on the flags, so changing a flag rebuilds.
$(BUILD)/.flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(LDLIBS)' | cmp -s - $@ || \
	  echo '$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(LDLIBS)' > $@
FORCE:

$(BUILD)/%.o: %.c $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(MAIN_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(MAIN_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(LIB) $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(shell pkg-config --cflags cmocka) -o $@ $< $(LIB) \
	  $(LDFLAGS) $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tests/bench/%: tests/bench/%.c $(LIB) $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

deps:
	@scripts/deps.sh

unit-bins: $(UNIT_BINS)

# `make test` always runs on the sanitizer build.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

test: deps
	$(MAKE) --no-print-directory SANITIZER=address -j$(JOBS) all unit-bins
	$(MAKE) --no-print-directory SANITIZER=address test-unit
	$(MAKE) --no-print-directory SANITIZER=address test-e2e
	$(MAKE) --no-print-directory fuzz-check

test-unit: $(UNIT_BINS)
	@scripts/run-unit.sh $(UNIT_BINS)

test-e2e: $(BIN)
	@EF_BIN=$(abspath $(BIN)) python3 tests/e2e/run.py

# deps first, then a fresh make: on a new machine the library flags are only
# known once the packages are installed.
run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run.sh $(abspath $(BIN))

bench: deps
	@$(MAKE) --no-print-directory bench-run

# The figures describe what users run: the -O2 build, never a sanitizer one.
bench-run: $(BIN) $(BENCH_BINS)
	@if [ -n "$(SANITIZER)$(FUZZ)" ]; then \
	  echo "make bench measures the -O2 build: run it without SANITIZER/FUZZ" >&2; exit 2; fi
	@EF_BIN=$(abspath $(BIN)) scripts/bench.sh $(BENCH_BINS)

FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB) $(BUILD)/.flags
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

fuzz-bins: $(FUZZ_BINS)

# Replays every corpus once (seconds); part of `make test` when clang is
# installed. `make fuzz T=tg_update SECS=300` explores; crashers it finds
# belong in tests/fuzz/corpus/<target>/.
fuzz-check:
	@if command -v clang >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory CC=clang FUZZ=1 -j$(JOBS) fuzz-bins && \
	  scripts/fuzz.sh check build-fuzz/fuzz; \
	else echo "fuzz-check: clang not installed, skipped"; fi

fuzz:
	$(MAKE) --no-print-directory CC=clang FUZZ=1 -j$(JOBS) fuzz-bins
	scripts/fuzz.sh run build-fuzz/fuzz $(T) $(SECS)

# `make valgrind`: the plain build (no sanitizer: valgrind and ASan do not
# mix) under memcheck: the unit tests of base/nlp/store that need neither a
# database nor ASan, then one gateway scenario (the demo bot answering in
# Russian and English over the Telegram webhook: ingest, NLP, FSM, replies
# sent, SIGTERM drain). Zero errors and zero definite leaks, or it fails.
# About 2 minutes, so not part of `make test`. tests/valgrind.supp hides
# PCRE2 JIT's word-wise reads inside its generated code only.
VALGRIND ?= valgrind
VALGRIND_OPTS := -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
                 --suppressions=$(abspath tests/valgrind.supp)
VALGRIND_UNITS := base/test_json base/test_utf8 base/test_log nlp/test_entities nlp/test_fsm \
                  nlp/test_botdef nlp/test_model store/test_classify
VALGRIND_E2E ?= 08-replies-conversation::test_russian_and_english_conversations

valgrind: $(BIN) $(VALGRIND_UNITS:%=$(BUILD)/tests/unit/%)
	@if [ -n "$(SANITIZER)$(FUZZ)" ]; then \
	  echo "make valgrind runs the plain build: run it without SANITIZER/FUZZ" >&2; exit 2; fi
	@command -v $(VALGRIND) >/dev/null || \
	  { echo "valgrind: not installed (apt-get install valgrind)" >&2; exit 2; }
	@fails=0; for t in $(VALGRIND_UNITS); do \
	  if $(VALGRIND) $(VALGRIND_OPTS) $(BUILD)/tests/unit/$$t >$(BUILD)/valgrind-$${t##*/}.log 2>&1; \
	  then echo "valgrind: $$t ok"; \
	  else echo "valgrind: $$t FAILED"; cat $(BUILD)/valgrind-$${t##*/}.log; fails=$$((fails + 1)); fi; \
	done; [ $$fails -eq 0 ]
	@EF_E2E_WRAP="$(VALGRIND) $(VALGRIND_OPTS)" EF_BIN=$(abspath $(BIN)) \
	  python3 tests/e2e/run.py $(VALGRIND_E2E)

# The private PostgreSQL and Redis of `make run` (EF_STATE_DIR, else
# .state/dev), and those a killed `make test` left (EF_TEST_STATE, else
# .state/test; left alone while a test run uses them).
services-stop:
	@scripts/services.sh stop "$${EF_STATE_DIR:-.state/dev}"
	@t="$${EF_TEST_STATE:-.state/test}"; if [ -d "$$t" ]; then exec 8>>"$$t/.users"; \
	  if flock -xn 8; then scripts/services.sh stop "$$t" 8>&-; \
	  else echo "services-stop: $$t is in use by a test run: left running"; fi; fi

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/easyflow/sql \
	  $(DESTDIR)$(PREFIX)/share/easyflow/web/console $(DESTDIR)$(PREFIX)/share/easyflow/web/chat
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/easyflow
	install -m 644 sql/*.sql $(DESTDIR)$(PREFIX)/share/easyflow/sql/
	install -m 644 web/console/* $(DESTDIR)$(PREFIX)/share/easyflow/web/console/
	install -m 644 web/chat/* $(DESTDIR)$(PREFIX)/share/easyflow/web/chat/

# The include and name rules read the sources; the cycle check reads the
# objects, so they are built first.
lint: $(LIB_OBJS)
	@EF_LINT_BUILD=$(BUILD) scripts/lint.sh

format-check:
	@clang-format --dry-run --Werror $(SRCS) $(wildcard src/*/*.h tests/*/*.c tests/*/*/*.c tests/*/*/*.h)

clean:
	rm -rf build build-*

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_BINS:=.d) $(BENCH_BINS:=.d) $(FUZZ_BINS:=.d)
