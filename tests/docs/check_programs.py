#!/usr/bin/env python3
"""Runs the complete example programs of a document (docs/OPERATIONS.md) and
checks that what they print has the shape the document shows.

A complete program is a ```go block that starts with "package main", or a
```python block after prose that says "This program", each followed (after
some prose) by the ```text block of what it prints. Unlike the quick start
(tests/docs/check_quickstart.py), these outputs change on every run (times,
epochs, sender ids, fingerprints, counts, durations), so both sides are
normalised before they are compared: a run of digits, a 16-digit hex id and
an RFC 3339 time each become one placeholder, and so do a Go duration and
the key-memory flags (which depend on the host's RLIMIT_MEMLOCK). The
normalised lines must then be the same multiset (but for a `rotation`
event with reason `period`, which a run that crosses an epoch boundary
adds): the order is not compared, because a program writes events on
stderr and results on stdout.

Go programs run in a module of their own in a temporary directory, with a
`replace` to this checkout's bindings/go (the in-repo library,
target/release: `make lib`); Python programs run with bindings/python/src on
PYTHONPATH and TINYMLS_LIBRARY=target/release/libtinymls.so.

    check_programs.py [--repo DIR] FILE...      (make test-quickstart)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass

FENCE = re.compile(r"^```(\w*)\s*$")
GO_MODULE = "github.com/tinymls/tinymls/bindings/go"

# Order matters: times and ids before the bare numbers inside them.
NORMALISE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"), "<time>"),
    (re.compile(r"\b[0-9a-f]{16}\b"), "<hex>"),
    (re.compile(r"KeyMemory:\d+"), "KeyMemory:<flags>"),
    (re.compile(r"key_memory=<KeyMemory\.[A-Z_|]+: \d+>"), "key_memory=<flags>"),
    (re.compile(r"-?\d+(\.\d+)?(ns|µs|us|ms|s|m|h)\b"), "<duration>"),
    (re.compile(r"-?\d+(\.\d+)?(e-?\d+)?"), "<n>"),
]


# Printed lines that may be missing from what is shown: a shared group's
# epochs follow the clock (one per 100 ms at the defaults), so a run that
# crosses an epoch boundary logs a rotation with reason "period" (the
# document says so).
OPTIONAL = re.compile(r'"event":"rotation".*"reason":"period"|\btinymls rotation .*\breason=period\b')


def normalise(line: str) -> str:
    line = line.rstrip()
    for pattern, repl in NORMALISE:
        line = pattern.sub(repl, line)
    return line


@dataclass
class Program:
    lang: str
    text: str
    line: int
    expected: str = ""


def parse(path: str) -> list[Program]:
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    programs: list[Program] = []
    prose: list[str] = []
    pending: Program | None = None
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            if lines[i].strip():
                prose.append(lines[i])
            i += 1
            continue
        lang, start = m.group(1), i + 1
        j = start
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if j == len(lines):
            sys.exit(f"{path}:{i + 1}: unterminated code block")
        text = "\n".join(lines[start:j]) + "\n"
        said = " ".join(prose[-3:])
        if lang == "go" and text.startswith("package main"):
            pending = Program("go", text, i + 1)
        elif lang == "python" and "This program" in said:
            pending = Program("python", text, i + 1)
        elif lang == "text" and pending is not None:
            pending.expected = text
            programs.append(pending)
            pending = None
        elif pending is not None:
            sys.exit(f"{path}:{pending.line}: a complete program with no ```text block of its output after it")
        prose = []
        i = j + 1
    if pending is not None:
        sys.exit(f"{path}:{pending.line}: a complete program with no ```text block of its output after it")
    return programs


def run(program: Program, repo: str, tmp: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for k in ("TINYMLS_LIBRARY", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
        env.pop(k, None)
    if program.lang == "go":
        with open(os.path.join(tmp, "main.go"), "w", encoding="utf-8") as f:
            f.write(program.text)
        with open(os.path.join(tmp, "go.mod"), "w", encoding="utf-8") as f:
            f.write(f"module example.com/docprogram\n\ngo 1.24\n\nrequire {GO_MODULE} v0.0.0\n\n"
                    f"replace {GO_MODULE} => {os.path.join(repo, 'bindings', 'go')}\n")
        cmd = ["go", "run", "."]
    else:
        with open(os.path.join(tmp, "program.py"), "w", encoding="utf-8") as f:
            f.write(program.text)
        env["PYTHONPATH"] = os.path.join(repo, "bindings", "python", "src")
        env["TINYMLS_LIBRARY"] = os.path.join(repo, "target", "release", "libtinymls.so")
        cmd = [sys.executable, "program.py"]
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)


def check(path: str, repo: str) -> int:
    programs = parse(path)
    if not programs:
        sys.exit(f"{path}: no complete program with its output")
    for program in programs:
        where = f"{path}:{program.line} ({program.lang})"
        with tempfile.TemporaryDirectory(prefix="tinymls-docprogram-") as tmp:
            p = run(program, repo, tmp)
        if p.returncode != 0:
            print(f"FAIL {where}: exit {p.returncode}\n--- stderr (tail):\n{p.stderr[-4000:]}")
            return 1
        got = Counter(normalise(x) for x in (p.stdout + p.stderr).splitlines() if x.strip() and not OPTIONAL.search(x))
        shown = Counter(normalise(x) for x in program.expected.splitlines() if x.strip())
        if got != shown:
            print(f"FAIL {where}: the output does not have the shape shown (after normalising).")
            for line in sorted((shown - got).elements()):
                print(f"  shown, not printed: {line}")
            for line in sorted((got - shown).elements()):
                print(f"  printed, not shown: {line}")
            print(f"--- printed:\n{p.stdout}{p.stderr}")
            return 1
        print(f"ok   {where}: {sum(shown.values())} lines of output as shown")
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", default=os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    for path in args.files:
        if check(path, os.path.abspath(args.repo)):
            sys.exit(1)
    print("programs: every complete program of " + ", ".join(args.files) + " prints what is shown")


if __name__ == "__main__":
    main()
