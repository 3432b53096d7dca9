"""Attribute values are bounded: anything unexpected collapses to ``other``."""

import pytest

from shared.events import catalog
from shared.telemetry import labels


@pytest.mark.parametrize(("status", "label"), [(200, "2xx"), (201, "2xx"), (404, "4xx"), (503, "5xx"), (99, "other"), (600, "other")])
def test_status_classes(status, label):
    assert labels.status_class(status) == label


def test_event_types_are_catalog_or_platform_types():
    assert labels.event_type(catalog.PATIENT_REGISTERED) == catalog.PATIENT_REGISTERED
    assert labels.event_type("dev.knative.sources.ping") == "dev.knative.sources.ping"
    assert labels.event_type("org.patientmgt.patient.registered.v1.Smith") == "other"
    assert labels.event_type(None) == "other"


@pytest.mark.parametrize(("value", "label"), [
    ("ORU^R01", "ORU^R01"), ("ADT^A04^ADT_A01", "ADT^A04"), ("ADT", "ADT"), ("ZZZ^Z99", "other"),
    ("DOE^JOHN", "other"), ("oru^r01", "other"), (None, "unknown"), ("", "unknown"),
])
def test_hl7_message_types(value, label):
    assert labels.hl7_message_type(value) == label


def test_names_are_short_codes_or_other():
    assert labels.name("outbox-sweep") == "outbox-sweep"
    assert labels.name("Jane Doe") == "other"
    assert labels.name("x" * 65) == "other"
    assert labels.name("sms", ("email", "sms")) == "sms"
    assert labels.name("fax", ("email", "sms")) == "other"
