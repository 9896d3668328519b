#!/bin/sh
# The 64-byte hot path of one build of the library (tools/bench/hotpath.c):
#
#   tools/bench/hotpath.sh [LIB_DIR]             min ns per call, TinyMLS
#                                                and the raw AEAD, one process
#   tools/bench/hotpath.sh [LIB_DIR] callgrind   instructions per call of
#                                                tinymls_encrypt/_decrypt
#
# LIB_DIR holds libtinymls.a (default: target/release, `make lib` builds
# it). To compare a change, build each version into its own directory
# (CARGO_TARGET_DIR=... cargo build --release) and run this on both, on a
# quiet machine. Instruction counts do not depend on the load: callgrind runs
# 20 000 and 40 000 calls and divides the difference by 20 000.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lib=${1:-$root/target/release}
lib=$(cd "$lib" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$(nm -g "$lib/libtinymls.a" 2>/dev/null | sed -n 's/.* T \(aws_lc_[0-9_]*_\)EVP_aead_aes_256_gcm$/\1/p' | head -n 1)
if [ -z "$prefix" ]; then
    echo "hotpath: no aws-lc in $lib/libtinymls.a (the rust-crypto build has none)" >&2
    exit 2
fi
cc -O2 -DAWSLC_PREFIX="$prefix" -I"$root/include" "$here/hotpath.c" "$lib/libtinymls.a" \
    -lpthread -ldl -lm -o "$work/hotpath"
if [ "${2:-time}" = callgrind ]; then
    # Whole-program instructions (callgrind's summary line), 40 000 calls
    # minus 20 000: the cost of one call and of the loop around it.
    for op in raw_seal tinymls_encrypt raw_open tinymls_decrypt; do
        for n in 20000 40000; do
            valgrind --tool=callgrind --callgrind-out-file="$work/cg.$op.$n" "$work/hotpath" loop "$op" "$n" \
                >/dev/null 2>&1
        done
        a=$(sed -n 's/^summary: //p' "$work/cg.$op.40000")
        b=$(sed -n 's/^summary: //p' "$work/cg.$op.20000")
        printf '%-16s %6d instructions per call\n' "$op" $(( (a - b) / 20000 ))
    done
else
    "$work/hotpath" time "${3:-25}"
fi
