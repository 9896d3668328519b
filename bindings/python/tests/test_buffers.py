"""Any buffer (PEP 688) as plaintext, AAD, ciphertext or output: array.array,
mmap, memoryviews of every shape, NumPy arrays when NumPy is installed; and
decrypt_into. That they are passed without a copy: test_roundtrip.py."""

from __future__ import annotations

import array
import mmap
from pathlib import Path
from typing import Any

import pytest

import tinymls

MESSAGE = b"attack at dawn, bring snacks"


def _mapped(data: bytes) -> mmap.mmap:
    """An anonymous writable mapping holding ``data``."""
    region = mmap.mmap(-1, len(data))
    region.write(data)
    return region


def _read_only_map(tmp_path: Path, data: bytes) -> mmap.mmap:
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def test_array_and_mmap_everywhere(pair: tuple[tinymls.Context, tinymls.Context], tmp_path: Path) -> None:
    a, b = pair
    words = array.array("I", range(7))  # 28 bytes: the buffer's size, not len()
    with _mapped(b"mapped aad") as aad:
        ct = a.encrypt(words, aad)
        assert len(ct) == 28 + tinymls.OVERHEAD
        with _mapped(ct) as ct_map:
            assert b.decrypt(ct_map, array.array("B", b"mapped aad")) == words.tobytes()
    ro = _read_only_map(tmp_path, MESSAGE)
    try:
        ct = a.encrypt(ro, aad=ro)  # read-only: copied, then passed
        assert b.decrypt(array.array("B", ct), MESSAGE) == MESSAGE
    finally:
        ro.close()  # no export left behind by the calls


