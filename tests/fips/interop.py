#!/usr/bin/env python3
"""A FIPS build and a default build of libtinymls read each other (issue 16).

    tests/fips/interop.py FIPS_LIB DEFAULT_LIB

Loads both shared libraries into one process (ctypes, RTLD_LOCAL: each keeps
its own symbols, its own Rust runtime and its own AWS-LC) and, through the C
ABI only:

* checks what each says about itself: tinymls_fips_mode() 1 and 0, the
  backend name, the health flag TINYMLS_HEALTH_FIPS_MODE;
* both ways, for two groups (epochs by rotation, and the default
  clock-following configuration): a plan of messages from 0 bytes to 100 KiB
  with and without AAD, rotations in between, batches; every message opens
  to its plaintext on the other side, and a flipped byte is refused (AUTH);
* four threads seal on one context of each library at once, single calls
  and batches (the FIPS build seals in strictly increasing seq per key); the
  other library opens every message, each (epoch, seq) once;
* a state blob exported by each is imported by the other (the FIPS build's
  blob carries the module-nonce flag), and the restored replica and the
  original read each other.

Exit status 0 when everything holds; an AssertionError otherwise.
"""
from __future__ import annotations

import ctypes
import struct
import sys
import threading
from ctypes import POINTER, byref, c_char, c_char_p, c_int32, c_int64, c_size_t, c_uint32, c_uint64, c_void_p

OK, BUFFER_TOO_SMALL, AUTH = 0, 4, 6
OVERHEAD = 40
HEALTH_FIPS_MODE = 16
MODULE_NONCE_FLAG = 4


class Config(ctypes.Structure):
    _fields_ = [
        ("key_size", c_uint32),
        ("nonce_size", c_uint32),
        ("ratchet_period_ms", c_uint64),
        ("rotation_jitter_pct", c_uint32),
        ("max_epochs", c_uint32),
        ("max_operations", c_uint64),
        ("max_key_age_ms", c_uint64),
        ("min_rotation_interval_ms", c_uint64),
        ("state_lifetime_ms", c_uint64),
        ("gc_interval_ms", c_uint64),
        ("replay_window", c_uint32),
        ("max_future_epochs", c_uint32),
        ("max_senders", c_uint32),
    ]


class Health(ctypes.Structure):
    _fields_ = [
        ("state", c_uint32),
        ("last_error", c_uint32),
        ("retained_epochs", c_uint32),
        ("flags", c_uint32),
        ("current_epoch", c_uint64),
        ("oldest_epoch", c_uint64),
        ("uptime_ms", c_uint64),
        ("key_age_ms", c_uint64),
        ("encrypt_count", c_uint64),
        ("decrypt_count", c_uint64),
        ("error_count", c_uint64),
        ("rotation_count", c_uint64),
        ("sender_id", c_uint64),
        ("clock_skew_ms", c_int64),
    ]


BATCH = [c_void_p, c_size_t, c_char_p, POINTER(c_size_t), c_char_p, POINTER(c_size_t),
         POINTER(c_char), c_size_t, POINTER(c_size_t), POINTER(c_uint32), POINTER(c_size_t)]
SIGNATURES = {
    "tinymls_fips_mode": (c_int32, []),
    "tinymls_aead_backend": (c_char_p, []),
    "tinymls_config_default": (None, [POINTER(Config)]),
    "tinymls_context_join": (c_uint32, [c_char_p, c_size_t, c_char_p, c_size_t, POINTER(Config), POINTER(c_void_p)]),
    "tinymls_encrypt": (c_uint32, [c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, POINTER(c_char), c_size_t,
                                   POINTER(c_size_t)]),
    "tinymls_decrypt": (c_uint32, [c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, POINTER(c_char), c_size_t,
                                   POINTER(c_size_t)]),
    "tinymls_encrypt_batch": (c_uint32, BATCH),
    "tinymls_rotate": (c_uint32, [c_void_p]),
    "tinymls_context_health": (c_uint32, [c_void_p, POINTER(Health)]),
    "tinymls_context_export": (c_uint32, [c_void_p, c_char_p, c_size_t, c_uint32, POINTER(c_char), c_size_t,
                                          POINTER(c_size_t)]),
    "tinymls_context_import": (c_uint32, [c_char_p, c_size_t, c_char_p, c_size_t, POINTER(Config),
                                          POINTER(c_void_p)]),
    "tinymls_context_free": (None, [c_void_p]),
}


