"""Reading a PingSource tick: the job it names and the time it was sent, in every shape it can arrive.

The reference event is tests/fixtures/knative/pingsource-event.example.json (built from the
knative/eventing source, see its README); the variants follow ../shared/conformance/knative/pingsource-event.md.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cloudevents.http import from_http

from shared.jobs import ping, registry

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "tests" / "fixtures" / "knative" / "pingsource-event.example.json"


def _binary(data: bytes | None, content_type: str | None = "application/json", **attrs: str):
    headers = {"ce-specversion": "1.0", "ce-type": "dev.knative.sources.ping", "ce-id": "6f1c2a8e",
               "ce-source": "/apis/v1/namespaces/patient-mgt/pingsources/retention",
               "ce-time": "2026-01-01T03:30:00.123456789Z", **{f"ce-{k}": v for k, v in attrs.items()}}
    if content_type:
        headers["content-type"] = content_type
    return from_http(headers, data)


def test_the_reference_event_parses():
    doc = json.loads(EXAMPLE.read_text())
    event = from_http({"content-type": "application/cloudevents+json"}, json.dumps(doc).encode())
    assert ping.is_ping(event)
    assert ping.event_time(event) == datetime(2026, 1, 1, 0, 1, 0, 123456, tzinfo=timezone.utc)
    # Its data names no job ({"message": ...}): the PingSource's own name is used.
    assert ping.job_name(event) == "ping-fn"


@pytest.mark.parametrize(("data", "content_type"), [
    (b'{"job": "data-quality"}', "application/json"),
    (b'{"job": "data-quality"}', None),  # spec.contentType empty: no datacontenttype
    (b'{"job": "data-quality", "extra": 1}', "text/plain"),
])
def test_the_job_comes_from_the_data_however_it_is_typed(data, content_type):
    assert ping.job_name(_binary(data, content_type)) == "data-quality"


def test_data_base64_in_structured_mode():
    doc = {"specversion": "1.0", "type": "dev.knative.sources.ping", "id": "x",
           "source": "/apis/v1/namespaces/patient-mgt/pingsources/outbox-sweep",
           "data_base64": base64.b64encode(b'{"job": "lis-reconcile"}').decode()}
    event = from_http({"content-type": "application/cloudevents+json"}, json.dumps(doc).encode())
    assert ping.job_name(event) == "lis-reconcile"


@pytest.mark.parametrize("data", [None, b"", b"hello", b'["retention"]', b'{"job": ""}', b'{"job": 7}', b"\xff\xfe"])
def test_data_that_names_no_job_falls_back_to_the_pingsource_name(data):
    assert ping.job_name(_binary(data, None)) == "retention"


def test_a_foreign_source_without_a_job_names_nothing():
    event = from_http({"ce-specversion": "1.0", "ce-type": "dev.knative.sources.ping", "ce-id": "1",
                       "ce-source": "/somewhere/else"}, None)
    assert ping.job_name(event) is None


def test_a_missing_or_unreadable_time_means_now():
    before = datetime.now(timezone.utc)
    event = from_http({"ce-specversion": "1.0", "ce-type": "dev.knative.sources.ping", "ce-id": "1",
                       "ce-source": "/apis/v1/namespaces/n/pingsources/retention"}, None)
    assert ping.event_time(event) >= before
    assert ping.event_time(_binary(None, None, time="yesterday")) >= before


def test_the_slot_of_a_tick_uses_the_jobs_schedule():
    event = _binary(b'{"job": "retention"}')
    assert ping.slot(registry.JOBS["retention"], event) == datetime(2026, 1, 1, 3, 30, tzinfo=timezone.utc)
    assert ping.slot(registry.JOBS["data-quality"], event) == datetime(2026, 1, 1, 2, 15, tzinfo=timezone.utc)


def test_a_tick_sent_a_hair_early_still_lands_in_its_own_slot():
    early = _binary(b'{"job": "retention"}', time="2026-01-01T03:29:59.400Z")
    assert ping.slot(registry.JOBS["retention"], early) == datetime(2026, 1, 1, 3, 30, tzinfo=timezone.utc)
    late_in_minute = _binary(b'{"job": "outbox-sweep"}', time="2026-01-01T03:29:57.000Z")
    assert ping.slot(registry.JOBS["outbox-sweep"], late_in_minute) == datetime(2026, 1, 1, 3, 29, tzinfo=timezone.utc)
