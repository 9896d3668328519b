"""Batch calls: encrypt_many/decrypt_many and the packed forms."""

from __future__ import annotations

import pytest

import tinymls

from conftest import delta, header_fields, k, scrape


def test_batch_one_bad_message_among_good(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    a, b = pair
    pts = [bytes([i]) * (37 * i) for i in range(8)]
    aads = [f"aad-{i}".encode() for i in range(8)]
    cts = a.encrypt_many(pts, aads)
    assert [len(c) for c in cts] == [len(p) + tinymls.OVERHEAD for p in pts]
    seqs = [header_fields(c)[2] for c in cts]
    assert seqs == sorted(seqs) and len(set(seqs)) == 8  # in order

    tampered = bytearray(cts[2])
    tampered[-1] ^= 1
    batch = [cts[0], cts[1], bytes(tampered), cts[3][:20], cts[4], cts[4], cts[5], cts[6], cts[7]]
    src = [0, 1, 2, 3, 4, 4, 5, 6, 7]
    got = b.decrypt_many(batch, [aads[i] for i in src])
    expect: list[type[tinymls.TinyMLSError] | None] = [
        None,
        None,
        tinymls.AuthenticationError,
        tinymls.MalformedError,
        None,
        tinymls.ReplayError,
        None,
        None,
        None,
    ]
    assert len(got) == len(batch)
    for i, (r, e) in enumerate(zip(got, expect)):
        if e is None:
            assert r == pts[src[i]], i
        else:
            assert isinstance(r, e), (i, r)

    # One AAD for all; none; a bytearray and a memoryview among the inputs.
    cts = a.encrypt_many([bytearray(b"one"), memoryview(b"two"), b"three"], aad=b"shared")
    assert [b.decrypt(c, b"shared") for c in cts] == [b"one", b"two", b"three"]
    assert b.decrypt_many(a.encrypt_many([b"p", b""])) == [b"p", b""]
    assert a.encrypt_many([]) == [] and b.decrypt_many([]) == []
    # A generator works too.
    assert b.decrypt_many(a.encrypt_many(bytes([i]) for i in range(3))) == [b"\x00", b"\x01", b"\x02"]


def test_batch_argument_errors(local: tinymls.Context) -> None:
    with pytest.raises(tinymls.ArgumentTypeError, match="plaintexts must be bytes"):
        local.encrypt_many([b"ok", "text"])  # type: ignore[list-item]
    with pytest.raises(tinymls.InvalidArgumentError, match="2 values for 3 messages"):
        local.encrypt_many([b"a", b"b", b"c"], [b"x", b"y"])
    # An empty batch is no exception (as in Go, and as encrypt_packed and
    # decrypt_packed check it): the AADs are checked before it returns.
    for call in (local.encrypt_many, local.decrypt_many):
        with pytest.raises(tinymls.InvalidArgumentError, match="2 values for 0 messages"):
            call([], [b"x", b"y"])
        with pytest.raises(tinymls.ArgumentTypeError, match="aad must be"):
            call([], 5)  # type: ignore[arg-type]
        assert call([], [b""] * 0) == [] and call([], b"one for all") == []
    local.close()
    with pytest.raises(tinymls.ClosedError):
        local.encrypt_many([b"a"])
    with pytest.raises(tinymls.ClosedError):
        local.decrypt_many([b"a" * 50])


def test_batch_aad_of_a_wrong_type_is_an_argument_type_error(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    # As encrypt() raises: ArgumentTypeError (a TinyMLSError), not a bare TypeError.
    a, b = pair
    ct = a.encrypt_many([b"a"])
    for aad in (None, 5, 1.5):
        with pytest.raises(tinymls.ArgumentTypeError, match="aad must be bytes"):
            a.encrypt_many([b"a"], aad=aad)  # type: ignore[arg-type]
        with pytest.raises(tinymls.ArgumentTypeError, match="aad must be bytes"):
            b.decrypt_many(ct, aad=aad)  # type: ignore[arg-type]
    with pytest.raises(tinymls.ArgumentTypeError, match="plaintexts must be"):
        a.encrypt_many(None)  # type: ignore[arg-type]
    with pytest.raises(tinymls.ArgumentTypeError, match="ciphertexts must be"):
        b.decrypt_many(7)  # type: ignore[arg-type]
    with pytest.raises(tinymls.ArgumentTypeError, match="aad must be bytes"):
        a.encrypt_many([b"a"], aad=[None])  # type: ignore[list-item]
    assert b.decrypt_many(ct) == [b"a"]  # nothing consumed by the refusals


def test_batch_counts_like_single_calls(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    a, b = pair
    before = scrape()
    cts = a.encrypt_many([b"x" * 10] * 5)
    res = b.decrypt_many(cts + [cts[0]])
    assert isinstance(res[-1], tinymls.ReplayError)
    after = scrape()
    assert delta(before, after, k("tinymls_operations_total", op="encrypt", result="ok")) == 5
    assert delta(before, after, k("tinymls_operations_total", op="decrypt", result="ok")) == 5
    assert delta(before, after, k("tinymls_operations_total", op="decrypt", result="replay")) == 1
    assert b.health().decrypt_count == 5 and b.health().error_count == 1


def test_batch_lengths_are_byte_sizes(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    # len() of a memoryview of 4-byte items counts items, not bytes: the
    # batch must still pack and slice by bytes.
    a, b = pair
    import array as array_module

    wide = memoryview(array_module.array("I", [1, 2, 3]))
    msgs: list[tinymls.Buffer] = [b"first", wide, bytearray(b"third"), b""]
    cts = a.encrypt_many(msgs, aad=[b"1", memoryview(array_module.array("H", [7])), b"", b"4"])
    assert [len(c) for c in cts] == [5 + tinymls.OVERHEAD, 12 + tinymls.OVERHEAD, 5 + tinymls.OVERHEAD, tinymls.OVERHEAD]
    got = b.decrypt_many(cts, aad=[b"1", bytes(memoryview(array_module.array("H", [7]))), b"", b"4"])
    assert got == [b"first", bytes(wide), b"third", b""]
    # One failure among successes: per-message results in the slow path.
    fresh = a.encrypt_many([b"again", b"tampered", b"cut"])
    bad = [fresh[0], fresh[1][:-1] + bytes([fresh[1][-1] ^ 1]), fresh[2][:10]]
    got = b.decrypt_many(bad)
    assert got[0] == b"again"
    assert isinstance(got[1], tinymls.AuthenticationError)
    assert isinstance(got[2], tinymls.MalformedError)


def test_packed_batches_round_trip(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    import array as array_module

    a, b = pair
    msgs = [b"first", b"", bytes(range(200)), b"last"]
    ct, ct_lens = a.encrypt_packed(b"".join(msgs), [len(m) for m in msgs], aad=b"v1")
    assert isinstance(ct_lens, array_module.array)
    assert list(ct_lens) == [len(m) + tinymls.OVERHEAD for m in msgs] and len(ct) == sum(ct_lens)
    # The packed ciphertexts are ordinary ones, in order.
    parts, at = [], 0
    for n in ct_lens:
        parts.append(ct[at : at + n])
        at += n
    seqs = [header_fields(p)[2] for p in parts]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(msgs)
    assert [b.decrypt(p, b"v1") for p in parts[:2]] == msgs[:2]
    # Decrypting packed: the two already read are replays, the rest open;
    # the plaintexts stay back to back with 0 for the failed ones.
    pt, pt_lens, errors = b.decrypt_packed(memoryview(ct), ct_lens, aad=b"v1")
    assert list(pt_lens) == [0, 0, 200, 4] and pt == msgs[2] + msgs[3]
    assert errors is not None and errors[2:] == [None, None]
    assert all(isinstance(e, tinymls.ReplayError) for e in errors[:2])
    # All good: errors is None. A bytearray input, an array of lengths.
    ct2, lens2 = a.encrypt_packed(bytearray(b"abcdef"), array_module.array("Q", [1, 2, 3]))
    pt2, plens2, errors2 = b.decrypt_packed(ct2, lens2)
    assert (pt2, list(plens2), errors2) == (b"abcdef", [1, 2, 3], None)
    empty, empty_lens = a.encrypt_packed(b"", [])
    assert (empty, list(empty_lens)) == (b"", [])


def test_packed_batch_argument_errors(local: tinymls.Context) -> None:
    with pytest.raises(tinymls.InvalidArgumentError, match="lengths add up to 5 bytes, data is 6"):
        local.encrypt_packed(b"abcdef", [2, 3])
    with pytest.raises(tinymls.ArgumentTypeError, match="lengths must be non-negative integers"):
        local.encrypt_packed(b"ab", [-1, 3])
    with pytest.raises(tinymls.ArgumentTypeError, match="lengths must be integers, not bytes"):
        local.encrypt_packed(b"abcdefgh", b"\x08\0\0\0\0\0\0\0")
    with pytest.raises(tinymls.ArgumentTypeError, match="lengths must be non-negative integers"):
        local.encrypt_packed(b"ab", [1.5, 0.5])  # type: ignore[list-item]
    with pytest.raises(tinymls.ArgumentTypeError, match="data must be bytes"):
        local.encrypt_packed("text", [4])  # type: ignore[arg-type]
    with pytest.raises(tinymls.ArgumentTypeError, match="aad must be bytes"):
        local.encrypt_packed(b"ab", [2], aad=[b"x"])  # type: ignore[arg-type]
    local.close()
    with pytest.raises(tinymls.ClosedError):
        local.encrypt_packed(b"a", [1])
    with pytest.raises(tinymls.ClosedError):
        local.decrypt_packed(b"a" * 50, [50])


def test_batch_lengths_are_measured_on_the_bytes_that_are_packed(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    # The library reads sum(lengths) bytes of the packed input: the lengths
    # must be those of the very bytes packed. A bytes subclass may override
    # len() (the per-message calls already ignore it), and a bytearray may
    # be resized between its copy and its measure (another thread; here its
    # own __len__): neither may misplace a message boundary, nor make the
    # library read past the packed bytes.
    a, b = pair

    class Lying(bytes):
        claimed = 0

        def __len__(self) -> int:
            return self.claimed

    first, second = Lying(b"abc"), Lying(b"wxyz")
    first.claimed, second.claimed = 4, 3  # the sum is right, each length wrong
    cts = a.encrypt_many([first, second])
    assert [b.decrypt(c) for c in cts] == [b"abc", b"wxyz"]
    aad1, aad2 = Lying(b"ad1"), Lying(b"ad22")
    aad1.claimed, aad2.claimed = 4, 3
    cts = a.encrypt_many([b"m1", b"m2"], aad=[aad1, aad2])
    assert [b.decrypt(c, ad) for c, ad in zip(cts, [b"ad1", b"ad22"])] == [b"m1", b"m2"]

    class Growing(bytearray):
        def __len__(self) -> int:
            if bytearray.__len__(self) < 4096:
                self.extend(bytes(4096))
            return bytearray.__len__(self)

    ct = a.encrypt(b"x" * 10)
    # Before: the 4096 bytes appended after the copy were counted, so the
    # library read 4096 bytes past the packed input (AuthenticationError).
    got = b.decrypt_many([b"short", Growing(ct)])
    assert isinstance(got[0], tinymls.MalformedError)
    assert got[1] == b"x" * 10


def test_a_batch_a_racing_close_beat_raises_closed_error(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    # close() on another thread between the closed check and the library
    # call: the library answers OK with every status CLOSED (it had room for
    # the output). Nothing was processed: decrypt_many and decrypt_packed
    # raise ClosedError ("Raises ClosedError if the context is closed";
    # close(): racing calls "either complete or raise ClosedError"), as
    # encrypt_many does, not a list of ClosedError values that reads as "each
    # message failed". The interleaving made deterministic: the library's
    # context is closed behind the object's back, so its closed flag is
    # still clear when the batch call checks it.
    from tinymls import _ffi

    a, b = pair
    cts = a.encrypt_many([b"x", b"yy", b""])
    packed, lens = a.encrypt_packed(b"xyy", [1, 2, 0])
    assert _ffi.lib.tinymls_context_close(b._handle) == 0
    assert not b.closed
    with pytest.raises(tinymls.ClosedError):
        b.decrypt_many(cts)
    with pytest.raises(tinymls.ClosedError):
        b.decrypt_packed(packed, lens)
    with pytest.raises(tinymls.ClosedError):
        b.encrypt_many([b"x"])
    with pytest.raises(tinymls.ClosedError):
        b.encrypt_packed(b"x", [1])
