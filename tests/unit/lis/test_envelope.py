"""Pub/Sub and CloudEvent shapes -> Delivery, as the conformance data describes them."""

import base64
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from shared.lis.envelope import (
    PUBSUB_EVENT_TYPE,
    from_cloud_event,
    from_push_body,
    is_push_body,
    parse_time,
)

PUBSUB = Path(__file__).resolve().parents[2] / "fixtures" / "pubsub"
HL7 = b"MSH|^~\\&|LAB|FAC|||20260101000000||ADT^A08|C1|P|2.5\rPID|1||X1^^^FAC||DOE^JANE\r"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_push_body_keeps_what_functions_framework_drops():
    body = {"message": {"data": b64(HL7), "messageId": "m-1", "publishTime": "2021-02-05T04:06:14.109Z",
                        "orderingKey": "patient-1", "attributes": {"a": "b"}},
            "subscription": "projects/p/subscriptions/s", "deliveryAttempt": 3}
    d = from_push_body(body, "/projects/p/topics/lis?x=1")
    assert (d.transport, d.pubsub_message_id, d.ce_id, d.payload) == ("pubsub", "m-1", "m-1", HL7)
    assert d.ce_source == "//pubsub.googleapis.com/projects/p/topics/lis"
    assert (d.ordering_key, d.subscription, d.attributes) == ("patient-1", "projects/p/subscriptions/s", {"a": "b"})
    assert d.publish_time == datetime(2021, 2, 5, 4, 6, 14, 109000, tzinfo=timezone.utc)
    assert d.problem is None


def test_push_body_without_data_is_a_problem_not_an_error():
    d = from_push_body({"message": {"messageId": "m-2", "attributes": {"x": "y"}}, "subscription": "s"}, "/")
    assert (d.problem, d.pubsub_message_id, d.payload, d.ce_source) == ("no_data", "m-2", b"", "//pubsub.googleapis.com/")


def test_push_body_with_bad_base64_keeps_the_text():
    d = from_push_body({"message": {"messageId": "m-3", "data": "not base64 !!"}}, "/")
    assert d.problem == "invalid_base64" and d.payload == b"not base64 !!"


def test_push_body_snake_case_duplicates_and_no_message_id():
    d = from_push_body({"message": {"data": b64(HL7), "message_id": "m-4", "publish_time": "2021-02-05T04:06:14Z"}}, "/")
    assert d.pubsub_message_id == "m-4" and d.publish_time is not None
    anonymous = from_push_body({"message": {"data": b64(HL7)}}, "/")
    again = from_push_body({"message": {"data": b64(HL7)}}, "/")
    assert anonymous.pubsub_message_id is None and anonymous.problem is None
    assert anonymous.ce_id.startswith("sha256:") and anonymous.ce_id == again.ce_id  # same body, same key


def test_is_push_body():
    assert is_push_body({"message": {}, "subscription": "s"})
    assert not is_push_body({"specversion": "1.0", "message": {}})
    assert not is_push_body({"context": {}, "message": {}})
    assert not is_push_body({"message": "text"}) and not is_push_body([1]) and not is_push_body(None)


@pytest.mark.parametrize("name", ["MessagePublishedData-simple.json", "MessagePublishedData-complex.json"])
def test_conformance_push_bodies(name):
    body = json.loads((PUBSUB / name).read_text())
    d = from_push_body(body, "/")
    assert d.payload == base64.b64decode(body["message"]["data"])
    assert d.pubsub_message_id == body["message"]["messageId"]


def test_conformance_structured_eventarc_event():
    event = json.loads((PUBSUB / "MessagePublishedData-structured.json").read_text())
    attributes = {k: v for k, v in event.items() if k != "data"}
    d = from_cloud_event(attributes, event["data"])
    assert d.transport == "pubsub" and d.ce_type == PUBSUB_EVENT_TYPE
    assert (d.pubsub_message_id, d.ordering_key) == ("message-id", "ordering-key")
    assert d.subscription == "projects/test-project/subscriptions/my-subscription"
    assert d.payload == b"test message 3"


