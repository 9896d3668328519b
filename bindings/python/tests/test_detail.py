"""The library's detail of a failed call (``tinymls_last_error_message``):
every exception keeps its class and carries the detail in its message and
in ``.detail``; no detail carries a secret it was given; each thread reads
its own."""

from __future__ import annotations

import threading

import pytest

import tinymls
from tinymls import _ffi

from conftest import GROUP_ID, GROUP_SECRET


def test_a_short_group_secret_names_its_length_and_never_its_bytes() -> None:
    secret = b"SECRET-bytes-16!"
    with pytest.raises(tinymls.InvalidArgumentError) as info:
        tinymls.Context.join(secret, b"detail group")
    err = info.value
    assert isinstance(err, ValueError) and err.status == tinymls.Status.INVALID_ARGUMENT
    assert err.detail == "group_secret must be 32..=1024 bytes, got 16"
    assert str(err) == err.message == f"{tinymls.status_str(err.status)}: {err.detail}"
    for needle in ("SECRET", secret.decode(), secret.hex(), secret.hex().upper()):
        assert needle not in str(err)
    with pytest.raises(tinymls.InvalidArgumentError, match=r"group_id must be 1\.\.=255 bytes, got 256$"):
        tinymls.Context.join(GROUP_SECRET, bytes(256))


def test_a_config_field_out_of_range_is_named() -> None:
    with pytest.raises(tinymls.InvalidConfigError) as info:
        tinymls.Config(replay_window=100)
    assert isinstance(info.value, ValueError)
    assert info.value.detail == "replay_window must be 0 (off) or a multiple of 64 up to 4096, got 100"
    assert str(info.value).endswith(": " + info.value.detail)
    cfg = tinymls.Config(max_epochs=1)  # valid, but not for a group following the clock
    with pytest.raises(tinymls.InvalidConfigError) as info:
        tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg)
    assert info.value.detail == (
        "max_epochs must be at least 2 when epochs follow the clock (ratchet_period_ms > 0), got 1"
    )


def test_decrypt_failures_are_explained_but_authentication_only_by_its_class() -> None:
    with tinymls.Context.new(tinymls.Config(ratchet_period_ms=0, max_epochs=2)) as ctx:
        ct = ctx.encrypt(b"m", b"aad")
        with pytest.raises(tinymls.MalformedError) as info:
            ctx.decrypt(ct[:39])
        assert info.value.detail == "the ciphertext is 39 bytes; every TinyMLS message has at least 40"
        for aad in (b"", b"other"):
            with pytest.raises(tinymls.AuthenticationError) as auth:
                ctx.decrypt(ct, aad)
            assert auth.value.detail == "" and str(auth.value) == tinymls.status_str(tinymls.Status.AUTH)
        out = bytearray(0)
        with pytest.raises(tinymls.BufferTooSmallError) as small:
            ctx.decrypt_into(ct, out, b"aad")
        assert small.value.needed == 1
        assert small.value.detail == "out_cap is 0 bytes; 1 are needed for the plaintext (written to *out_len)"
        ctx.rotate()
        ctx.rotate()
        with pytest.raises(tinymls.EpochExpiredError) as expired:
            ctx.decrypt(ct, b"aad")
        assert expired.value.detail == (
            "epoch 0 is older than the oldest retained epoch 1; the window is max_epochs = 2 epochs"
        )


def test_state_errors_are_explained() -> None:
    with tinymls.Context.new() as ctx:
        with pytest.raises(tinymls.InvalidArgumentError) as info:
            ctx.export_state(bytes(31))
        assert info.value.detail == "kek must be 32 bytes, got 31"
        blob = ctx.export_state(bytes(32))
    with pytest.raises(tinymls.StateError) as state:
        tinymls.Context.from_state(blob, b"\x01" * 32)
    assert state.value.detail == "the state blob failed to unseal: a wrong KEK, or a changed blob"
    with pytest.raises(tinymls.MalformedError) as malformed:
        tinymls.Context.from_state(blob[:10], bytes(32))
    assert malformed.value.detail == "the blob is 10 bytes; a state blob has at least 44"


def test_each_thread_reads_its_own_detail() -> None:
    failures: list[str] = []

    def fail_with(length: int) -> None:
        for _ in range(100):
            try:
                tinymls.Context.join(bytes(length), GROUP_ID)
            except tinymls.InvalidArgumentError as e:
                if e.detail != f"group_secret must be 32..=1024 bytes, got {length}":
                    failures.append(e.detail)
            else:
                failures.append(f"{length}: no error")

    threads = [threading.Thread(target=fail_with, args=(n,)) for n in range(1, 17)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    # A new thread has no detail yet; this one still has its own.
    try:
        tinymls.Context.join(bytes(3), GROUP_ID)
    except tinymls.InvalidArgumentError:
        pass
    seen: list[str] = []
    t = threading.Thread(target=lambda: seen.append(_ffi.last_error_message()))
    t.start()
    t.join()
    assert seen == [""]
    assert _ffi.last_error_message() == "group_secret must be 32..=1024 bytes, got 3"
