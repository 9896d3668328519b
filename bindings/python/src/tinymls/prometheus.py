"""A :mod:`prometheus_client` collector for TinyMLS's process-wide metrics.

Needs the optional dependency (``pip install tinymls[prometheus]``)::

    from prometheus_client import REGISTRY, start_http_server
    from tinymls.prometheus import TinyMLSCollector

    REGISTRY.register(TinyMLSCollector())
    start_http_server(9100)

On every collection it reads :func:`tinymls.metrics_text` and parses it with
``prometheus_client.parser.text_string_to_metric_families``, so what the
registry exposes is exactly what the library counts: operations by op and
result, sealed and opened bytes, rotations and destroyed epochs by reason,
live contexts, retained epochs, and the operation latency histogram.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from ._metrics import metrics_text


class TinyMLSCollector(Collector):
    """Every TinyMLS metric of the process, for a ``CollectorRegistry``."""

    def collect(self) -> Iterable[Metric]:
        return list(text_string_to_metric_families(metrics_text()))

    def describe(self) -> Iterable[Metric]:
        # The set of metric names is fixed: registering checks it for clashes.
        return self.collect()


__all__ = ["TinyMLSCollector"]
