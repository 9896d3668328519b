"""Metrics (parsed with prometheus_client's real parser), health and batch calls.

Metrics are process-wide: each test checks deltas around what it does
(pytest runs the tests one after another).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

import tinymls
from tinymls import Health, HealthState, KeyMemory, Status

from conftest import GROUP_ID, GROUP_SECRET, REPO, header_fields

Key = tuple[str, frozenset[tuple[str, str]]]

# Every family the library exposes, with its type.
FAMILIES = {
    "tinymls_operations": "counter",
    "tinymls_sealed_bytes": "counter",
    "tinymls_opened_bytes": "counter",
    "tinymls_rotations": "counter",
    "tinymls_epochs_destroyed": "counter",
    "tinymls_contexts": "gauge",
    "tinymls_contexts_created": "counter",
    "tinymls_retained_epochs": "gauge",
    "tinymls_operation_duration_seconds": "histogram",
}


def scrape() -> dict[Key, float]:
    """Sample (name, labels) -> value, through the Prometheus text parser.

    The parser is lax (a sample it cannot place becomes an untyped family of
    its own), so the family names and types are checked too.
    """
    families = list(text_string_to_metric_families(tinymls.metrics_text()))
    assert {f.name: f.type for f in families} == FAMILIES
    out: dict[Key, float] = {}
    for f in families:
        assert f.documentation, f.name
        for s in f.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"duplicate sample {key}"
            out[key] = s.value
    return out


def k(name: str, **labels: str) -> Key:
    return (name, frozenset(labels.items()))


def delta(before: dict[Key, float], after: dict[Key, float], key: Key) -> float:
    assert key in after, f"no sample {key}"
    return after[key] - before.get(key, 0.0)


def test_metrics_count_what_happened() -> None:
    cfg = tinymls.Config(ratchet_period_ms=0)
    a = tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg)
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg) as b:
        before = scrape()
        cts = [a.encrypt(bytes([i]) * (100 * i)) for i in range(10)]
        for ct in cts[:6]:
            b.decrypt(ct)
        with pytest.raises(tinymls.ReplayError):
            b.decrypt(cts[0])
        bad = bytearray(cts[7])
        bad[30] ^= 1
        with pytest.raises(tinymls.AuthenticationError):
            b.decrypt(bytes(bad))
        with pytest.raises(tinymls.MalformedError):
            b.decrypt(cts[8][:10])
        a.rotate()
        b.decrypt(a.encrypt(b"new epoch"))  # b follows a: a peer rotation
        after = scrape()

        expected = {
            k("tinymls_operations_total", op="encrypt", result="ok"): 11,
            k("tinymls_operations_total", op="decrypt", result="ok"): 7,
            k("tinymls_operations_total", op="decrypt", result="replay"): 1,
            k("tinymls_operations_total", op="decrypt", result="auth"): 1,
            k("tinymls_operations_total", op="decrypt", result="malformed"): 1,
            k("tinymls_operations_total", op="decrypt", result="expired"): 0,
            k("tinymls_operations_total", op="encrypt", result="closed"): 0,
            k("tinymls_sealed_bytes_total"): 4500 + 9,
            k("tinymls_opened_bytes_total"): 1500 + 9,
            k("tinymls_rotations_total", reason="manual"): 1,
            k("tinymls_rotations_total", reason="peer"): 1,
            k("tinymls_rotations_total", reason="period"): 0,
            k("tinymls_retained_epochs"): 2,
        }
        for key, want in expected.items():
            assert delta(before, after, key) == want, key
        # Every op and result label is there (zero or not).
        results = {dict(lbl)["result"] for name, lbl in after if name == "tinymls_operations_total"}
        assert {"ok", "auth", "replay", "malformed", "expired", "unknown_epoch", "closed"} <= results

        # The histogram: cumulative buckets ending in +Inf == _count; the
        # count grows by at most the operations (one in 16 per thread is timed).
        for op in ("encrypt", "decrypt"):
            buckets = sorted(
                (float(dict(lbl)["le"]), v)
                for (name, lbl), v in after.items()
                if name == "tinymls_operation_duration_seconds_bucket" and dict(lbl)["op"] == op
            )
            assert len(buckets) == 13 and buckets[-1][0] == float("inf")
            counts = [v for _, v in buckets]
            assert counts == sorted(counts)
            count = after[k("tinymls_operation_duration_seconds_count", op=op)]
            assert buckets[-1][1] == count
            assert after[k("tinymls_operation_duration_seconds_sum", op=op)] >= 0
        timed = delta(before, after, k("tinymls_operation_duration_seconds_count", op="encrypt"))
        assert 0 <= timed <= 11

        a.close()  # destroys its two epochs
        closed = scrape()
        assert delta(after, closed, k("tinymls_epochs_destroyed_total", reason="close")) == 2
        assert delta(after, closed, k("tinymls_contexts")) == -1
        assert delta(after, closed, k("tinymls_retained_epochs")) == -2

        # Off: nothing is counted; on again: counted.
        tinymls.set_metrics_enabled(False)
        try:
            b.encrypt(b"uncounted")
        finally:
            tinymls.set_metrics_enabled(True)
        off = scrape()
        assert delta(closed, off, k("tinymls_operations_total", op="encrypt", result="ok")) == 0
        b.encrypt(b"counted")
        assert delta(off, scrape(), k("tinymls_operations_total", op="encrypt", result="ok")) == 1


def test_latency_histogram_samples_each_operation(pair: tuple[tinymls.Context, tinymls.Context]) -> None:
    """Request/response on one thread (encrypt, decrypt, encrypt, ...): both
    histograms get one call in 16 of their own kind."""
    a, b = pair
    before = scrape()
    for i in range(64):
        b.decrypt(a.encrypt(b"ping %d" % i))
    after = scrape()
    for op in ("encrypt", "decrypt"):
        assert delta(before, after, k("tinymls_operation_duration_seconds_count", op=op)) == 64 / 16, op
        assert delta(before, after, k("tinymls_operation_duration_seconds_sum", op=op)) > 0, op


def test_operations_doc_lists_every_metric_and_label_value() -> None:
    """docs/OPERATIONS.md's table and label lists match what the library exports."""
    doc = (REPO / "docs" / "OPERATIONS.md").read_text()
    table = dict(re.findall(r"^\| `(tinymls_\w+)` \| (counter|gauge|histogram) \|", doc, flags=re.M))
    exported = {name + ("_total" if typ == "counter" else ""): typ for name, typ in FAMILIES.items()}
    assert table == exported
    values: dict[str, set[str]] = {}
    for name, labels in scrape():
        for label, value in labels:
            if label != "le":
                values.setdefault(f"{name}:{label}", set()).add(value)
    documented = set(re.findall(r"`(\w+)`", doc))
    for key, vals in values.items():
        assert vals <= documented, f"{key}: {sorted(vals - documented)} not in docs/OPERATIONS.md"


