#!/usr/bin/env python3
"""THIRD_PARTY_LICENSES.md lists exactly the crates the library links.

`make notice` writes THIRD_PARTY_LICENSES.md with cargo-about (about.toml,
about.hbs); `make check-notice` regenerates it and diffs, which needs the
cargo-about binary (two minutes to build on a fresh machine). This check,
run by `make lint`, needs only cargo: it compares the file's crate table
with the crates that `cargo tree` says the default build links on the
targets about.toml names (normal dependencies, TinyMLS itself left out).
A crate's licence text cannot change without its version changing, so
when the two lists agree the file is stale only if about.toml or about.hbs
changed, which `make check-notice` (in `make check-all`) catches.

Usage: notice_crates.py [--cargo CARGO] [--notice FILE] [--about FILE]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROW = re.compile(r"^\| ([A-Za-z0-9_-]+) \| ([0-9][^ |]*) \|")


def listed(notice: Path) -> set[tuple[str, str]]:
    rows = set()
    for line in notice.read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m:
            rows.add((m.group(1), m.group(2)))
    return rows


def linked(cargo: str, targets: list[str], top: Path) -> set[tuple[str, str]]:
    cmd = [cargo, "tree", "--locked", "--offline", "-e", "normal", "--prefix", "none", "--format", "{p}"]
    for t in targets:
        cmd += ["--target", t]
    out = subprocess.run(cmd, cwd=top, check=True, capture_output=True, text=True).stdout
    crates = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 2 or not fields[1].startswith("v"):
            continue
        name, version = fields[0], fields[1][1:]
        if name != "tinymls":
            crates.add((name, version))
    return crates


def main() -> int:
    top = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cargo", default="cargo")
    ap.add_argument("--notice", type=Path, default=top / "THIRD_PARTY_LICENSES.md")
    ap.add_argument("--about", type=Path, default=top / "about.toml")
    args = ap.parse_args()

    targets = tomllib.loads(args.about.read_text(encoding="utf-8")).get("targets", [])
    if not targets:
        print(f"notice-crates: {args.about} names no targets", file=sys.stderr)
        return 2
    have, want = listed(args.notice), linked(args.cargo, targets, top)
    if not want:
        print("notice-crates: cargo tree listed no crates", file=sys.stderr)
        return 2
    missing, extra = sorted(want - have), sorted(have - want)
    if missing or extra:
        for name, version in missing:
            print(f"notice-crates: {name} {version} is linked but not in {args.notice.name}")
        for name, version in extra:
            print(f"notice-crates: {name} {version} is in {args.notice.name} but not linked")
        print("THIRD_PARTY_LICENSES.md is stale: run make notice (and review the licences)")
        return 1
    print(f"notice-crates: {args.notice.name} lists the {len(want)} crates the library links")
    return 0


if __name__ == "__main__":
    sys.exit(main())
