"""Cross-language state export/import: the Python side (see README.md)."""

from __future__ import annotations

import os
import sys

import tinymls

GROUP = b"state-cross"
SECRET = bytes(range(32))
KEK = b"\x33" * 32


def _put(d: str, name: str, data: bytes) -> None:
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def _get(d: str, name: str) -> bytes:
    with open(os.path.join(d, name), "rb") as f:
        return f.read()


def export(d: str) -> None:
    cfg = tinymls.Config(ratchet_period_ms=0)
    with tinymls.Context.join(SECRET, GROUP, cfg) as a, tinymls.Context.join(SECRET, GROUP, cfg) as s:
        read = s.encrypt(b"read before the export")
        a.decrypt(read)
        m0 = s.encrypt(b"epoch 0, sent before the export")
        s.rotate()
        a.rotate()
        m1 = s.encrypt(b"epoch 1, sent before the export")
        _put(d, "blob", a.export_state(KEK))
        _put(d, "blob_current", a.export_state(KEK, current_epoch_only=True))
        _put(d, "read.bin", read)
        _put(d, "m0.bin", m0)
        _put(d, "m1.bin", m1)
        _put(d, "sender", f"{a.sender_id:016x}".encode())


def import_(d: str) -> None:
    with tinymls.Context.from_state(_get(d, "blob"), KEK) as c:
        assert c.decrypt(_get(d, "m0.bin")) == b"epoch 0, sent before the export"
        assert c.decrypt(_get(d, "m1.bin")) == b"epoch 1, sent before the export"
        try:
            c.decrypt(_get(d, "read.bin"))
            raise AssertionError("a message the exporter had read was accepted again")
        except tinymls.ReplayError:
            pass
        assert c.epoch == 1
        assert f"{c.sender_id:016x}".encode() != _get(d, "sender")
    with tinymls.Context.from_state(_get(d, "blob_current"), KEK) as cur:
        try:
            cur.decrypt(_get(d, "m0.bin"))
            raise AssertionError("current-only import read epoch 0")
        except tinymls.EpochExpiredError:
            pass
        assert cur.decrypt(_get(d, "m1.bin")) == b"epoch 1, sent before the export"
    try:
        tinymls.Context.from_state(_get(d, "blob"), bytes(32))
        raise AssertionError("wrong KEK accepted")
    except tinymls.StateError:
        pass


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("export", "import"):
        sys.exit("usage: state_cross.py export|import DIR")
    (export if sys.argv[1] == "export" else import_)(sys.argv[2])
