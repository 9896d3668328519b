#!/usr/bin/env bash
# make test-install: `make install` into a fresh PREFIX (no DESTDIR), then
# what a C user does with it, then `make uninstall`.
#
#   * exactly the expected files, the shared library under MAX_SO_BYTES and
#     stripped (no .symtab, no debug sections), its debug info in
#     .debug/ with the same build id and named by its .gnu_debuglink (and
#     found by gdb, when gdb is installed), the archive without debug info
#     or LLVM bitcode;
#   * the install says how the loader finds a custom prefix (no ldconfig);
#   * tests/install/roundtrip.c built with `pkg-config --cflags --libs
#     tinymls` runs with LD_LIBRARY_PATH, and with -Wl,-rpath without it;
#     the same against the tree moved elsewhere (`pkg-config
#     --define-prefix`: tinymls.pc is relocatable); fully static with
#     `pkg-config --static` (no libtinymls at run time);
#   * `make uninstall` leaves no file or link under PREFIX.
#
# usage: tests/install/run.sh   (from the top of the repository; MAKE, CC)
set -euo pipefail
# At the end of a pipe, `grep PATTERN >/dev/null`, never `grep -q`: grep -q
# exits at the first match, the writer may then die of SIGPIPE, and pipefail
# makes that a failure (ldd | grep -q failed 1 run in 300 here).

REPO=$(cd "$(dirname "$0")/../.." && pwd)
MAKE=${MAKE:-make}
CC=${CC:-cc}
MAX_SO_BYTES=$((3 * 1024 * 1024))
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n1)
SOLIB=libtinymls.so.$VERSION

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tinymls-install.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PREFIX=$WORK/prefix
mkdir -p "$PREFIX"

fail() { echo "test-install: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "make install PREFIX=$PREFIX"
"$MAKE" -C "$REPO" --no-print-directory install PREFIX="$PREFIX" >"$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log"; fail "make install failed"; }
grep -q "is not in the dynamic loader's search path" "$WORK/install.log" ||
    { cat "$WORK/install.log"; fail "no loader-path note for a custom prefix"; }
grep -qE '^(/[^ ]*/)?ldconfig$' "$WORK/install.log" && fail "ldconfig ran for a custom prefix"

expected="include/tinymls.h
lib/.debug/$SOLIB.debug
lib/libtinymls.a
lib/libtinymls.so
lib/libtinymls.so.0
lib/$SOLIB
lib/pkgconfig/tinymls.pc
share/doc/tinymls/LICENSE
share/doc/tinymls/THIRD_PARTY_LICENSES.md"
got=$(cd "$PREFIX" && find . \( -type f -o -type l \) | sed 's|^\./||' | LC_ALL=C sort)
[ "$got" = "$(LC_ALL=C sort <<<"$expected")" ] || fail "installed files differ:
$(diff <(LC_ALL=C sort <<<"$expected") <(echo "$got"))"
for f in LICENSE THIRD_PARTY_LICENSES.md; do
    cmp -s "$PREFIX/share/doc/tinymls/$f" "$REPO/$f" || fail "share/doc/tinymls/$f is not the repository's"
done
[ "$(readlink "$PREFIX/lib/libtinymls.so")" = libtinymls.so.0 ] || fail "libtinymls.so link"
[ "$(readlink "$PREFIX/lib/libtinymls.so.0")" = "$SOLIB" ] || fail "libtinymls.so.0 link"

step "sizes and stripping"
so=$PREFIX/lib/$SOLIB
ar=$PREFIX/lib/libtinymls.a
dbg=$PREFIX/lib/.debug/$SOLIB.debug
so_bytes=$(stat -c %s "$so")
ar_bytes=$(stat -c %s "$ar")
echo "   $SOLIB: $so_bytes bytes; libtinymls.a: $ar_bytes bytes; debug info: $(stat -c %s "$dbg") bytes"
[ "$so_bytes" -lt "$MAX_SO_BYTES" ] || fail "$SOLIB is $so_bytes bytes (limit $MAX_SO_BYTES)"
sections=$(readelf -SW "$so")
grep -qE ' \.(symtab|debug_[a-z]+) ' <<<"$sections" && fail "$SOLIB is not stripped"
file -L "$so" | grep ', stripped' >/dev/null || fail "file(1) does not call $SOLIB stripped"
readelf -SW "$dbg" | grep ' \.debug_info ' >/dev/null || fail "$dbg has no .debug_info"
so_id=$(readelf -n "$so" | sed -n 's/.*Build ID: //p')
dbg_id=$(readelf -n "$dbg" | sed -n 's/.*Build ID: //p')
[ -n "$so_id" ] && [ "$so_id" = "$dbg_id" ] || fail "build ids differ: $so_id / $dbg_id"
readelf -p .gnu_debuglink "$so" | grep -F "$SOLIB.debug" >/dev/null || fail "no .gnu_debuglink to $SOLIB.debug"
if command -v gdb >/dev/null; then
    gdb -nx -batch -ex 'info line tinymls_version_number' "$so" 2>&1 | grep 'of "src/ffi/' >/dev/null ||
        fail "gdb does not find the debug info of $SOLIB"
    echo "   gdb finds the line info of tinymls_version_number through the debuglink"
