"""Metrics, parsed with prometheus_client's real parser (the helpers are in
conftest.py): what each operation counts, the latency histogram, the switch,
the size-query retry, and docs/OPERATIONS.md against what is exported."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import tinymls
from tinymls import Status, _buffers

from conftest import FAMILIES, GROUP_ID, GROUP_SECRET, REPO, delta, k, scrape


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
        # count grows by at most the operations (one in 64 per thread is timed).
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
    histograms get one call in 64 (metrics::LATENCY_SAMPLE) of their own kind:
    any 192 calls of a kind on one thread take exactly 3 samples."""
    a, b = pair
    before = scrape()
    for i in range(192):
        b.decrypt(a.encrypt(b"ping %d" % i))
    after = scrape()
    for op in ("encrypt", "decrypt"):
        assert delta(before, after, k("tinymls_operation_duration_seconds_count", op=op)) == 192 / 64, op
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
    assert len(calls) == 3 and calls[1] == 10 + _buffers.SIZE_SLACK and calls[2] > len(text)


def test_size_query_gives_up_on_an_output_that_keeps_growing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every call says the text grew again: a bounded number of tries, then
    BufferTooSmallError with the last size the library asked for."""
    calls: list[int] = []

    class Endless:
        def tinymls_metrics_prometheus(self, out: object, cap: int, out_len: object) -> int:
            calls.append(cap)
            out_len._obj.value = cap + 2 * _buffers.SIZE_SLACK  # type: ignore[attr-defined]  # a byref()
            return int(Status.BUFFER_TOO_SMALL)

    monkeypatch.setattr(tinymls._ffi, "lib", Endless())
    with pytest.raises(tinymls.BufferTooSmallError, match="the metrics text kept growing") as info:
        tinymls.metrics_text()
    assert len(calls) == 1 + _buffers.SIZE_TRIES
    assert info.value.needed == calls[-1] + 2 * _buffers.SIZE_SLACK


def test_an_error_on_the_last_try_is_raised_as_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """The output grew at every try but the last, which failed otherwise
    (INTERNAL here): that failure is raised, not BufferTooSmallError."""
    calls: list[int] = []
    real = tinymls._ffi.lib

    class GrowsThenFails:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def tinymls_metrics_prometheus(self, out: object, cap: int, out_len: object) -> int:
            calls.append(cap)
            if len(calls) == 1 + _buffers.SIZE_TRIES:
                return int(Status.INTERNAL)
            out_len._obj.value = cap + 2 * _buffers.SIZE_SLACK  # type: ignore[attr-defined]  # a byref()
            return int(Status.BUFFER_TOO_SMALL)

    monkeypatch.setattr(tinymls._ffi, "lib", GrowsThenFails())
    with pytest.raises(tinymls.TinyMLSError) as info:
        tinymls.metrics_text()
    assert len(calls) == 1 + _buffers.SIZE_TRIES
    assert not isinstance(info.value, tinymls.BufferTooSmallError)
    assert info.value.status == Status.INTERNAL


def test_metrics_are_kept_free_of_hard_dependencies() -> None:
    # The core package imports no prometheus_client (an optional extra).
    code = "import sys, tinymls; tinymls.metrics_text(); print('prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
