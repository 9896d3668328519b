"""SPEC section 10: the known-answer decrypt sequence, run in order on one
shared context joined with the defaults but ratchet_period_ms = 0."""

from __future__ import annotations

import json

import pytest

import tinymls

from conftest import KAT, header_fields

EXPECTED_STEPS = 17


def test_kat_decrypt_sequence() -> None:
    kat = json.loads(KAT.read_text())
    steps = kat["decrypt_sequence"]
    assert len(steps) == EXPECTED_STEPS
    cfg = tinymls.Config(ratchet_period_ms=0)
    ran = 0
    newest = 0  # the newest epoch a message authenticated in: the context's epoch
    with tinymls.Context.join(bytes.fromhex(kat["group_secret"]), bytes.fromhex(kat["group_id"]), cfg) as ctx:
        assert ctx.epoch == 0
        for step in steps:
            ct = bytes.fromhex(step["ciphertext"])
            aad = bytes.fromhex(step["aad"])
            if "plaintext" in step:
                assert ctx.decrypt(ct, aad) == bytes.fromhex(step["plaintext"]), step["name"]
                newest = max(newest, header_fields(ct)[0])
            else:
                expected = tinymls.Status[step["error"]]
                with pytest.raises(tinymls.TinyMLSError) as info:
                    ctx.decrypt(ct, aad)
                assert info.value.status == expected, step["name"]
                assert type(info.value) is tinymls._errors.ERRORS_BY_STATUS[expected], step["name"]
            # A forged or rejected header never moves the epoch; an authentic
            # message from a newer epoch is followed (SPEC section 6).
            assert ctx.epoch == newest, step["name"]
            ran += 1
        assert newest == 2
    assert ran == EXPECTED_STEPS == len(steps)
