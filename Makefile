# TinyMLS build, test and install. `make demo` and `make test` set up
# everything they need on a fresh machine (pinned cbindgen, Python packages).

SHELL        := /bin/bash
CARGO        ?= cargo
PYTHON       ?= python3
PREFIX       ?= /usr/local
DESTDIR      ?=
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# The shared library's debug info, split off at install (gdb looks for a
# debuglink file in a .debug directory next to the library).
DEBUGDIR     ?= $(LIBDIR)/.debug
# LICENSE and THIRD_PARTY_LICENSES.md (the licences of the crates the
# library links, AWS-LC's among them): shipped with every binary.
DOCDIR       ?= $(PREFIX)/share/doc/tinymls
STRIP        ?= strip
OBJCOPY      ?= objcopy
LDCONFIG     ?= $(or $(shell command -v ldconfig 2>/dev/null),/sbin/ldconfig)

VERSION      := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
MAJOR        := $(word 1,$(subst ., ,$(VERSION)))
CBINDGEN_VERSION := 0.29.4
TOOLS        := $(CURDIR)/.tools
CBINDGEN     := $(TOOLS)/bin/cbindgen
# FIPS=1: the library against the AWS-LC FIPS module instead (docs/FIPS.md):
# `make lib FIPS=1`, `FIPS=1 make install`. It builds in target/fips.
FIPS         ?=
FIPS_DIR     := $(CURDIR)/target/fips
FIPS_FEATURES := --no-default-features --features fips
DEFAULT_RELEASE_DIR := $(CURDIR)/target/release
ifeq ($(FIPS),1)
LIB_FLAGS    := $(FIPS_FEATURES) --target-dir $(FIPS_DIR)
RELEASE_DIR  := $(FIPS_DIR)/release
else
LIB_FLAGS    :=
RELEASE_DIR  := $(DEFAULT_RELEASE_DIR)
endif
# The test build: release, plus the test-only export (tinymls_test_panic).
TESTLIB_DIR  := $(CURDIR)/target/testhooks/release
REPO         := $(CURDIR)
include mk/go.mk
include mk/cargo.mk

.PHONY: all lib testlib header check-header test test-rust test-rust-rustcrypto test-c \
        test-go test-python test-wheel wheel test-interop test-demo test-quickstart test-symbols test-soak soak \
        test-fips test-fips-full fips-deps \
        skew-member test-skew-soak skew-soak fuzz fuzz-seeds miri tsan nightly check-all \
        demo demo-long demo-c bench bench-hotpath install uninstall test-install dist-go test-dist-go clean lint \
        test-state-cross test-state-example

all: lib

## The release library: target/release/libtinymls.{so,a} (+ the SONAME link);
## with FIPS=1, target/fips/release/, against the AWS-LC FIPS module.
lib:
	$(CARGO) build --release --lib $(LIB_FLAGS)
	ln -sf libtinymls.so $(RELEASE_DIR)/libtinymls.so.$(MAJOR)

## The same library with the test-only export, for the C/Go/Python tests.
testlib:
	$(TEST_CARGO) build --release --lib --features test-hooks --target-dir $(CURDIR)/target/testhooks
	ln -sf libtinymls.so $(TESTLIB_DIR)/libtinymls.so.$(MAJOR)

# The checking tools `make test` needs (cbindgen, cargo-deny) build
# unoptimised, without debug info, into one target dir: on a fresh clone that
# takes a third of the time of their release builds (whose fat LTO alone took
# minutes), and each runs in under a second on this crate.
TOOL_INSTALL := CARGO_TARGET_DIR=$(TOOLS)/target CARGO_PROFILE_DEV_DEBUG=false \
                $(CARGO) install --locked --debug --root $(TOOLS)
$(CBINDGEN):
	$(TOOL_INSTALL) cbindgen --version $(CBINDGEN_VERSION)

## Regenerate include/tinymls.h.
header: $(CBINDGEN)
	$(CBINDGEN) --quiet --config cbindgen.toml --crate tinymls --output include/tinymls.h

