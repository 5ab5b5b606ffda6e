# moat's build (GNU make).
#
#   make build   bin/moat, every wasm plugin and example, the .wat test modules
#   make run     build, then serve examples/moat.toml
#   make test    build, then every test with the race detector
#   make bench   every benchmark, 10 runs each, into bench.txt (for benchstat)
#   make soak    the soak tests, for SOAKTIME (default 10m)
#   make fuzz    every fuzz target, for FUZZTIME each (default 30s)
#   make lint    go vet and a gofmt check
#   make clean   remove what the build made
#   make install install bin/moat, the first-party modules, an example
#                config and the systemd unit under DESTDIR + PREFIX
#
# Tests that run real modules load them from bin/ (bin/plugins/<name>.wasm,
# bin/examples/<name>.wasm, found from the repository root), which is why
# `make test` builds first; a bare `go test ./...` needs a `make build`
# before it.
#
# Conventions, so that a new module needs no edit here:
#   plugins/<name>/*.go           -> bin/plugins/<name>.wasm
#     (except acl and passwd: bin/plugins/acl.wasm is plugins/acl-rs/acl.rs
#     and bin/plugins/passwd.wasm plugins/passwd-rs/passwd.rs, Rust; the Go
#     modules are bin/plugins/acl-go.wasm and bin/plugins/passwd-go.wasm)
#   examples/plugins/<name>/*.go  -> bin/examples/<name>.wasm
#   **/testdata/<name>.wat        -> **/testdata/<name>.wasm, beside it
# The reference policy of each guest SDK (examples/reference/<lang>/) builds
# into bin/examples/reference-<lang>.wasm with the rules near the end.
# A Go module directory is a main package built with GOOS=wasip1
# GOARCH=wasm -buildmode=c-shared; a directory whose Go code all lives in
# subpackages (plugins/acl/aclfile) builds no module. The .wasm of a .wat is
# committed, so the tests run without wabt; it is rebuilt when wat2wasm is
# installed and the .wat is newer.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

GO             ?= go
VERSION        ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
FUZZTIME       ?= 30s
SOAKTIME       ?= 10m
WAT2WASM       ?= wat2wasm
WAT2WASM_FLAGS ?= --enable-all
CLANG          ?= clang
CLANGXX        ?= clang++
NPM            ?= npm
# C and C++ modules are WASI reactors (exports, _initialize, no _start);
# see sdk/c/README.md.
WASM_CFLAGS    ?= --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror -Isdk/c -Wl,--strip-debug
WASM_CXXFLAGS  ?= $(WASM_CFLAGS) -fno-exceptions -fno-rtti -nostdlib++
ASC            := node_modules/.bin/asc

