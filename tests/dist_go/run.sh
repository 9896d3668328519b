#!/usr/bin/env bash
# make test-dist-go: the Go module of `make dist-go`, used the way a user
# outside the repository uses it.
#
#   run.sh DIST_DIR      (GO, MAKE from the Makefile)
#
# The module and a program (tests/dist_go/main.go, with a go.mod whose
# replace directive points at the module) are copied to a temporary
# directory, a library is installed there (make install, for the
# tinymls_pkgconfig build), and then everything runs in a private mount
# namespace in which an empty read-only tmpfs covers the checkout
# (tests/dist_go/inside.sh): nothing of it, target/ included, can be read.
# The namespace ends with the process, so nothing has to be restored, and
# other builds of the checkout running meanwhile see nothing. Where no mount
# namespace can be made (no root, no user namespaces), the same steps run
# with the checkout in place, and `go build -x` must name no path in it.
set -euo pipefail

DIST=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
GO=${GO:-go}
MAKE=${MAKE:-make}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n1)
PLATFORM=$("$GO" env GOOS)-$("$GO" env GOARCH)

fail() { echo "test-dist-go: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

WORK=$(mktemp -d /tmp/tinymls-dist-go.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
case "$WORK/" in "$REPO"/*) fail "the temporary directory $WORK is inside the checkout" ;; esac

step "the module: $DIST"
for f in go.mod LICENSE THIRD_PARTY_LICENSES.md README.md tinymls_go.h include/tinymls.h "lib/$PLATFORM/libtinymls.a" link_dist.go link_pkgconfig.go; do
    [ -f "$DIST/$f" ] || fail "missing $f"
done
extra=$(cd "$DIST" && find . -name '*_test.go' -o -name 'testhooks*.go' -o -name 'link_default.go' \
    -o -name 'link_static.go' -o -name 'link_testhooks.go')
[ -z "$extra" ] || fail "in-repo files in the module: $extra"
if grep -rn -e 'SRCDIR}/\.\.' -e "$REPO" --include='*.go' "$DIST"; then
    fail "a Go file of the module points outside it"
fi
cmp -s "$DIST/include/tinymls.h" "$REPO/include/tinymls.h" || fail "include/tinymls.h is not the repository's"
for f in LICENSE THIRD_PARTY_LICENSES.md; do
    cmp -s "$DIST/$f" "$REPO/$f" || fail "$f is not the repository's"
done
ar=$DIST/lib/$PLATFORM/libtinymls.a
objdump -h "$ar" >"$WORK/ar-sections"
if grep -qE ' \.(debug_[a-z]+|llvmbc|llvmcmd) ' "$WORK/ar-sections"; then
    fail "lib/$PLATFORM/libtinymls.a keeps debug info or LLVM bitcode"
fi
echo "   lib/$PLATFORM/libtinymls.a: $(stat -c %s "$ar") bytes (stripped)"

cp -r "$DIST" "$WORK/tinymls-go"
mkdir "$WORK/app"
cp "$HERE/main.go" "$WORK/app/main.go"
[ -z "$("$(dirname "$(command -v "$GO")")/gofmt" -l "$WORK/app/main.go")" ] || fail "gofmt: tests/dist_go/main.go"
cat >"$WORK/app/go.mod" <<EOF
module distcheck

go 1.24

require github.com/tinymls/tinymls/bindings/go v0.0.0

replace github.com/tinymls/tinymls/bindings/go => ../tinymls-go
EOF

step "make install PREFIX=$WORK/prefix (for -tags tinymls_pkgconfig)"
"$MAKE" -C "$REPO" --no-print-directory install PREFIX="$WORK/prefix" >"$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log"; fail "make install failed"; }

# Go's caches must stay readable with the checkout hidden: when they are in
# it (mk/go.mk puts them under build/go/ if $HOME is unusable), use fresh
# ones here.
for var in GOCACHE GOMODCACHE; do
    val=$("$GO" env "$var")
    case "$val/" in "$REPO"/*) export "$var=$WORK/$var" ;; esac
done
case "${XDG_CONFIG_HOME:-}/" in "$REPO"/*) export XDG_CONFIG_HOME=$WORK/config ;; esac
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local CGO_ENABLED=1 GOPROXY=off GOWORK=off

cp "$HERE/inside.sh" "$WORK/inside.sh"
args=("$WORK" "$REPO" "$VERSION" "$GO")
if [ "$(id -u)" = 0 ] && unshare --mount --propagation private true 2>/dev/null; then
    ns=(unshare --mount --propagation private)
elif unshare --user --map-root-user --mount --propagation private true 2>/dev/null; then
    ns=(unshare --user --map-root-user --mount --propagation private)
else
    ns=()
fi
if [ ${#ns[@]} -gt 0 ]; then
    step "the checkout hidden: ${ns[*]}, tmpfs over $REPO"
    "${ns[@]}" bash -c 'mount -t tmpfs -o ro,size=64k tinymls-hidden "$2" && exec bash "$1/inside.sh" "$@"' \
        inside "${args[@]}"
else
    echo "   (no mount namespace here: the checkout stays visible; go build -x must not name it)"
    TINYMLS_CHECK_TRACE=1 bash "$WORK/inside.sh" "${args[@]}"
fi
echo "test-dist-go: passed"
