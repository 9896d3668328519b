"""tinymls.prometheus.TinyMLSCollector in a prometheus_client registry."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import tinymls
from tinymls.prometheus import TinyMLSCollector

from conftest import GROUP_ID, GROUP_SECRET


def sample(reg: CollectorRegistry, name: str, **labels: str) -> float:
    v = reg.get_sample_value(name, labels)
    assert v is not None, (name, labels)
    return v


def test_collector_reports_what_happened() -> None:
    reg = CollectorRegistry()
    reg.register(TinyMLSCollector())
    cfg = tinymls.Config(ratchet_period_ms=0)
    with tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg) as a, tinymls.Context.join(GROUP_SECRET, GROUP_ID, cfg) as b:
        enc0 = sample(reg, "tinymls_operations_total", op="encrypt", result="ok")
        auth0 = sample(reg, "tinymls_operations_total", op="decrypt", result="auth")
        manual0 = sample(reg, "tinymls_rotations_total", reason="manual")
        sealed0 = sample(reg, "tinymls_sealed_bytes_total")
        live0 = sample(reg, "tinymls_contexts")
        cts = a.encrypt_many([b"m" * 64] * 4)
        assert all(isinstance(r, bytes) for r in b.decrypt_many(cts))
        bad = bytearray(a.encrypt(b"tampered"))
        bad[30] ^= 1
        assert isinstance(b.decrypt_many([bytes(bad)])[0], tinymls.AuthenticationError)
        a.rotate()
        assert sample(reg, "tinymls_operations_total", op="encrypt", result="ok") - enc0 == 5
        assert sample(reg, "tinymls_operations_total", op="decrypt", result="auth") - auth0 == 1
        assert sample(reg, "tinymls_rotations_total", reason="manual") - manual0 == 1
        assert sample(reg, "tinymls_sealed_bytes_total") - sealed0 == 4 * 64 + 8
        count = sample(reg, "tinymls_operation_duration_seconds_count", op="encrypt")
        assert sample(reg, "tinymls_operation_duration_seconds_bucket", op="encrypt", le="+Inf") == count
        a.close()
        assert sample(reg, "tinymls_contexts") == live0 - 1

    # The registry's own exposition parses back into the same families.
    exposed = {f.name: f.type for f in text_string_to_metric_families(generate_latest(reg).decode())}
    assert exposed["tinymls_operations"] == "counter"
    assert exposed["tinymls_operation_duration_seconds"] == "histogram"
    assert exposed["tinymls_contexts"] == "gauge"


def test_collector_names_clash_on_double_registration() -> None:
    reg = CollectorRegistry()
    reg.register(TinyMLSCollector())
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        reg.register(TinyMLSCollector())