## Fail if the checked-in header is not what cbindgen produces now.
check-header: $(CBINDGEN)
	@mkdir -p build
	$(CBINDGEN) --quiet --config cbindgen.toml --crate tinymls --output build/tinymls.h.check
	@diff -u include/tinymls.h build/tinymls.h.check && echo "header: include/tinymls.h is up to date"

test: lint check-header test-rust test-rust-rustcrypto test-symbols test-c test-go test-python test-wheel test-interop \
      test-state-cross test-state-example test-demo test-quickstart test-soak test-skew-soak \
      test-install test-dist-go test-fips
	@echo "make test: all suites passed"

## Unit, vector, KAT, rotation, concurrency, fork, FFI tests (aws-lc-rs).
test-rust:
	$(TEST_CARGO) test --release --features test-hooks --target-dir $(CURDIR)/target/testhooks

## Every vector and the KAT again on the pure-Rust AEAD backend.
test-rust-rustcrypto:
	$(TEST_CARGO) test --release --no-default-features --features rust-crypto,test-hooks --target-dir $(CURDIR)/target/rustcrypto

## The exported symbols of the .so are exactly the header's functions.
test-symbols: lib testlib
	$(PYTHON) tests/check_symbols.py include/tinymls.h $(RELEASE_DIR)/libtinymls.so
	$(PYTHON) tests/check_symbols.py --test-hooks include/tinymls.h $(TESTLIB_DIR)/libtinymls.so

test-c: testlib
	$(MAKE) -C bindings/c test LIBDIR=$(TESTLIB_DIR)

test-go: lib testlib
	$(MAKE) -C bindings/go test

test-python: testlib
	$(MAKE) -C bindings/python test LIBDIR=$(TESTLIB_DIR)

## The Python wheel (bindings/python/setup.py: setuptools-rust), built the way
## `python -m build bindings/python` builds it: the sdist (the crate inside, by
## `cargo package`), then the wheel from the sdist alone, into build/wheel/dist;
## `auditwheel show`, then `auditwheel repair` to a manylinux tag, into
## build/wheel/repaired. The tools are pinned (requirements-wheel.txt) in a
## venv, build/wheel-tools. Cargo builds in target/wheel, so a second run only
## relinks if nothing changed.
WHEEL_TOOLS  := $(CURDIR)/build/wheel-tools
WHEEL_OUT    := $(CURDIR)/build/wheel
WHEEL_PATH   := PATH=$(WHEEL_TOOLS)/bin:$$PATH
$(WHEEL_TOOLS)/.deps: bindings/python/requirements-wheel.txt
	$(PYTHON) -m venv $(WHEEL_TOOLS)
	$(WHEEL_TOOLS)/bin/pip install --disable-pip-version-check --quiet -r $<
	@touch $@

wheel: $(WHEEL_TOOLS)/.deps
	rm -rf $(WHEEL_OUT)
	$(WHEEL_TOOLS)/bin/python -m build --no-isolation --sdist --outdir $(WHEEL_OUT)/dist bindings/python
	mkdir -p $(WHEEL_OUT)/sdist
	tar -xzf $(WHEEL_OUT)/dist/tinymls-$(VERSION).tar.gz -C $(WHEEL_OUT)/sdist
	CARGO_TARGET_DIR=$(CURDIR)/target/wheel $(WHEEL_TOOLS)/bin/python -m build --no-isolation --wheel \
	  --outdir $(WHEEL_OUT)/dist $(WHEEL_OUT)/sdist/tinymls-$(VERSION) > $(WHEEL_OUT)/build.log 2>&1 \
	  || { tail -n 60 $(WHEEL_OUT)/build.log; exit 1; }
	$(WHEEL_PATH) auditwheel show $(WHEEL_OUT)/dist/tinymls-$(VERSION)-*.whl
	$(WHEEL_PATH) auditwheel repair --wheel-dir $(WHEEL_OUT)/repaired $(WHEEL_OUT)/dist/tinymls-$(VERSION)-*.whl