def test_messagepublished_with_unusable_data():
    d = from_cloud_event({"type": PUBSUB_EVENT_TYPE, "source": "//pubsub.googleapis.com/x", "id": "e1"}, b"not json")
    assert d.problem == "invalid_pubsub_envelope" and d.payload == b"not json"
    d = from_cloud_event({"type": PUBSUB_EVENT_TYPE, "source": "s", "id": "e2"}, {"message": "x"})
    assert d.problem == "invalid_pubsub_message"


def test_direct_lis_events():
    attrs = {"type": "org.example.lis.v1", "source": "/lis", "id": "e3", "datacontenttype": "application/hl7-v2"}
    d = from_cloud_event(attrs, HL7)
    assert (d.transport, d.declared_format, d.payload, d.pubsub_message_id) == ("cloudevent", "hl7v2", HL7, None)
    assert from_cloud_event(attrs, HL7.decode()).payload == HL7
    j = from_cloud_event({**attrs, "datacontenttype": "application/json; charset=utf-8"}, {"event": "patient"})
    assert j.declared_format == "json" and json.loads(j.payload) == {"event": "patient"}
    assert from_cloud_event({**attrs, "datacontenttype": None}, None).problem == "no_data"
    assert from_cloud_event({**attrs, "datacontenttype": "text/plain"}, HL7).declared_format is None  # sniffed later


def test_parse_time():
    assert parse_time("2021-02-05T04:06:14.123456789Z") == datetime(2021, 2, 5, 4, 6, 14, 123456, tzinfo=timezone.utc)
    assert parse_time("2021-02-05T04:06:14+02:00").utcoffset().total_seconds() == 7200
    assert parse_time("2021-02-05T04:06:14") is None  # no offset: not an instant
    assert parse_time("yesterday") is None and parse_time(12) is None and parse_time("") is None


LATE, EARLY = "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"


@pytest.mark.parametrize("value", [LATE, EARLY])
def test_a_publish_time_without_a_utc_form_is_dropped_with_a_warning(value):
    d = from_push_body({"message": {"data": b64(HL7), "messageId": "m-5", "publishTime": value}}, "/")
    assert (d.publish_time, d.warnings, d.problem, d.payload) == (None, ("out_of_range:publishTime",), None, HL7)
    eventarc = from_cloud_event({"type": PUBSUB_EVENT_TYPE, "source": "s", "id": "e5", "time": value},
                                {"message": {"data": b64(HL7), "messageId": "m-6"}})
    assert (eventarc.publish_time, eventarc.warnings) == (None, ("out_of_range:ce-time",))
    own = from_cloud_event({"type": "org.example.lis.v1", "source": "/lis", "id": "e6", "time": value,
                            "datacontenttype": "application/hl7-v2"}, HL7)
    assert (own.publish_time, own.warnings, own.payload) == (None, ("out_of_range:ce-time",), HL7)
    broken = from_cloud_event({"type": PUBSUB_EVENT_TYPE, "source": "s", "id": "e7", "time": value}, b"{")
    assert (broken.problem, broken.warnings) == ("invalid_pubsub_envelope", ("out_of_range:ce-time",))


def test_a_publish_time_at_the_edge_with_a_utc_form_is_kept():
    d = from_push_body({"message": {"data": b64(HL7), "publishTime": "9999-12-31T23:59:59.999999999Z"}}, "/")
    assert d.publish_time == datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc) and d.warnings == ()


def test_an_eventarc_envelope_nested_past_the_recursion_limit_is_unusable_not_an_error():
    deep = b'{"message": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    d = from_cloud_event({"type": PUBSUB_EVENT_TYPE, "source": "s", "id": "e8"}, deep)
    assert (d.problem, d.payload) == ("invalid_pubsub_envelope", deep)


def test_nul_in_the_push_url_does_not_reach_the_source():
    d = from_push_body({"message": {"data": b64(HL7), "messageId": "m-9"}}, "/projects/p\x00/topics/t\ud800")
    assert "\x00" not in d.ce_source and d.ce_source.encode("utf-8")