class Lib:
    """One libtinymls, loaded on its own."""

    def __init__(self, path: str, name: str):
        self.name = name
        self.lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
        for fn, (ret, args) in SIGNATURES.items():
            f = getattr(self.lib, fn)
            f.restype, f.argtypes = ret, args

    def config(self, **fields: int) -> Config:
        cfg = Config()
        self.lib.tinymls_config_default(byref(cfg))
        for k, v in fields.items():
            setattr(cfg, k, v)
        return cfg

    def join(self, secret: bytes, group: bytes, cfg: Config) -> "Ctx":
        h = c_void_p()
        st = self.lib.tinymls_context_join(secret, len(secret), group, len(group), byref(cfg), byref(h))
        assert st == OK, f"{self.name}: join: status {st}"
        return Ctx(self, h)

    def import_state(self, blob: bytes, kek: bytes) -> "Ctx":
        h = c_void_p()
        st = self.lib.tinymls_context_import(blob, len(blob), kek, len(kek), None, byref(h))
        assert st == OK, f"{self.name}: import: status {st}"
        return Ctx(self, h)


class Ctx:
    def __init__(self, lib: Lib, handle: c_void_p):
        self.lib, self.h, self.c = lib, handle, lib.lib

    def encrypt(self, pt: bytes, aad: bytes = b"") -> bytes:
        out = ctypes.create_string_buffer(len(pt) + OVERHEAD)
        n = c_size_t()
        st = self.c.tinymls_encrypt(self.h, pt, len(pt), aad, len(aad), out, len(out), byref(n))
        assert st == OK, f"{self.lib.name}: encrypt of {len(pt)} bytes: status {st}"
        return out.raw[: n.value]

    def decrypt_status(self, ct: bytes, aad: bytes = b"") -> tuple[int, bytes]:
        out = ctypes.create_string_buffer(max(len(ct) - OVERHEAD, 1))
        n = c_size_t()
        st = self.c.tinymls_decrypt(self.h, ct, len(ct), aad, len(aad), out, len(out), byref(n))
        return st, out.raw[: n.value]

    def decrypt(self, ct: bytes, aad: bytes = b"") -> bytes:
        st, pt = self.decrypt_status(ct, aad)
        assert st == OK, f"{self.lib.name}: decrypt: status {st}"
        return pt

    def encrypt_batch(self, msgs: list[bytes]) -> list[bytes]:
        n = len(msgs)
        lens = (c_size_t * n)(*[len(m) for m in msgs])
        cap = sum(len(m) + OVERHEAD for m in msgs)
        out = ctypes.create_string_buffer(cap)
        out_lens, statuses, total = (c_size_t * n)(), (c_uint32 * n)(), c_size_t()
        st = self.c.tinymls_encrypt_batch(self.h, n, b"".join(msgs), lens, None, None, out, cap, out_lens,
                                          statuses, byref(total))
        assert st == OK and all(s == OK for s in statuses), f"{self.lib.name}: batch: {st} {list(statuses)}"
        cts, at = [], 0
        for i in range(n):
            cts.append(out.raw[at: at + out_lens[i]])
            at += out_lens[i]
        return cts

    def rotate(self) -> None:
        assert self.c.tinymls_rotate(self.h) == OK

    def health(self) -> Health:
        h = Health()
        assert self.c.tinymls_context_health(self.h, byref(h)) == OK
        return h

    def export(self, kek: bytes) -> bytes:
        n = c_size_t()
        st = self.c.tinymls_context_export(self.h, kek, len(kek), 0, None, 0, byref(n))
        assert st == BUFFER_TOO_SMALL, st
        out = ctypes.create_string_buffer(n.value)
        assert self.c.tinymls_context_export(self.h, kek, len(kek), 0, out, n.value, byref(n)) == OK
        return out.raw[: n.value]

    def free(self) -> None:
        self.c.tinymls_context_free(self.h)