else
    echo "   (gdb not installed: debuglink checked with readelf only)"
fi
objdump -h "$ar" >"$WORK/ar-sections"
grep -qE ' \.(debug_[a-z]+|llvmbc|llvmcmd) ' "$WORK/ar-sections" && fail "libtinymls.a keeps debug info or LLVM bitcode"

export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig
STRICT=(-std=c11 -Wall -Wextra -Wpedantic -Werror)
PROG=$REPO/tests/install/roundtrip.c

step "pkg-config: $(pkg-config --cflags --libs tinymls)"
[ "$(pkg-config --modversion tinymls)" = "$VERSION" ] || fail "pkg-config --modversion"
[ "$(pkg-config --variable=libdir tinymls)" = "$PREFIX/lib" ] || fail "libdir"
grep -qx 'libdir=${prefix}/lib' "$PKG_CONFIG_PATH/tinymls.pc" || fail "libdir is not relative to \${prefix}"
grep -qx 'includedir=${prefix}/include' "$PKG_CONFIG_PATH/tinymls.pc" || fail "includedir is not relative to \${prefix}"
# shellcheck disable=SC2046 # pkg-config's output is a list of flags
"$CC" "${STRICT[@]}" "$PROG" $(pkg-config --cflags --libs tinymls) -o "$WORK/dyn"
ldd "$WORK/dyn" | grep "libtinymls.so.0 => $PREFIX/lib/libtinymls.so.0" >/dev/null && fail "found without LD_LIBRARY_PATH?"
LD_LIBRARY_PATH=$PREFIX/lib "$WORK/dyn"
LD_LIBRARY_PATH=$PREFIX/lib ldd "$WORK/dyn" | grep "libtinymls.so.0 => $PREFIX/lib/libtinymls.so.0" >/dev/null ||
    fail "not linked against $PREFIX/lib/libtinymls.so.0"

step "with -Wl,-rpath (no LD_LIBRARY_PATH)"
# shellcheck disable=SC2046
"$CC" "${STRICT[@]}" "$PROG" $(pkg-config --cflags --libs tinymls) -Wl,-rpath,"$PREFIX/lib" -o "$WORK/rpath"
env -u LD_LIBRARY_PATH "$WORK/rpath"

step "static: cc -static ... \$(pkg-config --static --cflags --libs tinymls)"
# shellcheck disable=SC2046
"$CC" "${STRICT[@]}" -static "$PROG" $(pkg-config --static --cflags --libs tinymls) -o "$WORK/static" \
    2>"$WORK/static.log" || { cat "$WORK/static.log"; fail "static link failed"; }
# glibc warns that getaddrinfo/getpwuid_r (in Rust's std, unused here) need
# its shared libraries at run time in a static binary; anything else is news.
if grep -v -e "in statically linked applications requires at runtime" -e "in function \`" "$WORK/static.log" | grep . >/dev/null; then
    cat "$WORK/static.log"; fail "unexpected output from the static link"
fi
file "$WORK/static" | grep 'statically linked' >/dev/null || fail "not a static executable"
nm "$WORK/static" >"$WORK/static.nm"
grep -q ' T tinymls_encrypt$' "$WORK/static.nm" || fail "tinymls_encrypt not linked in"
env -u LD_LIBRARY_PATH "$WORK/static"

step "relocated: the tree moved, pkg-config --define-prefix"
mv "$PREFIX" "$WORK/moved"
# shellcheck disable=SC2046
"$CC" "${STRICT[@]}" "$PROG" \
    $(PKG_CONFIG_PATH=$WORK/moved/lib/pkgconfig pkg-config --define-prefix --cflags --libs tinymls) -o "$WORK/moved-prog"
LD_LIBRARY_PATH=$WORK/moved/lib ldd "$WORK/moved-prog" | grep "=> $WORK/moved/lib/libtinymls.so.0" >/dev/null ||
    fail "not linked against the moved library"
LD_LIBRARY_PATH=$WORK/moved/lib "$WORK/moved-prog"
mv "$WORK/moved" "$PREFIX"

step "make uninstall PREFIX=$PREFIX"
"$MAKE" -C "$REPO" --no-print-directory uninstall PREFIX="$PREFIX" >"$WORK/uninstall.log" 2>&1 ||
    { cat "$WORK/uninstall.log"; fail "make uninstall failed"; }
left=$(cd "$PREFIX" && find . -mindepth 1 \( -type f -o -type l \))
[ -z "$left" ] || fail "left behind after uninstall: $left"
for d in lib/.debug lib/pkgconfig; do
    [ ! -e "$PREFIX/$d" ] || fail "$d (emptied) not removed"
done
echo "test-install: passed ($SOLIB $so_bytes bytes, libtinymls.a $ar_bytes bytes)"
