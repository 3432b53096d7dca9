"""One trace from an api request through the published CloudEvent to the notify invocation.

The api runs through functions-framework's test client; the outbox row it writes is published
after the commit by the real HTTP sink (K_SINK) to the notify function, served over real HTTP on
127.0.0.1 by a thread of this process, so both functions' spans land in the same in-memory exporter.
"""

import json
import logging
import uuid

import sqlalchemy as sa
from opentelemetry.trace import SpanKind

from shared.db import unit_of_work
from shared.events import catalog
from shared.log import CloudLoggingFormatter
from shared.models import OutboxEvent
from tests.conftest import auth
from tests.http.telemetry.conftest import patient_body
from tests.support.telemetry import hex_span, hex_trace

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


def test_one_trace_spans_the_request_the_published_event_and_the_notify_invocation(client, admin_token, cap, notify_sink):
    body = patient_body(email=f"{uuid.uuid4().hex[:8]}@example.org", communication={"email": True, "sms": False})
    resp = client.post("/patients", json=body, headers={**auth(admin_token), "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
                                                         "tracestate": "vendor=opaque1"})
    assert resp.status_code == 201
    patient_id = resp.get_json()["id"]

    spans = cap.spans()
    [server] = [s for s in spans if s.kind == SpanKind.SERVER and s.name == "POST /patients"]
    [consumer] = [s for s in spans if s.kind == SpanKind.CONSUMER]
    # the api request continues the caller's trace
    assert hex_trace(server) == CALLER_TRACE and f"{server.parent.span_id:016x}" == CALLER_SPAN

    # the outbox row, and the CloudEvent published from it, name the request's span
    with unit_of_work() as uow:
        row = uow.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.subject == patient_id)).one()
    assert row.type == catalog.PATIENT_REGISTERED and row.published_at is not None
    assert row.traceparent == f"00-{CALLER_TRACE}-{hex_span(server)}-01" and row.tracestate == "vendor=opaque1"
    [delivery] = [d for d in notify_sink.deliveries if d.get("ce-id") == str(row.id)]
    assert delivery["ce-traceparent"] == row.traceparent and delivery["ce-tracestate"] == "vendor=opaque1"
    assert delivery["traceparent"] == row.traceparent

    # the notify invocation is a child of the request's span, in the same trace
    assert consumer.name == f"notify {catalog.PATIENT_REGISTERED}"
    assert hex_trace(consumer) == CALLER_TRACE and consumer.parent.span_id == server.context.span_id
    assert consumer.attributes["cloudevents.event_id"] == str(row.id)
    assert consumer.attributes["http.response.status_code"] == 200
    assert consumer.context.trace_state.to_header() == "vendor=opaque1"


class Lines(logging.Handler):
    """Formats each record when it is emitted (on the request's thread, with its trace bound)."""

    def __init__(self):
        super().__init__()
        self.setFormatter(CloudLoggingFormatter())
        self.lines: list[dict] = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))


def test_log_lines_carry_the_span_ids_of_the_request(client, admin_token, cap):
    handler = Lines()
    logging.getLogger().addHandler(handler)
    try:
        resp = client.post("/patients", json=patient_body(),
                           headers={**auth(admin_token), "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    finally:
        logging.getLogger().removeHandler(handler)
    assert resp.status_code == 201
    [server] = [s for s in cap.spans() if s.name == "POST /patients"]
    [request_line] = [line for line in handler.lines if line["message"] == "request" and line.get("route") == "/patients"]
    assert request_line["logging.googleapis.com/trace"].endswith(f"/traces/{CALLER_TRACE}")
    assert request_line["logging.googleapis.com/spanId"] == hex_span(server)