def epoch_seq(ct: bytes) -> tuple[int, int]:
    # SPEC section 4: version, suite, 48-bit epoch, 64-bit sender, 64-bit seq.
    epoch = int.from_bytes(ct[2:8], "big")
    (seq,) = struct.unpack(">Q", ct[16:24])
    return epoch, seq


PLAN = [0, 1, 15, 16, 17, 64, 1000, 16384, 16385, 100_000]


def exchange(x: Ctx, y: Ctx, rotate: bool) -> int:
    """x seals the plan (rotating in between if asked), y opens it."""
    n = 0
    for i, size in enumerate(PLAN):
        pt = bytes((i * 7 + j) % 251 for j in range(size))
        aad = b"aad %d" % i if i % 2 else b""
        ct = x.encrypt(pt, aad)
        assert y.decrypt(ct, aad) == pt
        tampered = bytearray(x.encrypt(pt, aad))
        tampered[-1] ^= 1
        assert y.decrypt_status(bytes(tampered), aad)[0] == AUTH
        n += 2
        if rotate and i % 3 == 2:
            x.rotate()
    batch = [bytes([i]) * (i * 10) for i in range(20)]
    for pt, ct in zip(batch, x.encrypt_batch(batch)):
        assert y.decrypt(ct) == pt
        n += 1
    return n


def threaded(x: Ctx, y: Ctx) -> int:
    """Four threads seal on x at once; y opens every message once."""
    results: list[list[tuple[bytes, bytes]]] = [[] for _ in range(4)]
    errors = x.health().error_count

    def work(t: int) -> None:
        for i in range(250):
            pt = bytes([t, i % 256]) * (1 + i % 40)
            if i % 5 == 0:
                msgs = [pt + bytes([k]) for k in range(8)]
                results[t].extend(zip(msgs, x.encrypt_batch(msgs)))
            else:
                results[t].append((pt, x.encrypt(pt)))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    msgs = sorted((m for r in results for m in r), key=lambda m: epoch_seq(m[1]))
    assert len({epoch_seq(ct) for _, ct in msgs}) == len(msgs), "one (epoch, seq) per message"
    for pt, ct in msgs:
        assert y.decrypt(ct) == pt
    assert x.health().error_count == errors, "no seal failed"
    return len(msgs)


def main() -> int:
    fips, default = Lib(sys.argv[1], "fips"), Lib(sys.argv[2], "default")
    assert fips.lib.tinymls_fips_mode() == 1, fips.lib.tinymls_fips_mode()
    assert fips.lib.tinymls_aead_backend() == b"aws-lc-rs-fips"
    assert default.lib.tinymls_fips_mode() == 0
    assert default.lib.tinymls_aead_backend() == b"aws-lc-rs"

    secret, total = bytes(range(32)), 0
    for label, fields in [
        (b"fips-interop-period0", dict(ratchet_period_ms=0, min_rotation_interval_ms=0, max_operations=300)),
        (b"fips-interop-clock", {}),
    ]:
        f = fips.join(secret, label, fips.config(**fields))
        d = default.join(secret, label, default.config(**fields))
        assert f.health().flags & HEALTH_FIPS_MODE, "health says FIPS mode"
        assert not d.health().flags & HEALTH_FIPS_MODE
        rotate = bool(fields)
        total += exchange(f, d, rotate) + exchange(d, f, rotate)
        total += threaded(f, d) + threaded(d, f)
        # State: each library imports the other's export.
        kek = bytes([0x5A]) * 32
        blob_f, blob_d = f.export(kek), d.export(kek)
        assert int.from_bytes(blob_f[10:12], "big") & MODULE_NONCE_FLAG, "the module drew the FIPS blob's nonce"
        assert not int.from_bytes(blob_d[10:12], "big") & MODULE_NONCE_FLAG
        f2, d2 = default.import_state(blob_f, kek), fips.import_state(blob_d, kek)
        for x, y in [(f2, f), (f, f2), (d2, d), (d, d2), (f2, d2), (d2, f2)]:
            pt = b"after the import"
            assert y.decrypt(x.encrypt(pt)) == pt
            total += 1
        for c in (f, d, f2, d2):
            c.free()
    print(f"fips interop: {total} messages across the FIPS and default builds, both ways, and state blobs: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
