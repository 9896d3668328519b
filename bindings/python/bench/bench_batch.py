"""Batch calls against one call per message: encrypt_many/decrypt_many (lists
of messages) and encrypt_packed (messages back to back in one buffer) vs
encrypt/decrypt in a loop, for 64 B and 1 KiB messages, 64 messages a batch.

Run with `make -C bindings/python bench-batch`. Prints one JSON object per
line: {"name": ..., "size": ..., "ns_per_msg": ...} (the best of several
timeit repeats, divided by the messages per batch).
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable

import tinymls

SIZES = [64, 1024]
BATCH = 64
REPEATS = 5


def ns_per_batch(fn: Callable[[], object]) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=REPEATS, number=number)) / number * 1e9


def main() -> None:
    # Periodic rotation off: the steady state, the same epoch throughout.
    with tinymls.Context.new(tinymls.Config(ratchet_period_ms=0)) as ctx:
        for size in SIZES:
            pts = [bytes([i]) * size for i in range(BATCH)]
            # Own ciphertexts are not replay-checked: decrypt them again and again.
            cts = ctx.encrypt_many(pts)

            packed, lens = b"".join(pts), [size] * BATCH

            def encrypt_per_call() -> None:
                for p in pts:
                    ctx.encrypt(p)

            def decrypt_per_call() -> None:
                for c in cts:
                    ctx.decrypt(c)

            cases: list[tuple[str, Callable[[], object]]] = [
                ("encrypt_many", lambda: ctx.encrypt_many(pts)),
                ("encrypt_packed", lambda: ctx.encrypt_packed(packed, lens)),
                ("encrypt_per_call", encrypt_per_call),
                ("decrypt_many", lambda: ctx.decrypt_many(cts)),
                ("decrypt_per_call", decrypt_per_call),
            ]
            for name, fn in cases:
                ns = ns_per_batch(fn) / BATCH
                print(json.dumps({"name": name, "size": size, "ns_per_msg": round(ns, 1)}), flush=True)


if __name__ == "__main__":
    main()
