"""SPEC section 10: the known-answer decrypt sequence, run in order on one
shared context joined with the defaults but ratchet_period_ms = 0."""

from __future__ import annotations

import json

import pytest

import tinymls

from conftest import KAT, header_fields

EXPECTED_STEPS = 24
EXPECTED_EPOCH_CHECKS = 4


def test_kat_decrypt_sequence() -> None:
    kat = json.loads(KAT.read_text())
    steps = kat["decrypt_sequence"]
    assert len(steps) == EXPECTED_STEPS
    cfg = tinymls.Config(ratchet_period_ms=0)  # the defaults but the period
    ran = epoch_checks = errors = 0
    newest = 0  # the newest epoch a message authenticated in: the context's epoch
    with tinymls.Context.join(bytes.fromhex(kat["group_secret"]), bytes.fromhex(kat["group_id"]), cfg) as ctx:
        assert ctx.epoch == 0  # ratchet_period_ms = 0: a join starts at epoch 0
        for step in steps:
            name = step["name"]
            ct = bytes.fromhex(step["ciphertext"])
            aad = bytes.fromhex(step["aad"])
            if "plaintext" in step:
                assert "error" not in step, name
                assert ctx.decrypt(ct, aad) == bytes.fromhex(step["plaintext"]), name
                with pytest.raises(tinymls.ReplayError):  # read once: again is a replay
                    ctx.decrypt(ct, aad)
                newest = max(newest, header_fields(ct)[0])
            else:
                expected = tinymls.Status[step["error"]]
                with pytest.raises(tinymls.TinyMLSError) as info:
                    ctx.decrypt(ct, aad)
                assert info.value.status == expected, name
                assert type(info.value) is tinymls._errors.ERRORS_BY_STATUS[expected], name
                errors += 1
            if "current_epoch" in step:
                assert ctx.epoch == step["current_epoch"], f"{name}: current epoch"
                assert ctx.health().current_epoch == step["current_epoch"], f"{name}: health"
                epoch_checks += 1
            # With ratchet_period_ms = 0 a forged or rejected header never
            # moves the epoch; an authentic message from a later epoch is
            # adopted (SPEC sections 6 and 7.3).
            assert ctx.epoch == newest, name
            ran += 1
        assert newest == 1026  # the adopted jump of exactly max_future_epochs
        assert ctx.health().oldest_epoch == 1026 - 63
    assert ran == EXPECTED_STEPS == len(steps)
    assert epoch_checks == EXPECTED_EPOCH_CHECKS
    assert errors >= 12
