"""Process-wide metrics: the Prometheus text (``tinymls_metrics_prometheus``)
and the switch (``tinymls_metrics_enable``). Every context adds to one
registry; :mod:`tinymls.prometheus` serves it to ``prometheus_client``."""

from __future__ import annotations

from . import _ffi
from ._buffers import read_sized


def metrics_text() -> str:
    """Every metric of the process (all contexts together) in the Prometheus
    text exposition format 0.0.4 (serve it as ``text/plain; version=0.0.4``).

    Raises :class:`TinyMLSError` only on a library bug.
    """
    # Looked up per call (tests interpose on _ffi.lib).
    return read_sized(_ffi.lib.tinymls_metrics_prometheus, "the metrics text").decode("utf-8")


def set_metrics_enabled(on: bool) -> None:
    """Turns metric collection on or off for the whole process (on by default).
    Off, encrypt and decrypt skip every counter and timer; the live-context and
    retained-epoch gauges are always kept."""
    _ffi.lib.tinymls_metrics_enable(1 if on else 0)

