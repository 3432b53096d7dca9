"""In-memory telemetry for tests: install an InMemoryMetricReader and an InMemorySpanExporter as
this process's telemetry (``shared.telemetry.setup.install``), read what they hold, remove them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.telemetry import setup


class Capture:
    """Everything the project's instruments and spans export while it is installed."""

    def __init__(self, *, prometheus: bool = False, queue_gauges: bool = False, traces: bool = True) -> None:
        self.reader = InMemoryMetricReader()
        self.exporter = InMemorySpanExporter()
        setup.install(metric_readers=[self.reader], span_processors=[SimpleSpanProcessor(self.exporter)] if traces else [],
                      prometheus=prometheus, queue_gauges=queue_gauges)

    # -- metrics ----------------------------------------------------------------------------------
    def collect(self) -> Any:
        return self.reader.get_metrics_data()

    def points(self, name: str, data: Any = None) -> list[Any]:
        data = data if data is not None else self.collect()
        found = []
        for rm in (data.resource_metrics if data else []):
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def value(self, name: str, data: Any = None, **attributes: str) -> float:
        """Sum of a counter's (or gauge's) points whose attributes include ``attributes``."""
        return sum(p.value for p in self.points(name, data) if _matches(p, attributes))

    def histogram(self, name: str, data: Any = None, **attributes: str) -> list[Any]:
        return [p for p in self.points(name, data) if _matches(p, attributes)]

    # -- spans ------------------------------------------------------------------------------------
    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def close(self) -> None:
        setup.shutdown()


def _matches(point: Any, attributes: dict[str, str]) -> bool:
    attrs = dict(point.attributes or {})
    return all(attrs.get(k) == v for k, v in attributes.items())


def hex_trace(span: ReadableSpan) -> str:
    return f"{span.context.trace_id:032x}"


def hex_span(span: ReadableSpan) -> str:
    return f"{span.context.span_id:016x}"


def capture(**kwargs: Any) -> Iterator[Capture]:
    """Generator body of a fixture: ``yield from capture(...)``."""
    cap = Capture(**kwargs)
    try:
        yield cap
    finally:
        cap.close()