## The wheel as a user gets it (tests/packaging/check_wheel.py): tagged
## py3-none-manylinux_*, the library stripped, LICENSE in its dist-info;
## installed into a new venv outside the checkout, with no TINYMLS_LIBRARY or
## PYTHONPATH, the Python quick starts (docs/QUICKSTART.md, the binding's
## README) run from there.
test-wheel: wheel
	$(WHEEL_TOOLS)/bin/python tests/packaging/check_wheel.py --python $(PYTHON) $(WHEEL_OUT)/repaired/tinymls-$(VERSION)-*.whl

## Every ordered pair of {C, Go, Python, Rust}: encrypt with one, decrypt
## with the other (tests/interop/run.py).
test-interop: testlib
	$(MAKE) -C tests/interop test

## State export/import across languages (tests/state_cross/): export in each
## of C, Go and Python, import each export in each (all nine ordered pairs).
STATE_CROSS  := $(CURDIR)/build/state_cross
test-state-cross: lib testlib
	@mkdir -p $(STATE_CROSS)
	$(CC) -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 -I$(CURDIR)/include tests/state_cross/state_cross.c \
	  -o $(STATE_CROSS)/state_cross -L$(TESTLIB_DIR) -ltinymls -Wl,-rpath,$(TESTLIB_DIR)
	cd tests/state_cross/go && $(GO) vet . && $(GO) build -o $(STATE_CROSS)/state_cross_go .
	TINYMLS_LIBRARY=$(TESTLIB_DIR)/libtinymls.so PYTHONPATH=$(CURDIR)/bindings/python/src PYTHON=$(PYTHON) \
	  tests/state_cross/run.sh $(STATE_CROSS)

## The SQLite example (examples/state_sqlite.py): keeps its sealed state in
## SQLite, is killed with SIGKILL, restarts and reads what it was sent.
test-state-example: testlib
	TINYMLS_LIBRARY=$(TESTLIB_DIR)/libtinymls.so PYTHONPATH=$(CURDIR)/bindings/python/src \
	  $(PYTHON) examples/state_sqlite.py --self-test --workdir $(CURDIR)/build/state_example

## Soak: two processes, several threads each, 10 ms rotation, one context
## closed and re-joined mid-run (examples/soak.rs). SOAK_SECONDS, default 60.
SOAK_SECONDS ?= 60
soak:
	$(CARGO) run --release --example soak -- --seconds $(SOAK_SECONDS)

## The same, short, in `make test`.
test-soak:
	$(TEST_CARGO) run --release --features test-hooks --target-dir $(CURDIR)/target/testhooks --example soak -- --seconds 5

## Clock-skew soak (tests/skew_soak.py): three member processes of a
## test-hooks build (examples/skew_member.rs) whose wall clocks run -2 s, 0
## and +2 s from the host's (the library's test offset; the host clock is
## not touched), 10 ms epochs, rates 50x apart, one member killed and
## restarted: nothing lost, misread or replayed. Then clocks at -7 s, 0,
## +7 s: the far pair refused (EPOCH_EXPIRED / EPOCH_UNKNOWN), clock_skew
## raised. `make test` runs it short; `make skew-soak` runs the first part
## for SKEW_SOAK_SECONDS (default 120).
SKEW_SOAK_SECONDS ?= 120
SKEW_MEMBER  := $(TESTLIB_DIR)/examples/skew_member
skew-member:
	$(TEST_CARGO) build --release --features test-hooks --target-dir $(CURDIR)/target/testhooks --example skew_member

test-skew-soak: skew-member
	$(PYTHON) tests/skew_soak.py --member $(SKEW_MEMBER) --seconds 10

skew-soak: skew-member
	$(PYTHON) tests/skew_soak.py --member $(SKEW_MEMBER) --seconds $(SKEW_SOAK_SECONDS)

## Nightly Rust (for cargo-fuzz and Miri), installed by rustup when missing.
nightly:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal

CARGO_FUZZ   := $(TOOLS)/bin/cargo-fuzz
FUZZ_TARGETS := decrypt header config state_import session
FUZZ_SECONDS ?= 60
$(CARGO_FUZZ):
	$(CARGO) install cargo-fuzz --version 0.13.1 --locked --root $(TOOLS)

