"""The process's MeterProvider and TracerProvider, built from the ``OTEL_*`` settings on first use.

``ensure_started(function)`` runs at the first api request or CloudEvent delivery of a process.
With ``OTEL_METRICS_EXPORTER`` and ``OTEL_TRACES_EXPORTER`` at ``none`` (the default) it only sets
a flag: nothing of OpenTelemetry is imported, instruments stay unbound (one attribute check per
``add``) and spans are not created (log lines still carry the caller's trace id). Exporters:

- metrics: ``otlp`` (OTLP/HTTP, every ``OTEL_METRIC_EXPORT_INTERVAL`` ms), ``prometheus`` (pulled
  at ``GET /metrics`` on the api), ``console`` (JSON lines on stderr);
- traces: ``otlp`` (batched OTLP/HTTP), ``console`` (one JSON line per span on stderr).

The queue-depth gauges are registered in the api process only (one reader of those tables is
enough). Providers are this module's, not OpenTelemetry's globals, so tests can ``install``
in-memory readers and exporters and ``shutdown`` them again.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from shared.telemetry import instruments

SCOPE = "patient-mgt"
_lock = threading.RLock()
_started = False
_meter_provider: Any = None
_tracer_provider: Any = None
_tracer: Any = None
_prometheus_registry: Any = None
_atexit_registered = False


def ensure_started(function: str) -> None:
    """Configure from settings once per process (``function``: api, notify, lis_consumer, jobs)."""
    if _started:
        return
    with _lock:
        if not _started:
            start_from_settings(function)


def exporter_names(value: str) -> set[str]:
    return {n for n in value.split(",") if n and n != "none"}


def start_from_settings(function: str) -> None:
    from shared.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    metrics, traces = exporter_names(settings.otel_metrics_exporter), exporter_names(settings.otel_traces_exporter)
    target = settings.function_target or function
    readers: list[Any] = []
    processors: list[Any] = []
    if "otlp" in metrics or "console" in metrics:
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # noqa: PLC0415

        for exporter in _metric_exporters(metrics, settings.otel_exporter_otlp_endpoint):
            readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=settings.otel_metric_export_interval))
    if traces:
        processors = _span_processors(traces, settings.otel_exporter_otlp_endpoint)
    install(metric_readers=readers, span_processors=processors, prometheus="prometheus" in metrics,
            queue_gauges=target == "api", service_name=settings.otel_service_name or f"patient-mgt-{target.replace('_', '-')}",
            function=target, sampler_ratio=settings.otel_traces_sampler_arg)
    global _atexit_registered
    if (readers or processors) and not _atexit_registered:
        atexit.register(shutdown)  # flush what is buffered when the platform stops the instance
        _atexit_registered = True


def _endpoint(base: str | None, signal: str) -> str | None:
    return f"{base.rstrip('/')}/v1/{signal}" if base else None


def _metric_exporters(names: set[str], endpoint: str | None) -> list[Any]:
    exporters: list[Any] = []
    if "otlp" in names:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # noqa: PLC0415

        exporters.append(OTLPMetricExporter(endpoint=_endpoint(endpoint, "metrics")))
    if "console" in names:
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter  # noqa: PLC0415

        exporters.append(ConsoleMetricExporter(out=sys.stderr, formatter=lambda data: data.to_json(indent=None) + os.linesep))
    return exporters


def _span_processors(names: set[str], endpoint: str | None) -> list[Any]:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor  # noqa: PLC0415

    processors: list[Any] = []
    if "otlp" in names:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        processors.append(BatchSpanProcessor(OTLPSpanExporter(endpoint=_endpoint(endpoint, "traces"))))
    if "console" in names:
        exporter = ConsoleSpanExporter(out=sys.stderr, formatter=lambda span: span.to_json(indent=None) + os.linesep)
        processors.append(SimpleSpanProcessor(exporter))
    return processors


def install(
    *,
    metric_readers: Sequence[Any] = (),
    span_processors: Sequence[Any] = (),
    prometheus: bool = False,
    queue_gauges: bool = False,
    service_name: str = "patient-mgt",
    function: str = "api",
    sampler_ratio: float = 1.0,
) -> None:
    """Replace this process's telemetry (tests pass ``InMemoryMetricReader``/``InMemorySpanExporter``)."""
    global _started, _meter_provider, _tracer_provider, _tracer, _prometheus_registry
    with _lock:
        _shutdown_locked()
        readers = list(metric_readers)
        resource = None
        if prometheus:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader  # noqa: PLC0415
            from prometheus_client import CollectorRegistry  # noqa: PLC0415

            _prometheus_registry = CollectorRegistry(auto_describe=False)
            readers.append(PrometheusMetricReader(registry=_prometheus_registry, scope_info_enabled=False))
        if readers or span_processors:
            resource = _resource(service_name, function)
        if readers:
            from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415

            from shared.telemetry import queues  # noqa: PLC0415

            _meter_provider = MeterProvider(metric_readers=readers, resource=resource)
            meter = _meter_provider.get_meter(SCOPE)
            instruments.bind(meter)
            if queue_gauges:
                queues.register(meter)
        if span_processors:
            from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
            from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased  # noqa: PLC0415

            _tracer_provider = TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(sampler_ratio)))
            for processor in span_processors:
                _tracer_provider.add_span_processor(processor)
            _tracer = _tracer_provider.get_tracer(SCOPE)
        _started = True


def _resource(service_name: str, function: str) -> Any:
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415

    return Resource.create({"service.name": service_name, "service.namespace": "patient-mgt",
                            "service.instance.id": uuid.uuid4().hex, "faas.name": function})


def tracer() -> Any:
    """The tracer, or None when tracing is off."""
    return _tracer


def prometheus_registry() -> Any:
    """The registry ``GET /metrics`` renders, or None when ``prometheus`` is not a metrics exporter."""
    return _prometheus_registry


def shutdown() -> None:
    """Flush and drop the providers; the next request configures again from settings."""
    global _started
    with _lock:
        _shutdown_locked()
        _started = False


def _shutdown_locked() -> None:
    global _meter_provider, _tracer_provider, _tracer, _prometheus_registry
    instruments.unbind()
    _tracer = None
    _prometheus_registry = None
    meter_provider, tracer_provider = _meter_provider, _tracer_provider
    _meter_provider = _tracer_provider = None
    for provider in (tracer_provider, meter_provider):
        if provider is not None:
            try:
                provider.shutdown()
            except Exception:  # noqa: BLE001,S110 — an exporter that cannot flush must not stop the process
                pass
    queues = sys.modules.get("shared.telemetry.queues")  # never imported: nothing to forget (it loads SQLAlchemy)
    if queues is not None:
        queues.forget()