def test_metrics_counts_contexts_created() -> None:
    before = scrape()
    for _ in range(3):
        tinymls.Context.new().close()
    after = scrape()
    assert delta(before, after, k("tinymls_contexts_created_total")) == 3
    assert delta(before, after, k("tinymls_contexts")) == 0
    assert delta(before, after, k("tinymls_epochs_destroyed_total", reason="close")) == 3


def test_metrics_text_retries_when_the_text_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The size query says N, then the text is longer than N + slack: retried."""
    real = tinymls._ffi.lib
    calls: list[int] = []

    class Growing:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def tinymls_metrics_prometheus(self, out: object, cap: int, out_len: object) -> int:
            calls.append(cap)
            if len(calls) == 1:
                out_len._obj.value = 10  # type: ignore[attr-defined]  # a byref()
                return int(Status.BUFFER_TOO_SMALL)
            return int(real.tinymls_metrics_prometheus(out, cap, out_len))

    monkeypatch.setattr(tinymls._ffi, "lib", Growing())
    text = tinymls.metrics_text()
    assert text.startswith("# HELP tinymls_operations_total ")
    assert len(calls) == 3 and calls[1] == 10 + 1024 and calls[2] > len(text)


def test_metrics_are_kept_free_of_hard_dependencies() -> None:
    # The core package imports no prometheus_client (an optional extra).
    code = "import sys, tinymls; tinymls.metrics_text(); print('prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- health --------------------------------------------------------------------


def test_health_across_state_changes() -> None:
    cfg = tinymls.Config(ratchet_period_ms=30, rotation_jitter_pct=0, gc_interval_ms=3_600_000)
    ctx = tinymls.Context.new(cfg)
    sender = ctx.sender_id
    h = ctx.health()
    assert isinstance(h, Health)
    assert h.state is HealthState.READY
    assert (h.current_epoch, h.oldest_epoch, h.retained_epochs, h.rotation_count) == (0, 0, 1, 0)
    assert (h.encrypt_count, h.decrypt_count, h.error_count) == (0, 0, 0)
    assert h.last_error is Status.OK and h.sender_id == sender
    assert h.key_memory & (KeyMemory.LOCKED | KeyMemory.ON_HEAP)
    with pytest.raises(AttributeError):
        h.state = HealthState.ERROR  # type: ignore[misc]  # frozen

    ct = ctx.encrypt(b"x")
    ctx.encrypt(b"y")
    ctx.decrypt(ct)
    with pytest.raises(tinymls.AuthenticationError):
        ctx.decrypt(ct[:-1] + bytes([ct[-1] ^ 1]))
    ctx.rotate()
    h = ctx.health()
    assert h.state is HealthState.READY
    assert (h.current_epoch, h.oldest_epoch, h.retained_epochs, h.rotation_count) == (1, 0, 2, 1)
    assert (h.encrypt_count, h.decrypt_count, h.error_count) == (2, 1, 1)
    assert h.last_error is Status.AUTH

    # Idle past the period (the maintenance thread stays away): due.
    time.sleep(0.08)
    h = ctx.health()
    assert h.state is HealthState.ROTATING
    assert h.key_age_ms >= 30 and h.uptime_ms >= h.key_age_ms
    ctx.encrypt(b"z")  # the call rotates
    h = ctx.health()
    assert h.state is HealthState.READY and h.current_epoch == 2 and h.rotation_count == 2

    ctx.close()
    h = ctx.health()
    assert h.state is HealthState.CLOSED
    assert h.retained_epochs == 0 and h.encrypt_count == 3 and h.rotation_count == 2
    assert h.sender_id == sender
    assert ctx.health() == h  # the snapshot taken at close


def test_health_constants() -> None:
    assert [s.value for s in HealthState] == [
        tinymls.HEALTH_READY,
        tinymls.HEALTH_ROTATING,
        tinymls.HEALTH_ERROR,
        tinymls.HEALTH_CLOSED,
    ]
    assert KeyMemory.LOCKED == tinymls.HEALTH_KEYS_LOCKED


# -- batch calls ---------------------------------------------------------------


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
    local.close()
    with pytest.raises(tinymls.ClosedError):
        local.encrypt_many([b"a"])
    with pytest.raises(tinymls.ClosedError):
        local.decrypt_many([b"a" * 50])


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
