#!/usr/bin/env python3
"""The interop matrix: every ordered pair of {C, Go, Python, Rust} runners.

For each pair (encrypter, decrypter), both runners join one group (a fresh
random 32-byte secret and a group id per pair), the encrypter encrypts the
plan's messages -- an empty one, a 1 MiB one, several with AAD -- calling
rotate between them (4 rotations), and the decrypter, a context that starts
at epoch 0, decrypts the file, compares every plaintext with the plan,
checks that it followed the sender's epoch, and checks that a replay and a
tampered message are rejected. Each runner prints its counts; this driver
checks them against the plan and checks the totals. The self pairs (C->C,
...) run too. Exits non-zero on any failure.

    run.py --workdir DIR --c BIN --go BIN --rust BIN --python "PY interop.py"
           [--library libtinymls.so for the Python runner]

`make test-interop` builds the runners and calls this.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shlex
import subprocess
import sys

# The plan: (length, seed, aad) messages and rotations. Read by all four
# runners (format: tests/interop/c/interop.c).
MIB = 1 << 20
PLAN: list[tuple[int, int, bytes] | str] = [
    (0, 1, b""),  # empty message, no AAD
    (0, 2, b"aad only"),  # empty message, with AAD
    (1, 3, b""),
    (37, 4, b"order:42"),
    "rotate",
    (MIB, 5, b"1 MiB"),  # a 1 MiB message right after a rotation
    (4096, 6, bytes(range(256))),  # every byte value in the AAD
    "rotate",
    "rotate",  # two rotations in a row: the decrypter jumps two epochs
    (65537, 7, b""),
    (16, 8, b"\x00" * 300),
    "rotate",
    (0, 9, b"after the last rotation"),
    (100, 10, b""),
]
MESSAGES = sum(1 for s in PLAN if s != "rotate")
ROTATIONS = sum(1 for s in PLAN if s == "rotate")
PT_BYTES = sum(s[0] for s in PLAN if not isinstance(s, str))
OVERHEAD = 40
CT_BYTES = PT_BYTES + MESSAGES * OVERHEAD
REJECTS = 2  # a replay and a tampered message, per decrypter

LANGS = ("c", "go", "python", "rust")
ENC_RE = re.compile(r"^interop (\w+) encrypt: messages=(\d+) rotations=(\d+) bytes=(\d+)$", re.M)
DEC_RE = re.compile(r"^interop (\w+) decrypt: messages=(\d+) epoch=(\d+) bytes=(\d+) rejected=(\d+)$", re.M)


def write_plan(path: str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write("# tinymls interop plan: msg LEN SEED AAD_HEX | rotate\n")
        for s in PLAN:
            if isinstance(s, str):
                f.write("rotate\n")
            else:
                length, seed, aad = s
                f.write(f"msg {length} {seed} {aad.hex() if aad else '-'}\n")


def run(cmd: list[str], env: dict[str, str]) -> str:
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        sys.exit(f"FAIL: {shlex.join(cmd[:2])}... exited {p.returncode}\n{p.stdout}{p.stderr}")
    return p.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", required=True)
    for lang in LANGS:
        ap.add_argument(f"--{lang}", required=True, help=f"the {lang} runner command")
    ap.add_argument("--library", help="TINYMLS_LIBRARY for the Python runner")
    args = ap.parse_args()

    os.makedirs(args.workdir, exist_ok=True)
    plan = os.path.join(args.workdir, "plan.txt")
    write_plan(plan)
    env = dict(os.environ, RUST_BACKTRACE="0")
    if args.library:
        env["TINYMLS_LIBRARY"] = args.library
    runners = {lang: shlex.split(getattr(args, lang)) for lang in LANGS}

    # Each runner checks that the plan covers what the matrix promises: one
    # without rotations must make every runner fail.
    short = os.path.join(args.workdir, "plan-without-rotation.txt")
    with open(plan, encoding="ascii") as f, open(short, "w", encoding="ascii") as g:
        g.writelines(line for line in f if line.strip() != "rotate")
    for lang in LANGS:
        p = subprocess.run(runners[lang] + ["encrypt", short, os.urandom(32).hex(), "g", os.path.join(
            args.workdir, "unused.bin")], env=env, capture_output=True, text=True, timeout=300)
        if p.returncode == 0 or "the plan must have a rotation" not in p.stderr + p.stdout:
            sys.exit(f"FAIL: the {lang} runner accepted a plan without rotations:\n{p.stdout}{p.stderr}")
    print("interop: every runner refuses a plan without rotations")

    print(f"interop: plan of {MESSAGES} messages ({PT_BYTES} plaintext bytes, largest {MIB}), {ROTATIONS} rotations")
    pairs = list(itertools.product(LANGS, LANGS))
    decrypted = rejected = cross = 0
    for enc, dec in pairs:
        secret = os.urandom(32).hex()
        group = f"interop {enc}->{dec}"
        data = os.path.join(args.workdir, f"{enc}-to-{dec}.bin")

        out = run(runners[enc] + ["encrypt", plan, secret, group, data], env)
        m = ENC_RE.search(out)
        if not m or m.group(1) != enc:
            sys.exit(f"FAIL: {enc} encrypt printed no summary:\n{out}")
        got = tuple(int(x) for x in m.group(2, 3, 4))
        if got != (MESSAGES, ROTATIONS, CT_BYTES):
            sys.exit(f"FAIL: {enc} encrypt ran (messages, rotations, bytes) = {got}, "
                     f"plan has {(MESSAGES, ROTATIONS, CT_BYTES)}")
        if os.path.getsize(data) != 8 + 4 * MESSAGES + CT_BYTES:
            sys.exit(f"FAIL: {data} has {os.path.getsize(data)} bytes")

        out = run(runners[dec] + ["decrypt", plan, secret, group, data], env)
        m = DEC_RE.search(out)
        if not m or m.group(1) != dec:
            sys.exit(f"FAIL: {dec} decrypt printed no summary:\n{out}")
        got = tuple(int(x) for x in m.group(2, 3, 4, 5))
        if got != (MESSAGES, ROTATIONS, PT_BYTES, REJECTS):
            sys.exit(f"FAIL: {enc}->{dec}: decrypt ran (messages, final epoch, bytes, rejected) = {got}, "
                     f"expected {(MESSAGES, ROTATIONS, PT_BYTES, REJECTS)}")
        os.remove(data)
        decrypted += got[0]
        rejected += got[3]
        cross += enc != dec
        print(f"  {enc:>6} -> {dec:<6} ok: {got[0]} messages across {ROTATIONS} rotations "
              f"(epoch 0 -> {got[1]}), {got[3]} attacks rejected")

    if (len(pairs), cross, decrypted, rejected) != (16, 12, 16 * MESSAGES, 16 * REJECTS):
        sys.exit(f"FAIL: totals: pairs={len(pairs)} cross={cross} decrypted={decrypted} rejected={rejected}")
    print(f"interop: {len(pairs)} ordered pairs ({cross} cross-language), "
          f"{decrypted} messages decrypted, {rejected} replays/tamperings rejected: all ok")


if __name__ == "__main__":
    main()
