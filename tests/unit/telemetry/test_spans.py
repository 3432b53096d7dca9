"""Server and consumer spans: they continue the caller's trace, and log lines carry their ids."""

import uuid

import flask
import pytest
from cloudevents.http import CloudEvent
from opentelemetry.trace import SpanKind, StatusCode

import shared.api.every_route  # noqa: F401  (registers every route; the api function loads them lazily)
from shared.events import catalog
from shared.http.app import handle
from shared.log import current_trace
from shared.telemetry import spans, tracecontext
from tests.support.telemetry import capture, hex_span, hex_trace

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture()
def cap():
    yield from capture()


def test_an_api_request_continues_the_callers_trace_and_logs_carry_the_span_ids(cap):
    app = flask.Flask("api")
    with app.test_request_context("/healthz", headers={"traceparent": f"00-{TRACE}-{PARENT}-01", "tracestate": "rojo=1"}):
        assert handle(flask.request).status_code == 200
        logged = current_trace()
    [span] = cap.spans()
    assert span.kind == SpanKind.SERVER and span.name == "GET /healthz"
    assert hex_trace(span) == TRACE and f"{span.parent.span_id:016x}" == PARENT and span.parent.is_remote
    assert logged == (hex_trace(span), hex_span(span))
    assert dict(span.attributes) == {"http.request.method": "GET", "http.route": "/healthz", "http.response.status_code": 200}
    assert span.context.trace_state.to_header() == "rojo=1"
    [point] = cap.histogram("http.server.request.duration", **{"http.route": "/healthz"})
    assert point.count == 1 and dict(point.attributes)["http.response.status_class"] == "2xx"


def test_a_request_without_trace_context_starts_a_new_trace(cap):
    app = flask.Flask("api")
    for _ in range(2):
        with app.test_request_context("/healthz"):
            handle(flask.request)
    first, second = cap.spans()
    assert first.parent is None and second.parent is None
    assert hex_trace(first) != hex_trace(second)


def test_an_unmatched_path_is_recorded_under_a_fixed_name_never_its_path(cap):
    secret = uuid.uuid4().hex
    app = flask.Flask("api")
    with app.test_request_context(f"/nowhere/{secret}"):
        assert handle(flask.request).status_code == 404
    [span] = cap.spans()
    assert span.name == "GET (unmatched)" and secret not in span.to_json()
    assert secret not in cap.collect().to_json()
    [point] = cap.histogram("http.server.request.duration", **{"http.route": "(unmatched)"})
    assert dict(point.attributes)["http.response.status_class"] == "4xx"


def test_a_server_error_marks_the_span_without_recording_any_exception_text(cap):
    app = flask.Flask("api")
    with app.test_request_context("/x", method="BREW"):
        span = spans.start_server("BREW", flask.request.headers, "req")
        spans.finish_server(span, "BREW", "/x", 500)
    [exported] = cap.spans()
    assert exported.name == "_OTHER /x" and exported.status.status_code == StatusCode.ERROR
    assert exported.status.description is None and not exported.events
    assert exported.attributes["error.type"] == "500"


def _event(**extensions):
    return CloudEvent({"type": catalog.PATIENT_REGISTERED, "source": "/patient-mgt/api", "id": str(uuid.uuid4()),
                       "subject": str(uuid.uuid4()), **extensions}, {"patient_id": str(uuid.uuid4())})


def test_a_delivery_continues_the_events_trace_once_per_request_and_ends_with_the_answer(cap):
    app = flask.Flask("notify")
    event = _event(traceparent=f"00-{TRACE}-{PARENT}-01", tracestate="congo=t61")
    with app.test_request_context("/", method="POST"):
        spans.begin_event(event)
        first = current_trace()
        spans.begin_event(event)  # a consumer calling the boundary twice keeps one span
        assert current_trace() == first
        # what an event emitted while handling it carries on
        assert tracecontext.current_traceparent() == f"00-{first[0]}-{first[1]}-01"
        assert tracecontext.current_tracestate() == "congo=t61"
        app.process_response(flask.Response("retry", status=503))
    [span] = cap.spans()
    assert span.kind == SpanKind.CONSUMER and span.name == f"notify {catalog.PATIENT_REGISTERED}"
    assert hex_trace(span) == TRACE and f"{span.parent.span_id:016x}" == PARENT
    assert (hex_trace(span), hex_span(span)) == first
    assert span.status.status_code == StatusCode.ERROR
    assert event["subject"] not in span.to_json()
    [point] = cap.histogram("patient_mgt.events.process.duration", consumer="notify")
    assert dict(point.attributes) == {"consumer": "notify", "event_type": catalog.PATIENT_REGISTERED, "status_class": "5xx"}


def test_a_delivery_without_trace_context_falls_back_to_the_http_header(cap):
    app = flask.Flask("jobs")
    with app.test_request_context("/", method="POST", headers={"traceparent": f"00-{TRACE}-{PARENT}-00"}):
        spans.begin_event(_event())
        assert tracecontext.current_traceparent().endswith("-00")  # the caller did not sample
        app.process_response(flask.Response("ok"))
    assert cap.spans() == []  # parent-based sampling keeps the caller's decision
    [point] = cap.histogram("patient_mgt.events.process.duration", consumer="jobs")
    assert dict(point.attributes)["status_class"] == "2xx"


def test_outside_a_request_only_the_ids_are_bound(cap):
    spans.begin_event(_event(traceparent=f"00-{TRACE}-{PARENT}-01"))
    assert current_trace()[0] == TRACE
    assert cap.spans() == []
