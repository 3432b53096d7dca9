"""The CloudEvent of an outbox row and its HTTP and Pub/Sub binary forms."""

import json
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

import jsonschema
import pytest

from shared.events import catalog
from shared.events.publishing import OutgoingEvent
from shared.events.publishing.envelope import from_outbox_row, from_stored, to_http_binary, to_pubsub_binary, to_structured
from tests.support.cloudevents_schema import structured_from_http, structured_from_pubsub, validate_event


def row(**overrides):
    pid = uuid.uuid4()
    values = dict(id=uuid.uuid4(), source="/patient-mgt/api", type=catalog.PATIENT_REGISTERED, subject=str(pid),
                  time=datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=timezone.utc),
                  dataschema=catalog.dataschema_for(catalog.PATIENT_REGISTERED),
                  data={"patient_id": str(pid), "version": 1, "origin": "api"},
                  traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate=None)
    values.update(overrides)
    return SimpleNamespace(**values)


def test_the_row_id_is_the_event_id_and_every_attribute_is_set():
    r = row()
    event = from_outbox_row(r)
    assert event.attributes == {
        "specversion": "1.0", "id": str(r.id), "source": "/patient-mgt/api", "type": catalog.PATIENT_REGISTERED,
        "time": "2026-03-01T12:30:05.123456Z", "datacontenttype": "application/json", "subject": r.subject,
        "dataschema": r.dataschema, "traceparent": r.traceparent,
    }
    assert json.loads(event.data) == r.data


def test_optional_attributes_are_absent_not_empty():
    event = from_outbox_row(row(subject=None, traceparent=None, dataschema=None))
    assert {"subject", "traceparent", "tracestate", "dataschema"}.isdisjoint(event.attributes)


def test_http_binary_mode_puts_attributes_in_ce_headers_and_data_in_the_body():
    r = row(tracestate="congo=t61rcWkgMzE")
    headers, body = to_http_binary(from_outbox_row(r))
    assert headers["ce-id"] == str(r.id) and headers["ce-specversion"] == "1.0"
    assert headers["Content-Type"] == "application/json" and "ce-datacontenttype" not in headers
    # the distributed-tracing extension, and the W3C header itself for HTTP-level tracing
    assert headers["ce-traceparent"] == headers["traceparent"] == r.traceparent
    assert headers["tracestate"] == "congo=t61rcWkgMzE"
    validate_event(structured_from_http(headers, body))


def test_http_header_values_are_percent_encoded_where_the_binding_requires():
    event = OutgoingEvent({"specversion": "1.0", "id": "1", "source": "/a b", "type": "t", "subject": 'é"%'}, b"{}")
    headers, _ = to_http_binary(event)
    assert headers["ce-source"] == "/a%20b"
    assert headers["ce-subject"] == "%C3%A9%22%25"


def test_pubsub_binary_mode_uses_ce_attributes_content_type_and_the_subject_as_ordering_key():
    r = row()
    attributes, data, ordering_key = to_pubsub_binary(from_outbox_row(r))
    assert ordering_key == r.subject
    assert attributes["content-type"] == "application/json"
    assert all(k.startswith("ce-") or k == "content-type" for k in attributes)
    assert attributes["ce-type"] == catalog.PATIENT_REGISTERED and attributes["ce-traceparent"] == r.traceparent
    validate_event(structured_from_pubsub(attributes, data))


def test_an_event_without_subject_has_no_ordering_key():
    _, _, key = to_pubsub_binary(from_outbox_row(row(subject=None)))
    assert key == ""


def test_a_redriven_event_drops_delivery_extensions_and_keeps_its_id():
    stored = {"specversion": "1.0", "id": "abc", "source": "/s", "type": "t", "knativeerrorcode": "500",
              "knativeerrordata": "eA==", "knativeerrordest": "http://x/", "knativearrivaltime": "2026-01-01T00:00:00Z"}
    event = from_stored(stored, b"{}")
    assert event.attributes == {"specversion": "1.0", "id": "abc", "source": "/s", "type": "t"}


def test_validation_rejects_data_that_breaks_the_catalog_schema():
    event = to_structured(from_outbox_row(row(data={"patient_id": "not-a-uuid", "version": 1, "origin": "api"})))
    with pytest.raises(jsonschema.ValidationError):
        validate_event(event)
    event = to_structured(from_outbox_row(row(data={"patient_id": str(uuid.uuid4()), "version": 1, "origin": "api", "name": "x"})))
    with pytest.raises(jsonschema.ValidationError):
        validate_event(event)


def test_validation_rejects_an_envelope_that_breaks_the_cloudevents_schema():
    event = to_structured(from_outbox_row(row()))
    event["specversion"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate_event(event)