def test_non_contiguous_inputs_are_copied_exactly(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    a, b = pair
    backing = bytearray(range(64))
    every_other = memoryview(backing)[::2]  # 32 bytes, strided
    ct = a.encrypt(every_other, aad=memoryview(b"abcdef")[::3])
    assert b.decrypt(ct, aad=b"ad") == bytes(range(0, 64, 2))
    # A 2-D C-contiguous view (a cast) is passed in place: all its bytes.
    square = memoryview(bytearray(MESSAGE[:16])).cast("B", (4, 4))
    assert b.decrypt(a.encrypt(square)) == MESSAGE[:16]
    # Batches take them too.
    cts = a.encrypt_many([every_other, array.array("H", [1, 2]), square], aad=[b"1", every_other, b"3"])
    got = b.decrypt_many(cts, aad=[b"1", bytes(every_other), b"3"])
    assert got == [bytes(range(0, 64, 2)), b"\x01\x00\x02\x00", MESSAGE[:16]]


def test_outputs_of_any_writable_buffer(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    a, b = pair
    ct_out = array.array("B", bytes(len(MESSAGE) + tinymls.OVERHEAD))
    n = a.encrypt_into(MESSAGE, ct_out, aad=b"x")
    assert n == len(ct_out)
    with mmap.mmap(-1, len(MESSAGE) + 5) as pt_out:
        pt_out.write(b"\xaa" * len(pt_out))
        assert b.decrypt_into(ct_out, pt_out, aad=b"x") == len(MESSAGE)
        assert pt_out[:] == MESSAGE + b"\xaa" * 5  # nothing past the plaintext


def test_bad_outputs_are_refused_before_the_call(local: tinymls.Context, tmp_path: Path) -> None:
    ct = local.encrypt(MESSAGE)
    ro = _read_only_map(tmp_path, bytes(100))
    try:
        for call in (local.encrypt_into, local.decrypt_into):
            arg = MESSAGE if call == local.encrypt_into else ct
            with pytest.raises(tinymls.InvalidArgumentError, match="writable contiguous"):
                call(arg, ro)
            with pytest.raises(tinymls.InvalidArgumentError, match="writable contiguous"):
                call(arg, memoryview(bytearray(200))[::2])  # strided: not written through a copy
            with pytest.raises(tinymls.ArgumentTypeError, match="out must be a writable buffer"):
                call(arg, bytes(100))
            with pytest.raises(tinymls.ArgumentTypeError, match="not list"):
                call(arg, [0] * 100)  # type: ignore[arg-type]
    finally:
        ro.close()
    assert local.decrypt(ct) == MESSAGE  # nothing consumed


def test_decrypt_into(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    a, b = pair
    ct = a.encrypt(MESSAGE, b"aad")
    out = bytearray(b"\xaa" * (len(MESSAGE) + 3))
    assert b.decrypt_into(memoryview(ct), out, b"aad") == len(MESSAGE)
    assert out == MESSAGE + b"\xaa\xaa\xaa"
    with pytest.raises(tinymls.ReplayError):
        b.decrypt_into(ct, out, b"aad")
    assert out == bytes(len(out))  # a failed decrypt zeroes all of out, as the C ABI does
    # An empty plaintext, into an empty buffer.
    assert b.decrypt_into(a.encrypt(b""), bytearray()) == 0


def test_decrypt_into_too_small(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    a, b = pair
    ct = a.encrypt(MESSAGE)
    small = bytearray(b"\xaa" * (len(MESSAGE) - 1))
    with pytest.raises(tinymls.BufferTooSmallError) as info:
        b.decrypt_into(ct, small)
    err = info.value
    assert err.needed == len(MESSAGE) and err.status == tinymls.Status.BUFFER_TOO_SMALL
    assert f"needs {len(MESSAGE)}" in str(err) and err.name == "BUFFER_TOO_SMALL"
    assert small == b"\xaa" * len(small)  # untouched
    assert b.decrypt_into(ct, bytearray(err.needed)) == len(MESSAGE)  # not spent on the refusal


def test_decrypt_into_failures(local: tinymls.Context) -> None:
    ct = bytearray(local.encrypt(MESSAGE))
    with pytest.raises(tinymls.InvalidArgumentError):
        local.decrypt_into(ct, memoryview(ct)[tinymls.OVERHEAD :])  # out overlaps the ciphertext
    out = bytearray(b"\xaa" * 64)
    with pytest.raises(tinymls.MalformedError):
        local.decrypt_into(ct[:10], out)
    assert out == bytes(64)
    local.close()
    out = bytearray(b"\xaa" * 64)
    with pytest.raises(tinymls.ClosedError):
        local.decrypt_into(ct, out)
    assert out == bytes(64)  # zeroed, as the library zeroes out for a closed handle


def test_decrypt_into_on_a_closed_context_zeroes_out(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    # README and the docstring: a failed decrypt leaves all of out zeroed, as
    # in the C ABI (which zeroes it when it refuses a closed handle too).
    a, b = pair
    ct = a.encrypt(MESSAGE)
    out = bytearray(len(MESSAGE))
    assert b.decrypt_into(ct, out) == len(MESSAGE) and out == MESSAGE
    b.close()
    for buf in (out, memoryview(out), array.array("B", MESSAGE)):
        with pytest.raises(tinymls.ClosedError):
            b.decrypt_into(ct, buf)
        assert bytes(buf) == bytes(len(MESSAGE))
    with pytest.raises(tinymls.ClosedError):  # an out that cannot be zeroed: still ClosedError first
        b.decrypt_into(ct, bytes(len(MESSAGE)))


def test_numpy_arrays(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    np: Any = pytest.importorskip("numpy")
    a, b = pair
    matrix = np.arange(24, dtype=np.uint16).reshape(4, 6)
    ct = a.encrypt(matrix, aad=matrix[:, ::2])  # a C-contiguous array; a strided one (copied)
    pt = b.decrypt(ct, aad=np.ascontiguousarray(matrix[:, ::2]).tobytes())
    assert pt == matrix.tobytes()
    out = np.zeros(len(ct), dtype=np.uint8)
    assert a.encrypt_into(matrix.T, out) == len(ct)  # a transposed (Fortran-order) input: copied in C order
    assert b.decrypt(out.tobytes()) == np.ascontiguousarray(matrix.T).tobytes()
    dest = np.zeros(matrix.shape, dtype=matrix.dtype)
    assert b.decrypt_into(a.encrypt(matrix), dest) == matrix.nbytes
    assert (dest == matrix).all()
    with pytest.raises(tinymls.InvalidArgumentError):
        b.decrypt_into(a.encrypt(matrix), np.zeros((6, 8), dtype=np.uint16).T)  # not C-contiguous
