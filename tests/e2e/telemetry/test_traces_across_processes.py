"""Real functions-framework processes exporting OTLP/HTTP to a receiver on 127.0.0.1: one trace
from the api request, through the CloudEvent it publishes (K_SINK), to the notify invocation;
the api's log lines carry that trace; GET /metrics serves Prometheus text over real HTTP."""

import json
import uuid

import pytest
import requests

from shared.events import catalog
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e
CALLER_TRACE = "5bf92f3577b34da6a3ce929d0e0e4737"
CALLER_SPAN = "10f067aa0ba902b8"


@pytest.fixture()
def receiver():
    server = OtlpReceiver().start()
    yield server
    server.stop()


def test_one_trace_across_the_api_and_notify_processes(start_fn, make_token, receiver, tmp_path):
    otel = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_BSP_SCHEDULE_DELAY": "100", "DATA_DIR": str(tmp_path), "NOTIFY_PROVIDER": "console"}
    notify = start_fn("notify", env=otel)
    api = start_fn("api", env={**otel, "K_SINK": notify.url + "/", "OTEL_METRICS_EXPORTER": "prometheus"},
                   ready_path="/readyz")
    body = {"name": {"family": f"E2e-{uuid.uuid4().hex[:8]}", "given": ["Tracy"]}, "birth_date": "1970-03-04",
            "email": f"{uuid.uuid4().hex[:10]}@example.org", "communication": {"email": True, "sms": False}}
    resp = requests.post(f"{api.url}/patients", json=body, timeout=10, headers={
        "Authorization": f"Bearer {make_token('patients:write')}", "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    assert resp.status_code == 201, resp.text

    def both_spans():
        spans = {(service, span.name): span for service, span in receiver.spans() if span.trace_id.hex() == CALLER_TRACE}
        wanted = (("patient-mgt-api", "POST /patients"), ("patient-mgt-notify", f"notify {catalog.PATIENT_REGISTERED}"))
        return [spans[w] for w in wanted] if all(w in spans for w in wanted) else None

    server, consumer = wait_for(both_spans, timeout=30, what="the api and notify spans of the caller's trace")
    assert server.parent_span_id.hex() == CALLER_SPAN
    assert consumer.parent_span_id == server.span_id  # notify continues the request's span, across the broker hop

    # the api's log lines name the same trace and span
    lines = [json.loads(line) for line in api.logs().splitlines() if line.startswith("{")]
    [request_line] = [line for line in lines if line.get("message") == "request" and line.get("route") == "/patients"]
    assert request_line["logging.googleapis.com/trace"].endswith(f"/traces/{CALLER_TRACE}")
    assert request_line["logging.googleapis.com/spanId"] == server.span_id.hex()
    notify_lines = [json.loads(line) for line in notify.logs().splitlines() if line.startswith("{")]
    assert any(line.get("logging.googleapis.com/trace", "").endswith(CALLER_TRACE) for line in notify_lines)

    # the Prometheus text over real HTTP, to a metrics-only key
    metrics = requests.get(f"{api.url}/metrics", headers={"Authorization": f"Bearer {make_token('metrics:read')}"}, timeout=10)
    assert metrics.status_code == 200
    assert "patient_mgt_registrations_succeeded_total 1.0" in metrics.text
    assert "patient_mgt_outbox_unpublished " in metrics.text
    # nothing of the patient left the processes in telemetry
    assert all(body["name"]["family"].encode() not in raw and body["email"].encode() not in raw for raw in receiver.raw)
