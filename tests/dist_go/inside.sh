#!/usr/bin/env bash
# The builds and runs of tests/dist_go/run.sh, run from a copy in its
# temporary directory, normally in a mount namespace where the checkout is
# an empty tmpfs (TINYMLS_CHECK_TRACE=1: the checkout is visible, and no
# command of `go build -x` may name it instead).
#
#   inside.sh WORK REPO VERSION GO
set -euo pipefail
# At the end of a pipe, `grep PATTERN >/dev/null`, never `grep -q`: grep -q
# exits at the first match, the writer may then die of SIGPIPE, and pipefail
# makes that a failure (ldd | grep -q failed 1 run in 300 here).
WORK=$1 REPO=$2 VERSION=$3 GO=$4
PLATFORM=$("$GO" env GOOS)-$("$GO" env GOARCH)
MOD=github.com/tinymls/tinymls/bindings/go

fail() { echo "test-dist-go: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

if [ -z "${TINYMLS_CHECK_TRACE:-}" ]; then
    [ -z "$(ls -A "$REPO")" ] || fail "the checkout $REPO is still visible"
fi

# go build -x into a log, with the linker's host link command (-ldflags=-v:
# the compile steps may come from Go's cache, the link never does); with
# TINYMLS_CHECK_TRACE, no command may name the checkout.
build() {
    local log=$WORK/build-$1.log
    shift
    "$GO" build -x -ldflags=-v "$@" 2>"$log" || { cat "$log"; fail "go build $*"; }
    if [ -n "${TINYMLS_CHECK_TRACE:-}" ] && grep -F "$REPO" "$log"; then
        fail "go build $* used files of the checkout"
    fi
}

# A static build: runs, has no libtinymls in ldd and no rpath.
check_static() {
    local bin=$1
    env -u LD_LIBRARY_PATH "./$bin" "$VERSION"
    ldd "./$bin" >"$WORK/$bin.ldd" || true
    if grep -q tinymls "$WORK/$bin.ldd"; then
        cat "$WORK/$bin.ldd"; fail "$bin loads a libtinymls"
    fi
    readelf -d "./$bin" >"$WORK/$bin.dynamic"
    if grep -qE 'RPATH|RUNPATH' "$WORK/$bin.dynamic"; then
        grep -E 'RPATH|RUNPATH' "$WORK/$bin.dynamic"; fail "$bin has an rpath"
    fi
    nm "./$bin" >"$WORK/$bin.nm"
    grep -q ' T tinymls_encrypt$' "$WORK/$bin.nm" || fail "$bin does not contain tinymls_encrypt"
    echo "   $bin: $(stat -c %s "./$bin") bytes; ldd: no libtinymls; no rpath"
}

step "go vet ./... in the module"
(cd "$WORK/tinymls-go" && "$GO" vet ./...)

cd "$WORK/app"
step "go vet, go build (default: static, lib/$PLATFORM/libtinymls.a)"
"$GO" vet .
build default -o distcheck .
grep 'host link:' "$WORK/build-default.log" | grep -- "$WORK/tinymls-go/lib/$PLATFORM/libtinymls.a" >/dev/null ||
    fail "the link did not use the module's archive"
check_static distcheck

step "go mod vendor, go build -mod=vendor (the module's own directory moved away)"
"$GO" mod vendor
for f in include/tinymls.h "lib/$PLATFORM/libtinymls.a" link_dist.go; do
    [ -f "vendor/$MOD/$f" ] || fail "go mod vendor dropped $f"
done
mv "$WORK/tinymls-go" "$WORK/tinymls-go.away"
build vendored -mod=vendor -o distcheck-vendored .
mv "$WORK/tinymls-go.away" "$WORK/tinymls-go"
grep 'host link:' "$WORK/build-vendored.log" | grep -- "vendor/$MOD/lib/$PLATFORM/libtinymls.a" >/dev/null ||
    fail "the vendored build did not link the vendored archive"
check_static distcheck-vendored
rm -rf vendor

step "-tags tinymls_pkgconfig: the library of make install PREFIX=$WORK/prefix"
PKG_CONFIG_PATH=$WORK/prefix/lib/pkgconfig build pkgconfig -tags tinymls_pkgconfig -o distcheck-dyn .
LD_LIBRARY_PATH=$WORK/prefix/lib ldd ./distcheck-dyn >"$WORK/dyn.ldd"
grep -q "libtinymls.so.0 => $WORK/prefix/lib/libtinymls.so.0" "$WORK/dyn.ldd" ||
    { cat "$WORK/dyn.ldd"; fail "distcheck-dyn does not load the installed libtinymls.so.0"; }
LD_LIBRARY_PATH=$WORK/prefix/lib ./distcheck-dyn "$VERSION"
echo "   distcheck-dyn: loads $WORK/prefix/lib/libtinymls.so.0"
