"""Per-call encrypt: tinymls.Context.encrypt against cryptography's AESGCM.

Run with `make -C bindings/python bench` (installs `cryptography` into the
venv; `make bench` at the top runs it and renders the figures). Both sides
are called from Python, so the numbers include each binding's per-call
overhead. TinyMLS does more per call than a bare AEAD (the header, sequence
number, rotation check, a 40-byte rather than 16-byte overhead).

Prints one JSON object per line, ``{"name", "size", "ns_per_msg"}``: the
median of REPEATS timed runs (after one warm-up run). ``BENCH_QUICK=1``
shortens every run.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable

# Installed by `make bench` only; `make test` type-checks this file without it.
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # type: ignore[import-not-found, unused-ignore]

import tinymls

SIZES = [64, 1 << 10, 16 << 10, 1 << 20]
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
REPEATS = 5 if QUICK else 9
RUN_SECONDS = 0.05 if QUICK else 0.2


def per_call(fn: Callable[[], object]) -> float:
    """Nanoseconds per call: the median of REPEATS runs of about RUN_SECONDS."""
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        dt = time.perf_counter() - t0
        if dt >= RUN_SECONDS / 4:
            number = max(1, int(number * RUN_SECONDS / dt))
            break
        number *= 4
    samples = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number * 1e9)
    return statistics.median(samples)


def emit(name: str, size: int, ns: float) -> None:
    print(json.dumps({"name": name, "size": size, "ns_per_msg": round(ns, 1)}), flush=True)


def main() -> None:
    print(
        json.dumps(
            {
                "name": "python_env",
                "text": f"Python {platform.python_version()}, tinymls {tinymls.version()} ({tinymls.backend()}),"
                f" cryptography AESGCM, {os.cpu_count()} CPUs",
            }
        ),
        flush=True,
    )
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    has_into = hasattr(aead, "encrypt_into")
    # The default configuration: rotation every 100 ms, metrics on.
    with tinymls.Context.new() as ctx:
        for size in SIZES:
            pt = os.urandom(size)
            counter = [0]

            def tinymls_call(pt: bytes = pt) -> object:
                return ctx.encrypt(pt)

            def aesgcm_call(pt: bytes = pt) -> object:
                # A fresh nonce per call, as a caller of a bare AEAD must make.
                counter[0] += 1
                return aead.encrypt(counter[0].to_bytes(12, "big"), pt, None)

            emit("tinymls_encrypt", size, per_call(tinymls_call))
            emit("aesgcm_encrypt", size, per_call(aesgcm_call))
            if has_into:
                buf = bytearray(size + 16)

                def aesgcm_into(pt: bytes = pt, buf: bytearray = buf) -> object:
                    counter[0] += 1
                    return aead.encrypt_into(counter[0].to_bytes(12, "big"), pt, None, buf)

                emit("aesgcm_encrypt_into", size, per_call(aesgcm_into))
            into = getattr(ctx, "encrypt_into", None)
            if into is not None:
                out = bytearray(size + tinymls.OVERHEAD)

                def tinymls_into(pt: bytes = pt, out: bytearray = out) -> object:
                    return into(pt, out)

                emit("tinymls_encrypt_into", size, per_call(tinymls_into))


if __name__ == "__main__":
    main()
