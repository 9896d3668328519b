"""The Python runner of the interop matrix (tests/interop/run.py), using the
Python binding (``pip install ./bindings/python``)::

    python interop.py encrypt PLAN SECRET_HEX GROUP_ID OUT
    python interop.py decrypt PLAN SECRET_HEX GROUP_ID IN

The plan and file formats are those of tests/interop/c/interop.c.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

import tinymls

MAGIC = b"TMLSIOP1"


@dataclass
class Step:
    rotate: bool
    length: int = 0
    seed: int = 0
    aad: bytes = b""


def fail(msg: str) -> None:
    sys.exit(f"interop python: {msg}")


def read_plan(path: str) -> list[Step]:
    plan: list[Step] = []
    with open(path, encoding="ascii") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line == "rotate":
                plan.append(Step(rotate=True))
                continue
            kind, length, seed, aad = line.split()
            if kind != "msg":
                fail(f"bad plan line {line!r}")
            plan.append(Step(False, int(length), int(seed), b"" if aad == "-" else bytes.fromhex(aad)))
    # What this runner runs: the cases the matrix promises, or it fails.
    if not (
        any(s.rotate for s in plan)
        and any(not s.rotate and s.length == 0 for s in plan)
        and any(s.length >= 1 << 20 for s in plan)
        and any(s.aad for s in plan)
    ):
        fail("the plan must have a rotation, an empty message, a 1 MiB one and one with AAD")
    return plan


def plaintext(n: int, seed: int) -> bytes:
    return bytes((seed * 131 + j * 7 + (j >> 8)) & 0xFF for j in range(n))


def header_epoch(ct: bytes) -> int:
    """The 48-bit epoch at bytes 2..8 of a v2 header (SPEC section 4)."""
    if ct[:2] != b"\x02\x01":
        fail(f"not a v2 header: {ct[:2].hex()}")
    return int.from_bytes(ct[2:8], "big")


def encrypt(ctx: tinymls.Context, plan: list[Step], path: str) -> None:
    out = bytearray(MAGIC)
    epoch = messages = rotations = total = 0
    for s in plan:
        if s.rotate:
            ctx.rotate()
            epoch += 1
            rotations += 1
            if ctx.epoch != epoch:
                fail(f"rotate did not move to epoch {epoch}")
            continue
        ct = ctx.encrypt(plaintext(s.length, s.seed), aad=s.aad)
        if len(ct) != s.length + tinymls.OVERHEAD or header_epoch(ct) != epoch:
            fail(f"ciphertext {messages}: length {len(ct)} or header epoch {header_epoch(ct)} differs from the plan")
        out += struct.pack(">I", len(ct)) + ct
        messages += 1
        total += len(ct)
    with open(path, "wb") as f:
        f.write(out)
    print(f"interop python encrypt: messages={messages} rotations={rotations} bytes={total}")


def decrypt(ctx: tinymls.Context, plan: list[Step], path: str) -> None:
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(MAGIC):
        fail(f"{path} is not an interop ciphertext file")
    pos = len(MAGIC)
    records: list[tuple[bytes, bytes]] = []
    epoch = messages = total = rejected = 0
    for s in plan:
        if s.rotate:
            epoch += 1
            continue
        if pos + 4 > len(data):
            fail(f"record {messages}: file ends early")
        (n,) = struct.unpack_from(">I", data, pos)
        ct = data[pos + 4 : pos + 4 + n]
        pos += 4 + n
        if len(ct) != s.length + tinymls.OVERHEAD or header_epoch(ct) != epoch:
            fail(f"record {messages}: length {len(ct)} or header epoch differs from the plan")
        # Alternate the accepted buffer types: bytes, bytearray, memoryview.
        if messages == 0:
            # First, a copy with one bit of its tag flipped: refused, and it
            # does not burn the sequence number.
            tampered = bytearray(ct)
            tampered[-1] ^= 1
            try:
                ctx.decrypt(tampered, aad=s.aad)
                fail("tampered first record was accepted")
            except tinymls.AuthenticationError:
                rejected += 1
        arg: tinymls.Buffer = (ct, bytearray(ct), memoryview(ct))[messages % 3]
        pt = ctx.decrypt(arg, aad=s.aad)
        if pt != plaintext(s.length, s.seed):
            fail(f"record {messages}: plaintext differs from the plan")
        if ctx.epoch != epoch:
            fail(f"record {messages}: the context did not follow the sender to epoch {epoch}")
        records.append((ct, s.aad))
        messages += 1
        total += len(pt)
    if pos != len(data):
        fail(f"{len(data) - pos} extra bytes after the last record")
    if not records:
        fail("the plan has no message")
    first_ct, first_aad = records[0]
    try:
        ctx.decrypt(first_ct, aad=first_aad)
        fail("replayed first record was accepted")
    except tinymls.ReplayError:
        rejected += 1
    print(f"interop python decrypt: messages={messages} epoch={ctx.epoch} bytes={total} rejected={rejected}")


def main() -> None:
    if len(sys.argv) != 6 or sys.argv[1] not in ("encrypt", "decrypt"):
        sys.exit("usage: interop.py encrypt|decrypt PLAN SECRET_HEX GROUP_ID FILE")
    mode, plan_path, secret_hex, group, path = sys.argv[1:]
    plan = read_plan(plan_path)
    config = tinymls.Config(ratchet_period_ms=0)  # the epoch moves only at the plan's rotations
    with tinymls.Context.join(bytes.fromhex(secret_hex), group.encode(), config) as ctx:
        if mode == "encrypt":
            encrypt(ctx, plan, path)
        else:
            decrypt(ctx, plan, path)


if __name__ == "__main__":
    main()