# Directories under $(1) with Go files of their own (tests aside).
go_dirs = $(sort $(patsubst %/,%,$(dir $(filter-out %_test.go,$(wildcard $(1)/*/*.go)))))

PLUGIN_WASM  := $(patsubst plugins/%,bin/plugins/%.wasm,$(call go_dirs,plugins))
EXAMPLE_WASM := $(patsubst examples/plugins/%,bin/examples/%.wasm,$(call go_dirs,examples/plugins))
# The reference policy (examples/reference/POLICY.md), one build per SDK.
WAT_WASM     := $(patsubst ./%.wat,%.wasm,$(shell find . -path ./bin -prune -o -path '*/testdata/*.wat' -print))
# Rust modules (sdk/rust/README.md): Debian's rustc, which ships the
# wasm32-unknown-unknown standard library (rustup's often lacks it).
#   examples/reference/rust/reference.rs -> bin/examples/reference-rust.wasm
RUSTC          ?= /usr/bin/rustc
RUSTFLAGS_WASM ?= --edition 2021 --target wasm32-unknown-unknown --crate-type cdylib \
                  -C panic=abort -C opt-level=s -C link-arg=-zstack-size=65536 -C strip=symbols
RUST_SDK       := sdk/rust/moat.rs
RUST_WASM      := bin/examples/reference-rust.wasm
# First-party Rust plugins: see the rules after reference-rust.wasm.
RUST_PLUGIN_WASM := bin/plugins/acl-go.wasm bin/plugins/passwd-go.wasm

# The reference policy (examples/reference/POLICY.md), one build per SDK.
REFERENCE_WASM := bin/examples/reference-go.wasm bin/examples/reference-c.wasm bin/examples/reference-cpp.wasm bin/examples/reference-as.wasm
SDK_TEST_WASM  := bin/sdk/trap-c.wasm bin/sdk/trap-as.wasm
ifneq ($(shell command -v $(WAT2WASM)),)
WAT_TARGETS  := $(WAT_WASM)
endif

.PHONY: build run test bench soak fuzz lint clean install FORCE

build: bin/moat $(PLUGIN_WASM) $(RUST_PLUGIN_WASM) $(EXAMPLE_WASM) $(REFERENCE_WASM) $(RUST_WASM) $(SDK_TEST_WASM) $(WAT_TARGETS)

# Go targets always run: the go command knows what is out of date, and its
# build cache makes an up-to-date build cost well under a second.
bin/moat: FORCE
	$(GO) build -ldflags '-X main.version=$(VERSION)' -o $@ ./cmd/moat

bin/plugins/%.wasm: FORCE
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $@ ./plugins/$*

bin/examples/%.wasm: FORCE
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $@ ./examples/plugins/$*

bin/examples/reference-go.wasm: FORCE
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $@ ./examples/reference/go

bin/examples/reference-rust.wasm: examples/reference/rust/reference.rs $(RUST_SDK)
	@mkdir -p $(@D)
	$(RUSTC) $(RUSTFLAGS_WASM) $< -o $@

# First-party plugins in Rust (plugins/acl-rs/README.md). The shipped
# bin/plugins/acl.wasm is built from Rust: this explicit rule takes
# precedence over the Go pattern rule above. The Go module of plugins/acl,
# whose engine (plugins/acl/aclfile) is the reference the Rust one is
# checked against, still builds, as bin/plugins/acl-go.wasm, for the
# cross-checks and benchmarks.
bin/plugins/acl.wasm: plugins/acl-rs/acl.rs $(RUST_SDK)
	@mkdir -p $(@D)
	$(RUSTC) $(RUSTFLAGS_WASM) $< -o $@

bin/plugins/acl-go.wasm: FORCE
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $@ ./plugins/acl

# The same for passwd (plugins/passwd-rs/README.md): bin/plugins/passwd.wasm
# is plugins/passwd-rs/passwd.rs, checked against plugins/passwd/passwdfile;
# the Go module of plugins/passwd is bin/plugins/passwd-go.wasm.
bin/plugins/passwd.wasm: plugins/passwd-rs/passwd.rs $(RUST_SDK)
	@mkdir -p $(@D)
	$(RUSTC) $(RUSTFLAGS_WASM) $< -o $@

bin/plugins/passwd-go.wasm: FORCE
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $@ ./plugins/passwd

# The C and C++ reference policies, on the one header of the C SDK. These
# explicit rules take precedence over the Go rule for bin/examples/%.wasm,
# and run only when a source is newer.
bin/examples/reference-c.wasm: examples/reference/c/reference.c sdk/c/moat.h
	@mkdir -p $(@D)
	$(CLANG) $(WASM_CFLAGS) -o $@ $<

bin/examples/reference-cpp.wasm: examples/reference/cpp/reference.cpp sdk/c/moat.h
	@mkdir -p $(@D)
	$(CLANGXX) $(WASM_CXXFLAGS) -o $@ $<

# The AssemblyScript reference policy; asc comes from the npm registry at
# the version package-lock.json pins (`npm ci` makes node_modules when it
# is missing or older than the lock file).
bin/examples/reference-as.wasm: $(wildcard examples/reference/as/*.ts sdk/assemblyscript/assembly/*.ts) sdk/assemblyscript/asconfig.json node_modules/.package-lock.json
	@mkdir -p $(@D)
	$(ASC) examples/reference/as/reference.ts --config sdk/assemblyscript/asconfig.json -o $@

# Modules that fail on demand, for the C and AssemblyScript SDK tests.
bin/sdk/trap-c.wasm: sdk/c/testdata/trap.c sdk/c/moat.h
	@mkdir -p $(@D)
	$(CLANG) $(WASM_CFLAGS) -o $@ $<

bin/sdk/trap-as.wasm: sdk/assemblyscript/testdata/trap.ts $(wildcard sdk/assemblyscript/assembly/*.ts) sdk/assemblyscript/asconfig.json node_modules/.package-lock.json
	@mkdir -p $(@D)
	$(ASC) $< --config sdk/assemblyscript/asconfig.json -o $@

# npm's packages, as package-lock.json pins them.
node_modules/.package-lock.json: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund

$(WAT_WASM): %.wasm: %.wat
	$(WAT2WASM) $(WAT2WASM_FLAGS) $< -o $@

# A directory whose modules need other wat2wasm flags than --enable-all
# says so here, in step with its package's //go:generate line.
runtime/wasm/internal/meter/testdata/%.wasm: WAT2WASM_FLAGS = --enable-threads --enable-tail-call --enable-exceptions --debug-names
# The hostile modules that write the meter's own globals are invalid as
# written, which is their attack: assemble them without validation.
runtime/internal/e2e/testdata/hostile/meter_%.wasm: WAT2WASM_FLAGS = --enable-all --no-check
# Hostile modules that only an unvalidated binary can be (indices past the
# module's own), which the meter must refuse.
runtime/wasm/testdata/nocheck_%.wasm: WAT2WASM_FLAGS = --enable-all --no-check

run: build
	bin/moat serve -c examples/moat.toml

# The tests of the patches moat carries on mochi (third_party/mochi/PATCHES.md).
# mochi is a module of its own, so `./...` does not reach them; its other
# tests are upstream's, some timing-bound, and stay out of `make test`.
MOCHI_PATCH_TESTS = ^(TestDeliverToClient|TestRetainedWaitsForOutboundRoom|TestGetByListenerNoRecursiveRLock|TestDetachClientStoppedBeforeRead|TestStartWriterHammer|TestOutboundQueue|TestWriterHammerMixed|FuzzOutboundQueue|TestClientReadPipelined|TestIdleClientStack|TestEstablishConnectionPanicUncounts)

test: build
	$(GO) test -race -timeout 15m ./...
	cd third_party/mochi && $(GO) test -race -count=1 -run '$(MOCHI_PATCH_TESTS)' .

bench: build
	$(GO) test -run='^$$' -bench=. -benchmem -count=10 ./... | tee bench.txt

# Soak tests are the TestSoak* tests; in `make test` they run briefly,
# here for MOAT_SOAK each.
soak: build
	MOAT_SOAK=$(SOAKTIME) $(GO) test -race -count=1 -timeout 0 -run '^TestSoak' -v ./...

# Every `func FuzzXxx` in a _test.go file, one after the other (go test
# fuzzes one target per run). Crashers land in the package's
# testdata/fuzz/FuzzXxx/: commit them.
fuzz: build
	@grep -rlE --include='*_test.go' --exclude-dir=bin --exclude-dir=testdata '^func Fuzz[A-Za-z0-9_]*\(' . \
	| xargs -r -n1 dirname | sort -u | while read -r dir; do \
		for fn in $$(grep -hoE '^func Fuzz[A-Za-z0-9_]*' "$$dir"/*_test.go | cut -d' ' -f2); do \
			echo "fuzz $$dir $$fn for $(FUZZTIME)"; \
			$(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) "$$dir"; \
		done; \
	done

# Guest code whose files are wasip1-only is compiled by `make build`; vet
# runs on the host build of every package.
lint:
	$(GO) vet ./...
	@unformatted=$$(find . -path ./bin -prune -o -name '*.go' -print | xargs gofmt -l); \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; echo "$$unformatted"; exit 1; \
	fi

clean:
	rm -rf bin bench.txt examples/moat.db node_modules

# Installation, in the GNU layout (PREFIX, DESTDIR as packagers expect):
#   $(BINDIR)/moat
#   $(LIBDIR)/moat/plugins/<name>.wasm       the first-party modules
#   $(SYSCONFDIR)/moat/moat.toml(.example)   deploy/moat.toml, paths rewritten
#   $(SYSCONFDIR)/moat/acl, passwd           examples; kept when present
#   $(SYSTEMDDIR)/moat.service               deploy/moat.service, paths rewritten
#   $(SYSUSERSDIR)/moat.conf                 the moat user (systemd-sysusers)
# moat.toml, acl and passwd are not overwritten when they exist (an upgrade
# keeps the operator's); moat.toml.example always is. deploy/moat.toml and
# deploy/moat.service are written for PREFIX=/usr/local; the sed below
# rewrites their paths for the PREFIX and SYSCONFDIR given.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
LIBDIR      ?= $(PREFIX)/lib
SYSCONFDIR  ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SYSTEMDDIR  ?= $(LIBDIR)/systemd/system
SYSUSERSDIR ?= $(LIBDIR)/sysusers.d
INSTALL     ?= install
DEPLOY_SED   = -e 's|/usr/local/bin|$(BINDIR)|g' -e 's|/usr/local/lib|$(LIBDIR)|g' -e 's|/usr/local/etc|$(SYSCONFDIR)|g'

install: build
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/moat/plugins $(DESTDIR)$(SYSCONFDIR)/moat \
		$(DESTDIR)$(SYSTEMDDIR) $(DESTDIR)$(SYSUSERSDIR)
	$(INSTALL) -m 0755 bin/moat $(DESTDIR)$(BINDIR)/moat
	$(INSTALL) -m 0644 $(PLUGIN_WASM) $(DESTDIR)$(LIBDIR)/moat/plugins/
	sed $(DEPLOY_SED) deploy/moat.toml > $(DESTDIR)$(SYSCONFDIR)/moat/moat.toml.example
	chmod 0644 $(DESTDIR)$(SYSCONFDIR)/moat/moat.toml.example
	test -e $(DESTDIR)$(SYSCONFDIR)/moat/moat.toml || \
		$(INSTALL) -m 0644 $(DESTDIR)$(SYSCONFDIR)/moat/moat.toml.example $(DESTDIR)$(SYSCONFDIR)/moat/moat.toml
	test -e $(DESTDIR)$(SYSCONFDIR)/moat/acl || $(INSTALL) -m 0644 deploy/acl $(DESTDIR)$(SYSCONFDIR)/moat/acl
	test -e $(DESTDIR)$(SYSCONFDIR)/moat/passwd || $(INSTALL) -m 0640 /dev/null $(DESTDIR)$(SYSCONFDIR)/moat/passwd
	sed $(DEPLOY_SED) deploy/moat.service > $(DESTDIR)$(SYSTEMDDIR)/moat.service
	chmod 0644 $(DESTDIR)$(SYSTEMDDIR)/moat.service
	$(INSTALL) -m 0644 deploy/moat.sysusers $(DESTDIR)$(SYSUSERSDIR)/moat.conf
