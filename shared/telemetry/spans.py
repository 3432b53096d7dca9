"""The server span of an api request and the consumer span of a CloudEvent delivery.

Each continues the caller's W3C trace context: the ``traceparent`` header of an HTTP request (or
Google's ``X-Cloud-Trace-Context``), the ``traceparent``/``tracestate`` extension of a CloudEvent
(falling back to the delivery's HTTP header). The ids bound for log lines and outbox rows are the
span's own, so logs, spans and published events of one request share one trace. With tracing off
no span is created, but the ids are bound all the same (the caller's trace id is kept).

Span names and attributes carry route templates, methods, status codes, catalog event types and
consumer names only. Exceptions are never recorded on spans (their text can hold patient data).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.ids import uuid4
from shared.log import get_logger
from shared.telemetry import instruments, labels, setup
from shared.telemetry.tracecontext import (
    RemoteParent,
    bind,
    new_span_id,
    new_trace_id,
    parse_cloud_trace,
    parse_traceparent,
)

log = get_logger("patient_mgt.telemetry")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@dataclass
class ActiveSpan:
    otel: Any  # an OpenTelemetry span, or None when tracing is off
    token: Any  # the context token to detach
    started: float


def _start(name: str, kind: str, parent: RemoteParent | None, request_id: str, attributes: dict[str, Any],
           *, traced: bool = True) -> ActiveSpan:
    tracer = setup.tracer() if traced else None
    started = time.perf_counter()
    if tracer is None:
        bind(request_id, parent.trace_id if parent else new_trace_id(), new_span_id(),
             sampled=parent.sampled if parent else True, tracestate=parent.tracestate if parent else None)
        return ActiveSpan(None, None, started)
    from opentelemetry import context as otel_context  # noqa: PLC0415
    from opentelemetry import trace  # noqa: PLC0415

    ctx = otel_context.Context()  # explicit: never the child of what a reused thread held before
    if parent is not None:
        remote = trace.SpanContext(
            int(parent.trace_id, 16), int(parent.span_id, 16), is_remote=True,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED if parent.sampled else trace.TraceFlags.DEFAULT),
            trace_state=trace.TraceState.from_header([parent.tracestate]) if parent.tracestate else None,
        )
        ctx = trace.set_span_in_context(trace.NonRecordingSpan(remote), ctx)
    span = tracer.start_span(name, context=ctx, kind=getattr(trace.SpanKind, kind), attributes=attributes,
                             record_exception=False, set_status_on_exception=False)
    own = span.get_span_context()
    bind(request_id, f"{own.trace_id:032x}", f"{own.span_id:016x}", sampled=own.trace_flags.sampled,
         tracestate=parent.tracestate if parent else None)
    token = otel_context.attach(trace.set_span_in_context(span, ctx))
    return ActiveSpan(span, token, started)


def _end(span: ActiveSpan, status: int, attributes: dict[str, Any], name: str | None = None) -> None:
    otel = span.otel
    if otel is None:
        return
    from opentelemetry import context as otel_context  # noqa: PLC0415
    from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

    if name:
        otel.update_name(name)
    otel.set_attributes(attributes)
    if status >= 500:
        otel.set_attribute("error.type", str(status))
        otel.set_status(Status(StatusCode.ERROR))
    otel.end()
    try:
        otel_context.detach(span.token)
    except Exception:  # noqa: BLE001,S110 — a context from another thread: nothing to restore
        pass


# -- api requests ------------------------------------------------------------------------------------

def method_label(method: str) -> str:
    return method if method in _METHODS else "_OTHER"


def start_server(method: str, headers: Mapping[str, str], request_id: str) -> ActiveSpan:
    """Begin an api request: continue the caller's trace and bind the ids for logging."""
    setup.ensure_started("api")
    parent = parse_traceparent(headers.get("traceparent"), headers.get("tracestate")) or \
        parse_cloud_trace(headers.get("X-Cloud-Trace-Context"))
    method = method_label(method)
    return _start(method, "SERVER", parent, request_id, {"http.request.method": method})


def finish_server(span: ActiveSpan, method: str, route_template: str, status: int) -> None:
    """End the request's span and record its duration under its route template (never its path)."""
    if span.otel is None and not instruments.enabled():
        return  # no exporter configured: nothing would record, so build no attributes either
    method = method_label(method)
    instruments.HTTP_DURATION.record(time.perf_counter() - span.started, {
        "http.request.method": method, "http.route": route_template, "http.response.status_class": labels.status_class(status)})
    _end(span, status, {"http.route": route_template, "http.response.status_code": status}, f"{method} {route_template}")


# -- CloudEvent deliveries ------------------------------------------------------------------------------

def begin_delivery(event_type: str, traceparent: str | None = None, tracestate: str | None = None,
                   event_id: str | None = None) -> None:
    """Begin handling one delivery (a CloudEvent, or a raw Pub/Sub push): continue the producer's
    trace and bind the ids for logging. Inside a functions-framework request the consumer span ends
    when the answer is ready (and the delivery's duration is recorded); the first call of a request
    wins, later ones keep its ids. Outside a request only the ids are bound."""
    import flask  # noqa: PLC0415

    in_request = flask.has_request_context()
    if in_request and flask.g.get("_telemetry_span") is not None:
        return
    consumer = labels.name(flask.current_app.name.replace("_", "-")) if in_request else "consumer"
    setup.ensure_started(flask.current_app.name if in_request else consumer)
    parent = parse_traceparent(traceparent, tracestate)
    if parent is None and in_request:
        parent = parse_traceparent(flask.request.headers.get("traceparent"), flask.request.headers.get("tracestate"))
    kind = labels.event_type(event_type)
    attributes: dict[str, Any] = {"patient_mgt.consumer": consumer, "cloudevents.event_type": kind}
    if event_id and _SAFE_ID.match(event_id):
        attributes["cloudevents.event_id"] = event_id
    span = _start(f"{consumer} {kind}", "CONSUMER", parent, uuid4().hex, attributes, traced=in_request)
    if not in_request:
        return
    flask.g._telemetry_span = span

    @flask.after_this_request
    def _finish(response: Any) -> Any:
        try:
            instruments.EVENT_DURATION.record(time.perf_counter() - span.started, {
                "consumer": consumer, "event_type": kind, "status_class": labels.status_class(response.status_code)})
            _end(span, response.status_code, {"http.response.status_code": response.status_code})
        except Exception as exc:  # noqa: BLE001 — telemetry never changes an acknowledgement
            log.warning("consumer span not finished", extra={"fields": {"error_type": type(exc).__name__}})
        return response


def begin_event(event: Any) -> None:
    """``begin_delivery`` for a CloudEvent."""
    begin_delivery(str(event["type"]), _attr(event, "traceparent"), _attr(event, "tracestate"), str(event["id"]))


def _attr(event: Any, name: str) -> str | None:
    value = event.get(name)
    return str(value) if value else None
