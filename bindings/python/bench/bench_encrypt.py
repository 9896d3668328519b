"""Per-call encrypt: tinymls.Context.encrypt against cryptography's AESGCM.encrypt.

Run with `make -C bindings/python bench` (installs `cryptography` into the
venv). Prints the best of several timeit repeats per call and the throughput;
both sides are called from Python, so the numbers include each binding's
per-call overhead. TinyMLS does more per call than a bare AEAD (the header,
sequence number, rotation check, a 40-byte rather than 16-byte overhead).
"""

from __future__ import annotations

import os
import platform
import timeit
from collections.abc import Callable, Iterator

# Installed by `make bench` only; `make test` type-checks this file without it.
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # type: ignore[import-not-found, unused-ignore]

import tinymls

SIZES = [("64 B", 64), ("1 MiB", 1 << 20)]
REPEATS = 5


def per_call(fn: Callable[[], object]) -> float:
    """Seconds per call: the best of REPEATS runs of about 0.2 s each."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=REPEATS, number=number)) / number


def main() -> None:
    print(f"tinymls {tinymls.version()} ({tinymls.backend()}) from {tinymls.library_path()}")
    print(f"Python {platform.python_version()}, cryptography AESGCM, {os.cpu_count()} CPUs")
    print(f"{'size':>6}  {'tinymls':>12}  {'AESGCM':>12}  {'ratio':>6}  {'tinymls MB/s':>12}  {'AESGCM MB/s':>12}")
    key = AESGCM.generate_key(bit_length=256)
    aead = AESGCM(key)
    # Periodic rotation off so that both sides measure the steady state.
    with tinymls.Context.new(tinymls.Config(ratchet_period_ms=0)) as ctx:
        for label, size in SIZES:
            pt = os.urandom(size)
            counter = iter(range(1 << 62))

            def tinymls_call(pt: bytes = pt) -> object:
                return ctx.encrypt(pt)

            def aesgcm_call(pt: bytes = pt, counter: Iterator[int] = counter) -> object:
                # A fresh nonce per call, as a caller of a bare AEAD must make.
                return aead.encrypt(next(counter).to_bytes(12, "big"), pt, None)

            t_tiny = per_call(tinymls_call)
            t_gcm = per_call(aesgcm_call)
            print(
                f"{label:>6}  {t_tiny * 1e6:>9.2f} us  {t_gcm * 1e6:>9.2f} us  {t_tiny / t_gcm:>6.2f}"
                f"  {size / t_tiny / 1e6:>12.1f}  {size / t_gcm / 1e6:>12.1f}"
            )


if __name__ == "__main__":
    main()