## Seed corpora for the fuzz targets (from the KAT), in fuzz/corpus/<target>.
fuzz-seeds:
	TINYMLS_FUZZ_CORPUS=$(CURDIR)/fuzz/corpus $(TEST_CARGO) test --release --features test-hooks \
	  --target-dir $(CURDIR)/target/testhooks --test fuzz_smoke write_seed_corpus -- --ignored

## libFuzzer on every target for FUZZ_SECONDS each, with debug assertions
## and overflow checks on (crashes land in fuzz/artifacts/; keep each as a
## regression in fuzz/regressions/<target>/). `session` drives a group of
## contexts through a program of operations, so that messages authenticate.
fuzz: nightly $(CARGO_FUZZ) fuzz-seeds
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$t && \
	  RUSTUP_TOOLCHAIN=nightly $(CARGO_FUZZ) run $$t --release --debug-assertions corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

## Miri on the pure-Rust parts it can run (no FFI, no mmap): replay window,
## wire format, secrets, config, key schedule, events, metrics.
miri: nightly
	rustup component add --toolchain nightly miri rust-src
	MIRIFLAGS=-Zmiri-disable-isolation $(CARGO) +nightly miri test --lib --no-default-features --features rust-crypto --target-dir $(CURDIR)/target/miri \
	  -- replay:: wire:: secret:: config:: key_schedule:: events:: metrics::

## ThreadSanitizer on the Rust tests (in `make check-all`): nightly with the
## standard library rebuilt instrumented (-Zbuild-std), on the rust-crypto
## backend (no C code left uninstrumented), in target/tsan. Any report fails
## the run (the test binary exits 66). Not run: the fork tests
## (tests/fork*.rs: the library's child handler starts a thread in the child
## of a multithreaded fork, which TSAN does not support), tests/memory_scan.rs
## (it reads the whole address space, TSAN's shadow memory included), and two
## unit tests whose premise TSAN breaks: its mlock() interceptor locks
## nothing, and its unwinding rewrites the dead frames the stack test looks
## for. tests/sink_wait.rs forks too, once, to a child that only waits and
## exits: it runs on its own with TSAN's die_after_fork off.
TSAN_TARGET  = $(shell rustc -vV | sed -n 's/^host: //p')
TSAN_CARGO   = RUSTFLAGS=-Zsanitizer=thread RUSTDOCFLAGS=-Zsanitizer=thread $(TEST_CARGO) +nightly test --release \
               -Zbuild-std --target $(TSAN_TARGET) --no-default-features --features rust-crypto,test-hooks \
               --target-dir $(CURDIR)/target/tsan
