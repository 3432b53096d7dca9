"""LIS metrics through the lis_consumer function: messages by type and outcome, warnings an operator
must look at, and the lag histogram (processed-at minus MSH-7) of a message sent a known time ago."""

import random
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from functions_framework import create_app
from opentelemetry.trace import SpanKind

from tests.support import hl7_gen
from tests.support.hl7_tag import tag
from tests.support.lis_delivery import lis_event, push
from tests.support.lis_fidelity import raw

ROOT = Path(__file__).resolve().parents[3]
LAG = "patient_mgt.lis.lag"
MESSAGES = "patient_mgt.lis.messages"
WARNINGS = "patient_mgt.lis.warnings"


@pytest.fixture(scope="module")
def lis_client(database_url):
    app = create_app(target="lis_consumer", source=str(ROOT / "functions" / "lis_consumer" / "main.py"), signature_type="cloudevent")
    return app.test_client()


def _adt(sent_at):
    namespace = uuid.uuid4().hex[:6].upper()
    patient = hl7_gen.make_patient(random.Random(7), namespace, 1)
    return hl7_gen.adt(patient, "A04", f"LAB-{namespace}", uuid.uuid4().hex[:20], sent_at)


def test_the_lag_histogram_records_the_known_lag_of_a_message(lis_client, cap):
    ninety_minutes_ago = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=90)
    headers, body = lis_event(_adt(ninety_minutes_ago))
    resp = lis_client.post("/", headers=headers, data=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    # the same delivery again: a duplicate, counted as such, with no second lag
    assert lis_client.post("/", headers=headers, data=body).status_code == 200

    data = cap.collect()
    [lag] = cap.histogram(LAG, data, message_type="ADT^A04")
    assert lag.count == 1
    assert 5400 <= lag.sum < 5400 + 120  # 90 minutes, plus the time this test took
    bounds = list(lag.explicit_bounds)
    assert lag.bucket_counts[bounds.index(7200)] == 1  # the (3600, 7200] bucket
    assert cap.value(MESSAGES, data, message_type="ADT^A04", outcome="processed") == 1
    assert cap.value(MESSAGES, data, message_type="ADT^A04", outcome="duplicate") == 1


def test_quarantined_messages_are_counted_without_a_lag(lis_client, cap):
    headers, body = lis_event(b"this is not HL7 at all")
    assert lis_client.post("/", headers=headers, data=body).status_code == 200
    data = cap.collect()
    assert cap.value(MESSAGES, data, outcome="quarantined") == 1
    assert cap.histogram(LAG, data) == []


def test_a_raw_push_delivery_has_its_consumer_span(lis_client, cap):
    headers, body = push(_adt(datetime.now(timezone.utc) - timedelta(minutes=1)))
    assert lis_client.post("/", headers=headers, data=body).status_code == 200
    [span] = [s for s in cap.spans() if s.kind == SpanKind.CONSUMER]
    assert span.name == "lis-consumer google.cloud.pubsub.topic.v1.messagePublished"
    assert span.attributes["http.response.status_code"] == 200
    assert cap.value(MESSAGES, message_type="ADT^A04", outcome="processed") == 1


def test_a_reused_control_id_is_counted_by_warning(lis_client, cap):
    run = uuid.uuid4().hex[:8]
    for name in ("aidbox__ORU-R01__2.hl7", "aidbox__ORU-R01__3.hl7", "aidbox__ORU-R01__3.hl7"):
        headers, body = push(tag(raw(f"hl7/{name}"), run))
        assert lis_client.post("/", headers=headers, data=body).status_code == 200
    data = cap.collect()
    # HbA1c: a different message under TEST-MSG-001 (counted); then the same HbA1c again (a duplicate).
    assert cap.value(WARNINGS, data, message_type="ORU^R01", warning="control_id_reused") == 1
    assert cap.value(MESSAGES, data, message_type="ORU^R01", outcome="processed") == 2
    assert cap.value(MESSAGES, data, message_type="ORU^R01", outcome="duplicate") == 1
