# codeassist: a C host with LuaJIT on top. `make demo` and `make test` set everything up.
VERSION     := 0.1.0
PREFIX      ?= /usr/local
CC          ?= cc
PKG_CONFIG  ?= pkg-config
LUAJIT      ?= luajit
PKGS        := luajit libcurl yaml-0.1
BUILD       ?= build

# Recursive (=) on purpose: evaluated when a recipe runs, i.e. after `deps` installed them.
PKG_CFLAGS   = $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS     = $(shell $(PKG_CONFIG) --libs $(PKGS))
# Debian's lua5.1-cjson.pc names a lua5.1.pc that does not exist: link the archive directly.
CJSON_LIB    = $(firstword $(wildcard /usr/lib/*/liblua5.1-cjson.a /usr/lib/liblua5.1-cjson.a))

WARN        := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
OPT         ?= -O2
CFLAGS      ?=
CPPFLAGS_ALL = -D_GNU_SOURCE -DCODEASSIST_VERSION='"$(VERSION)"' -Iruntime -I$(BUILD) $(PKG_CFLAGS)
CFLAGS_ALL   = -std=c11 $(OPT) -g $(WARN) $(CFLAGS)
LDLIBS_ALL   = $(CJSON_LIB) $(PKG_LIBS) -lm

C_SOURCES   := $(wildcard runtime/*.c)
C_OBJECTS    = $(C_SOURCES:runtime/%.c=$(BUILD)/%.o) $(BUILD)/embedded.o
# The pure pieces the C unit tests link against (no Lua state needed).
PURE_OBJECTS = $(BUILD)/yaml_scalar.o $(BUILD)/outbuf.o $(BUILD)/framing.o $(BUILD)/model_facts.o

# The Lua library: scripts/<dir>/<name>.lua is module <dir>.<name>; init.lua is <dir>;
# presets/<name>.lua is module presets.<name>.
LUA_SOURCES := $(sort $(wildcard scripts/*/*.lua scripts/*/*/*.lua scripts/*/*/*/*.lua)) $(sort $(wildcard presets/*.lua))
ARGPARSE    ?= /usr/share/lua/5.1/argparse.lua
modname      = $(patsubst %.init,%,$(subst /,.,$(patsubst scripts/%,%,$(patsubst %.lua,%,$(1)))))
EMBED_SPECS  = $(foreach f,$(LUA_SOURCES),$(f)=$(call modname,$(f))) $(ARGPARSE)=argparse

C_TESTS     := $(patsubst tests/c/%.c,%,$(wildcard tests/c/test_*.c))

.PHONY: all deps demo test asan bench install uninstall clean fuzz fuzz-smoke fuzz-build

all: deps
	@$(MAKE) --no-print-directory codeassist

deps:
	@sh tools/deps.sh

codeassist: $(BUILD)/codeassist
	@cp $< $@.tmp && mv -f $@.tmp $@   # a running ./codeassist keeps its old file

# The FFI hot paths look their C functions up in the executable's dynamic symbols.
EXPORTS      = -Wl,--export-dynamic-symbol=codeassist_next_frame

$(BUILD)/codeassist: $(C_OBJECTS)
	$(CC) $(CFLAGS_ALL) $(LDFLAGS) $(EXPORTS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/%.o: runtime/%.c runtime/*.h | $(BUILD)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/embedded.c: $(LUA_SOURCES) tools/embed.sh Makefile | $(BUILD)
	@echo "  EMBED   $@ ($(words $(LUA_SOURCES)) Lua files)"
	@LUAJIT=$(LUAJIT) sh tools/embed.sh $@ $(EMBED_SPECS)

$(BUILD)/embedded.o: $(BUILD)/embedded.c runtime/embedded.h
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/test_%: tests/c/test_%.c tests/c/tap.h $(PURE_OBJECTS) $(BUILD)/fs.o $(BUILD)/class.o $(BUILD)/failure.o
	$(CC) $(CPPFLAGS_ALL) -Itests/c $(CFLAGS_ALL) -o $@ $< $(PURE_OBJECTS) $(BUILD)/fs.o $(BUILD)/class.o $(BUILD)/failure.o $(LDLIBS_ALL)

$(BUILD):
	@mkdir -p $@

c-tests: $(C_TESTS:%=$(BUILD)/%)

demo: all
	@sh tools/demo.sh

test: deps
	@$(MAKE) --no-print-directory codeassist c-tests
	@BUILD=$(BUILD) sh tests/run.sh ./codeassist

# The whole suite again with AddressSanitizer and UBSan, in a separate build folder.
asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 \
	    CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    LDFLAGS="-fsanitize=address,undefined" build/asan/codeassist c-tests
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	    BUILD=build/asan sh tests/run.sh build/asan/codeassist

# libFuzzer targets (tests/fuzz/, clang): the SSE and NDJSON framers, the model-name, size and
# version parsers, a config file through config.load. `make fuzz` runs each for FUZZ_SECONDS
# from its seed corpus and its past crashers (tests/fuzz/corpus/, regressions/); new inputs
# and findings go to build/fuzz/. `make fuzz-smoke` is the short run CI does.
FUZZ_TARGETS := sse ndjson model_facts yaml_config
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_BUILD   := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

fuzz-build: deps
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz needs clang: sh tools/deps.sh fuzz"; exit 2; }
	@$(MAKE) --no-print-directory -s BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) OPT=-O1 \
	    CFLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

fuzz: fuzz-build
	@sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=30

# (made by the fuzz-build sub-make, where BUILD is build/fuzz and CC clang)
FUZZ_LINK = $(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -fsanitize=fuzzer $(LDFLAGS)

$(BUILD)/fuzz_sse: tests/fuzz/framing.c $(BUILD)/framing.o
	$(FUZZ_LINK) -DFUZZ_KIND=FRAME_SSE -o $@ $^

$(BUILD)/fuzz_ndjson: tests/fuzz/framing.c $(BUILD)/framing.o
	$(FUZZ_LINK) -DFUZZ_KIND=FRAME_NDJSON -o $@ $^

$(BUILD)/fuzz_model_facts: tests/fuzz/model_facts.c $(BUILD)/model_facts.o
	$(FUZZ_LINK) -o $@ $^ -lm

# The whole runtime and Lua library, with main.c's main renamed (libFuzzer has its own).
$(BUILD)/main_lib.o: runtime/main.c runtime/*.h | $(BUILD)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -Dmain=codeassist_main -c -o $@ $<

$(BUILD)/fuzz_yaml_config: tests/fuzz/yaml_config.c $(filter-out $(BUILD)/main.o,$(C_OBJECTS)) $(BUILD)/main_lib.o
	$(FUZZ_LINK) $(EXPORTS) -o $@ $^ $(LDLIBS_ALL)

bench: all
	@sh tests/bench/run.sh ./codeassist

# The completion scripts are made by the binary being installed, from its own command line.
BASH_COMPLETION_DIR = $(PREFIX)/share/bash-completion/completions
ZSH_COMPLETION_DIR  = $(PREFIX)/share/zsh/site-functions

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 codeassist $(DESTDIR)$(PREFIX)/bin/codeassist
	install -d $(DESTDIR)$(PREFIX)/share/codeassist/presets
	@if ls presets/*.lua >/dev/null 2>&1; then \
	    install -m 0644 presets/*.lua $(DESTDIR)$(PREFIX)/share/codeassist/presets/; fi
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 docs/codeassist.1 $(DESTDIR)$(PREFIX)/share/man/man1/codeassist.1
	install -d $(DESTDIR)$(BASH_COMPLETION_DIR) $(DESTDIR)$(ZSH_COMPLETION_DIR)
	./codeassist completion bash > $(DESTDIR)$(BASH_COMPLETION_DIR)/codeassist
	./codeassist completion zsh > $(DESTDIR)$(ZSH_COMPLETION_DIR)/_codeassist

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/codeassist
	rm -rf $(DESTDIR)$(PREFIX)/share/codeassist
	rm -f $(DESTDIR)$(PREFIX)/share/man/man1/codeassist.1
	rm -f $(DESTDIR)$(BASH_COMPLETION_DIR)/codeassist $(DESTDIR)$(ZSH_COMPLETION_DIR)/_codeassist

clean:
	rm -rf build codeassist