TSAN_SKIP    := fork% memory_scan sink_wait
TSAN_TESTS   := $(filter-out $(TSAN_SKIP),$(basename $(notdir $(wildcard tests/*.rs))))
tsan: nightly
	rustup component add --toolchain nightly rust-src
	TSAN_OPTIONS=second_deadlock_stack=1 $(TSAN_CARGO) --lib $(addprefix --test ,$(TSAN_TESTS)) -- \
	  --skip os::locked::tests::the_kernel_agrees_with_the_status \
	  --skip os::locked::tests::a_locked_vec_lives_in_locked_undumped_pages \
	  --skip os::locked::tests::a_dropped_locked_vecs_mapping_is_kept_wiped_reused_and_locked_again_after_fork \
	  --skip blob::tests::a_blobs_secrets_in_the_clear_live_in_locked_undumped_pages \
	  --skip os::locked::tests::a_forked_child_wipes_the_vectors_of_the_threads_it_lost_and_keeps_its_own \
	  --skip os::stack::tests::a_derivation_that_panics_leaves_nothing_on_the_stack
	TSAN_OPTIONS=die_after_fork=0 $(TSAN_CARGO) --test sink_wait

## The FIPS build (docs/FIPS.md), the short pass of `make test`: the library
## against aws-lc-fips-sys (built once, in target/fips); no crate outside
## FIPS_DEPS linked into it; its exports; the KAT (both sequences), the public
## vectors, the state blobs and tests/fips.rs (every call into the module an
## approved service by its indicator, seq order under threads, reporting) on
## it; tests/fips/interop.py against the default build, both ways; the Go
## and Python suites on it (they must see FIPS mode: TINYMLS_EXPECT_FIPS).
FIPS_DEPS    := tinymls aws-lc-rs aws-lc-fips-sys zeroize zeroize_derive proc-macro2 quote syn unicode-ident libc
FIPS_TESTS   := --test kat --test vectors --test state --test fips
test-fips: fips-deps
	$(CARGO) build --release --lib
	$(CARGO) build --release --lib $(FIPS_FEATURES) --target-dir $(FIPS_DIR)
	ln -sf libtinymls.so $(FIPS_DIR)/release/libtinymls.so.$(MAJOR)
	$(PYTHON) tests/check_symbols.py include/tinymls.h $(FIPS_DIR)/release/libtinymls.so
	$(CARGO) test --release $(FIPS_FEATURES),test-hooks --target-dir $(FIPS_DIR) $(FIPS_TESTS)
	$(PYTHON) tests/fips/interop.py $(FIPS_DIR)/release/libtinymls.so $(DEFAULT_RELEASE_DIR)/libtinymls.so
	cd bindings/go && TINYMLS_EXPECT_FIPS=1 LD_LIBRARY_PATH=$(FIPS_DIR)/release $(GO) test -count=1 .
	TINYMLS_EXPECT_FIPS=1 $(MAKE) -C bindings/python pytest LIBDIR=$(FIPS_DIR)/release REQUIRE_TEST_HOOKS=0

## The crates linked into the FIPS library (`cargo tree -e normal`) are
## exactly FIPS_DEPS: no RustCrypto, no other RNG.
fips-deps:
	@deps=$$($(CARGO) tree -e normal $(FIPS_FEATURES) --prefix none --format '{p}' | awk '{print $$1}' | sort -u); \
	extra=$$(comm -23 <(echo "$$deps") <(printf '%s\n' $(FIPS_DEPS) | sort -u)); \
	if [ -n "$$extra" ]; then echo "fips-deps: the FIPS build links crates outside FIPS_DEPS:" $$extra; exit 1; fi; \
	echo "fips-deps: the FIPS build links" $$deps

## Every Rust test on the FIPS build (`make check-all`; out of `make test`
## for time).
test-fips-full:
	$(CARGO) test --release $(FIPS_FEATURES),test-hooks --target-dir $(FIPS_DIR)

## Everything: make test, then the long runs kept out of it for time.
check-all: test test-fips-full check-notice miri tsan soak skew-soak demo-long
	$(MAKE) fuzz FUZZ_SECONDS=$(or $(CHECK_FUZZ_SECONDS),60)

## The main job as a user sees it (examples/demo/, about 10 s): a busy and a
## quiet replica of a Go service send encrypted messages to C, Python and Go
## consumers; one replica is killed and restarted from the group secret, one
## consumer joins late; no message may be lost, misread, duplicated or refused.
demo: lib
	$(MAKE) -C examples/demo run LIBDIR=$(RELEASE_DIR)

## The demo for DEMO_LONG_SECONDS (default 600; in `make check-all`): the
## defaults over a long run, the restart and late join at half time.
DEMO_LONG_SECONDS ?= 600
demo-long: lib
	$(MAKE) -C examples/demo run LIBDIR=$(RELEASE_DIR) DEMO_SECONDS=$(DEMO_LONG_SECONDS)

## A 4-second run of the demo, in `make test`.
test-demo: lib
	$(MAKE) -C examples/demo run LIBDIR=$(RELEASE_DIR) DEMO_SECONDS=4

## The quick starts of docs/QUICKSTART.md, pasted as written into a shell in
## an empty directory, output compared; README.md's short examples must be
## excerpts of the programs they run. The complete Go and Python programs of
## docs/OPERATIONS.md run too, their output compared with what the page shows
## once times, ids and numbers are normalised (tests/docs/check_programs.py).
test-quickstart: lib
	$(PYTHON) tests/docs/check_quickstart.py --excerpts README.md docs/QUICKSTART.md
	$(PYTHON) tests/docs/check_programs.py docs/OPERATIONS.md

## The C-only demo (bindings/c/demo.c).
demo-c: lib
	$(MAKE) -C bindings/c demo LIBDIR=$(RELEASE_DIR)

## Every benchmark (core, footprint, C vs OpenSSL EVP, Go, Python) with
## medians, the machine and the commands, into docs/BENCHMARKS.md with the
## targets met or missed. BENCH_QUICK=1 for a short pass. Not part of `test`.
bench:
	$(PYTHON) tools/bench/run.py

## The 64 B hot path of this build beside the raw AEAD, in one C program
## (tools/bench/hotpath.sh; HOTPATH=callgrind counts instructions instead).
bench-hotpath: lib
	tools/bench/hotpath.sh $(CURDIR)/target/release $(HOTPATH)

## Install (DESTDIR for staging, PREFIX, LIBDIR, INCLUDEDIR, PKGCONFIGDIR):
## the shared library stripped, its debug info split into
## $(DEBUGDIR)/libtinymls.so.$(VERSION).debug (linked by a .gnu_debuglink,
## so gdb finds it, compressed), the SONAME links, the static archive without
## debug info or embedded LLVM bitcode (still linkable), the header, and a
## relocatable tinymls.pc (paths under PREFIX written as ${prefix}/...),
## and the licences (LICENSE, THIRD_PARTY_LICENSES.md) in $(DOCDIR).
## Without DESTDIR: ldconfig when LIBDIR is a directory the loader searches
## and we are root, else a note on how programs find the library
## (tools/install/loader.sh).
SOLIB        := libtinymls.so.$(VERSION)
STRIP_ARCHIVE = $(STRIP) --strip-debug --remove-section=.llvmbc --remove-section=.llvmcmd
PC_PATH       = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))
install: lib
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(DEBUGDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(DOCDIR)
	install -m 0644 LICENSE THIRD_PARTY_LICENSES.md $(DESTDIR)$(DOCDIR)/
	$(OBJCOPY) --only-keep-debug --compress-debug-sections=zlib $(RELEASE_DIR)/libtinymls.so \
	    $(DESTDIR)$(DEBUGDIR)/$(SOLIB).debug
	chmod 0644 $(DESTDIR)$(DEBUGDIR)/$(SOLIB).debug
	$(STRIP) --strip-unneeded --remove-section=.comment -o $(DESTDIR)$(LIBDIR)/$(SOLIB) $(RELEASE_DIR)/libtinymls.so
	$(OBJCOPY) --add-gnu-debuglink=$(DESTDIR)$(DEBUGDIR)/$(SOLIB).debug $(DESTDIR)$(LIBDIR)/$(SOLIB)
	chmod 0755 $(DESTDIR)$(LIBDIR)/$(SOLIB)
	ln -sf $(SOLIB) $(DESTDIR)$(LIBDIR)/libtinymls.so.$(MAJOR)
	ln -sf libtinymls.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/libtinymls.so
	$(STRIP_ARCHIVE) -o $(DESTDIR)$(LIBDIR)/libtinymls.a $(RELEASE_DIR)/libtinymls.a
	chmod 0644 $(DESTDIR)$(LIBDIR)/libtinymls.a
	install -m 0644 include/tinymls.h $(DESTDIR)$(INCLUDEDIR)/tinymls.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(call PC_PATH,$(LIBDIR))|g' \
	    -e 's|@INCLUDEDIR@|$(call PC_PATH,$(INCLUDEDIR))|g' -e 's|@VERSION@|$(VERSION)|g' \
	    tinymls.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/tinymls.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/tinymls.pc
	@if [ -z "$(DESTDIR)" ]; then tools/install/loader.sh install $(LIBDIR) $(LDCONFIG); fi

## Remove every file `make install` wrote (same variables), and the debug and
## pkgconfig directories if that leaves them empty.
uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(SOLIB) $(DESTDIR)$(LIBDIR)/libtinymls.so.$(MAJOR) \
	      $(DESTDIR)$(LIBDIR)/libtinymls.so $(DESTDIR)$(LIBDIR)/libtinymls.a \
	      $(DESTDIR)$(DEBUGDIR)/$(SOLIB).debug \
	      $(DESTDIR)$(INCLUDEDIR)/tinymls.h $(DESTDIR)$(PKGCONFIGDIR)/tinymls.pc \
	      $(DESTDIR)$(DOCDIR)/LICENSE $(DESTDIR)$(DOCDIR)/THIRD_PARTY_LICENSES.md
	-rmdir $(DESTDIR)$(DEBUGDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(DOCDIR) 2>/dev/null
	@if [ -z "$(DESTDIR)" ]; then tools/install/loader.sh uninstall $(LIBDIR) $(LDCONFIG); fi

## `make install` into a temporary PREFIX, a C program built with pkg-config
## (shared, rpath, relocated tree, fully static), sizes and stripping checked,
## then `make uninstall` leaves no file behind (tests/install/run.sh).
test-install: lib
	MAKE="$(MAKE)" tests/install/run.sh

## A Go module that works outside the checkout, in build/dist/go/ (the shape
## of wasmtime-go's): the package's Go files (not the tests, not the test
## hooks), link_pkgconfig.go, and bindings/go/_dist/ in place of the in-repo
## link files (link_dist.go: linked statically from lib/<GOOS>-<GOARCH>/ by
## default; includebuild.go: `go mod vendor` keeps include/ and lib/), the
## header, this platform's archive stripped like the installed one, go.mod,
## README.md, LICENSE and THIRD_PARTY_LICENSES.md. The platform directories are those includebuild.go
## imports; only this platform's gets an archive.
GO_DIST           := $(CURDIR)/build/dist/go
GO_DIST_PLATFORMS := $(shell sed -n 's|.*"github.com/tinymls/tinymls/bindings/go/lib/\([^"]*\)"|\1|p' bindings/go/_dist/includebuild.go)
GO_DIST_PLATFORM   = $(shell $(GO) env GOOS)-$(shell $(GO) env GOARCH)
GO_DIST_FILES     := $(filter-out %_test.go bindings/go/link_%.go bindings/go/testhooks%.go,$(wildcard bindings/go/*.go)) \
                     $(wildcard bindings/go/*.h) \
                     bindings/go/link_pkgconfig.go $(wildcard bindings/go/_dist/*.go) \
                     bindings/go/go.mod bindings/go/README.md LICENSE THIRD_PARTY_LICENSES.md
dist-go: lib
	@case " $(GO_DIST_PLATFORMS) " in *" $(GO_DIST_PLATFORM) "*) ;; *) \
	  echo "dist-go: $(GO_DIST_PLATFORM) is not among the platforms of bindings/go/_dist/ ($(GO_DIST_PLATFORMS))"; \
	  exit 1;; esac
	rm -rf $(GO_DIST)
	mkdir -p $(GO_DIST)/include $(addprefix $(GO_DIST)/lib/,$(GO_DIST_PLATFORMS))
	cp $(GO_DIST_FILES) $(GO_DIST)/
	cp include/tinymls.h $(GO_DIST)/include/
	echo 'package include' > $(GO_DIST)/include/empty.go
	for p in $(GO_DIST_PLATFORMS); do echo "package $${p//-/_}" > $(GO_DIST)/lib/$$p/empty.go; done
	$(STRIP_ARCHIVE) -o $(GO_DIST)/lib/$(GO_DIST_PLATFORM)/libtinymls.a $(RELEASE_DIR)/libtinymls.a
	chmod 0644 $(GO_DIST)/lib/$(GO_DIST_PLATFORM)/libtinymls.a
	@echo "dist-go: $(GO_DIST) (lib/$(GO_DIST_PLATFORM)/libtinymls.a: $$(stat -c %s $(GO_DIST)/lib/$(GO_DIST_PLATFORM)/libtinymls.a) bytes)"

## The dist module used from a program outside the checkout, with the
## checkout hidden (tests/dist_go/run.sh): statically linked by default (no
## libtinymls in ldd), vendored, and -tags tinymls_pkgconfig against a
## temporary `make install`.
test-dist-go: dist-go
	GO="$(GO)" MAKE="$(MAKE)" tests/dist_go/run.sh $(GO_DIST)

## Formatting, clippy on the three backends (aws-lc-rs, RustCrypto, FIPS),
## the core's module layers (no import cycle, no arrow back up:
## tools/lint/module_layers.py), the licence allow-list (cargo-deny), the
## notice's crate list and the documents' links.
lint:
	$(PYTHON) tools/lint/module_layers.py
	$(CARGO) fmt --check
	$(TEST_CARGO) clippy --release --all-targets --features test-hooks --target-dir $(CURDIR)/target/testhooks -- -D warnings
	$(TEST_CARGO) clippy --release --all-targets --no-default-features --features rust-crypto,test-hooks --target-dir $(CURDIR)/target/rustcrypto -- -D warnings
	$(CARGO) clippy --release --all-targets $(FIPS_FEATURES),test-hooks --target-dir $(FIPS_DIR) -- -D warnings
	$(MAKE) --no-print-directory check-licenses check-notice-crates check-doc-links

## Licences (issue 15): pinned cargo-deny and cargo-about, installed into
## .tools/ like cbindgen. Both read only Cargo.lock and the crate sources
## already fetched (--frozen, --offline): no network at check time.
.PHONY: notice check-notice check-notice-crates check-licenses check-doc-links
CARGO_DENY_VERSION  := 0.20.2
CARGO_ABOUT_VERSION := 0.9.3
CARGO_DENY   := $(TOOLS)/bin/cargo-deny
CARGO_ABOUT  := $(TOOLS)/bin/cargo-about
$(CARGO_DENY):
	$(TOOL_INSTALL) cargo-deny --version $(CARGO_DENY_VERSION)
$(CARGO_ABOUT):
	$(CARGO) install cargo-about --version $(CARGO_ABOUT_VERSION) --features cli --locked --root $(TOOLS)

## Every crate of the default build (normal and build dependencies, Linux
## targets; deny.toml) is under a licence of deny.toml's allow-list.
check-licenses: $(CARGO_DENY)
	$(CARGO) fetch --locked --quiet
	$(CARGO_DENY) --offline --locked check licenses

## THIRD_PARTY_LICENSES.md: the licences of what the library links
## (about.toml, about.hbs). Its output is deterministic (sorted, no paths or
## dates), so the check regenerates it and diffs, as check-header does.
NOTICE_CMD = $(CARGO_ABOUT) generate --frozen --fail -c about.toml about.hbs
notice: $(CARGO_ABOUT)
	$(CARGO) fetch --locked --quiet
	$(NOTICE_CMD) -o THIRD_PARTY_LICENSES.md

check-notice: $(CARGO_ABOUT)
	@mkdir -p build
	$(CARGO) fetch --locked --quiet
	$(NOTICE_CMD) -o build/THIRD_PARTY_LICENSES.md.check
	@diff -u THIRD_PARTY_LICENSES.md build/THIRD_PARTY_LICENSES.md.check \
	  && echo "notice: THIRD_PARTY_LICENSES.md is up to date" \
	  || { echo "THIRD_PARTY_LICENSES.md is stale: run make notice (and review the licences)"; exit 1; }

## The crates listed in THIRD_PARTY_LICENSES.md are the crates the library
## links now (cargo tree; tools/lint/notice_crates.py): in `make lint`, for
## it needs no cargo-about. check-notice, which regenerates the whole file,
## runs in `make check-all`.
check-notice-crates:
	$(CARGO) fetch --locked --quiet
	$(PYTHON) tools/lint/notice_crates.py --cargo $(CARGO)

## Every relative link of the top-level documents resolves.
check-doc-links:
	$(PYTHON) tools/lint/doc_links.py README.md CHANGELOG.md THIRD_PARTY_LICENSES.md docs/*.md bindings/*/README.md

clean:
	$(CARGO) clean
	rm -rf build
	-$(MAKE) -C bindings/c clean
