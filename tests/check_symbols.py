#!/usr/bin/env python3
"""Checks that a built libtinymls.so exports exactly the functions that
include/tinymls.h declares: no undeclared export, no declared function
missing. Test-only exports (tinymls_test_*) are declared inside
`#if defined(TINYMLS_TEST_HOOKS)`: they must be present with --test-hooks and
absent without it.

usage: check_symbols.py [--test-hooks] HEADER LIBRARY
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

PROTOTYPE = re.compile(r"\b(tinymls_[a-z0-9_]+)\s*\(")


def header_functions(text: str) -> tuple[set[str], set[str]]:
    """(always-declared functions, functions under TINYMLS_TEST_HOOKS)."""
    always: set[str] = set()
    hooks: set[str] = set()
    stack: list[bool] = []  # True while inside a TINYMLS_TEST_HOOKS block
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#if"):
            stack.append("TINYMLS_TEST_HOOKS" in line)
            continue
        if line.startswith("#endif"):
            if stack:
                stack.pop()
            continue
        if line.startswith(("//", "*", "/*", "#")):
            continue
        for name in PROTOTYPE.findall(line):
            (hooks if any(stack) else always).add(name)
    return always, hooks


def exported(library: str) -> set[str]:
    out = subprocess.run(
        ["nm", "-D", "--defined-only", library], check=True, capture_output=True, text=True
    ).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("T", "W", "D", "B", "R"):
            names.add(parts[2])
    return names


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--test-hooks", action="store_true")
    ap.add_argument("header")
    ap.add_argument("library")
    args = ap.parse_args()

    with open(args.header, encoding="utf-8") as f:
        always, hooks = header_functions(f.read())
    if not always:
        print(f"check_symbols: no prototypes found in {args.header}", file=sys.stderr)
        return 1
    if not hooks:
        print(f"check_symbols: no TINYMLS_TEST_HOOKS prototypes in {args.header}", file=sys.stderr)
        return 1
    expected = always | hooks if args.test_hooks else always
    got = exported(args.library)

    missing = sorted(expected - got)
    extra = sorted(got - expected)
    for name in missing:
        print(f"check_symbols: declared in the header but not exported: {name}", file=sys.stderr)
    for name in extra:
        print(f"check_symbols: exported but not declared in the header: {name}", file=sys.stderr)
    # Any other exported symbol (not tinymls_*) is reported as "extra" too:
    # the cdylib must export only the header's #[no_mangle] functions.
    if missing or extra:
        return 1
    kind = "with test hooks" if args.test_hooks else "release"
    print(f"check_symbols: {args.library} ({kind}) exports exactly the {len(expected)} "
          f"functions of {args.header}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
