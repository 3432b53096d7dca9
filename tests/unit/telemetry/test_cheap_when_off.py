"""With no exporter configured, telemetry imports nothing of OpenTelemetry and records nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

from shared.telemetry import instruments, setup

ROOT = Path(__file__).resolve().parents[3]

_PROGRAM = """
import json, sys
import flask
from cloudevents.http import CloudEvent
import shared.api.every_route  # noqa: F401  (registers every route; the api function loads them lazily)
from shared.http.app import handle
from shared.telemetry import instruments, spans
from shared.log import current_trace

app = flask.Flask("notify")
with app.test_request_context("/healthz", headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}):
    status = handle(flask.request).status_code
    request_trace = current_trace()[0]
with app.test_request_context("/", method="POST"):
    spans.begin_event(CloudEvent({"type": "t", "source": "/s", "id": "1",
                                  "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}))
    event_trace = current_trace()[0]
    app.process_response(flask.Response("ok"))
print(json.dumps({"status": status, "request_trace": request_trace, "event_trace": event_trace,
                  "bound": instruments.enabled(),
                  "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("opentelemetry", "prometheus_client"))}))
"""


def test_requests_and_deliveries_load_no_opentelemetry_when_no_exporter_is_configured():
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["DATABASE_URL"] = "postgresql+pg8000://nobody@127.0.0.1:1/none"  # never touched by /healthz
    out = subprocess.run([sys.executable, "-c", _PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 200
    # the callers' traces are still continued (log lines and outbox rows carry them)
    assert result["request_trace"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert result["event_trace"] == "0af7651916cd43dd8448eb211c80319c"
    assert result["bound"] is False
    assert result["modules"] == []


def test_unbound_instruments_accept_calls_and_keep_nothing():
    setup.shutdown()
    assert not instruments.enabled()
    instruments.REGISTRATIONS_ATTEMPTED.add(1)
    instruments.LIS_LAG.record(5.0, {"message_type": "ORU^R01"})
    assert all(i._impl is None for i in instruments.INSTRUMENTS)


def test_settings_refuse_unknown_exporters(monkeypatch):
    import pytest
    from pydantic import ValidationError

    from shared.settings import Settings

    monkeypatch.setenv("OTEL_METRICS_EXPORTER", " Prometheus , none,otlp")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    settings = Settings()
    assert settings.otel_metrics_exporter == "prometheus,otlp"
    assert setup.exporter_names(settings.otel_traces_exporter) == set()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "prometheus")  # not a trace exporter
    with pytest.raises(ValidationError):
        Settings()
