#!/usr/bin/env bash
# Exports in each of C, Go and Python, imports each export in each of them
# (every ordered pair), see README.md. Usage: run.sh BUILD_DIR
# with BUILD_DIR/state_cross (C), BUILD_DIR/state_cross_go (Go) built, and
# TINYMLS_LIBRARY and PYTHONPATH set for the Python side.
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
run() {
  case $1 in
    c) "$build/state_cross" "$2" "$3" ;;
    go) "$build/state_cross_go" "$2" "$3" ;;
    py) "${PYTHON:-python3}" "$here/state_cross.py" "$2" "$3" ;;
  esac
}
pairs=0
for exporter in c go py; do
  dir="$build/out-$exporter"
  rm -rf "$dir" && mkdir -p "$dir"
  run "$exporter" export "$dir"
  for importer in c go py; do
    run "$importer" import "$dir"
    echo "state-cross: exported in $exporter, imported in $importer: ok"
    pairs=$((pairs + 1))
  done
done
[ "$pairs" -eq 9 ] || { echo "state-cross: ran $pairs pairs, want 9"; exit 1; }
echo "state-cross: all $pairs ordered pairs passed"
