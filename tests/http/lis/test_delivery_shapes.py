"""Every way a LIS message reaches the function, and the status code each answer carries."""

import base64
import io
import json
import uuid

import pytest

from shared.lis.json_event import EXAMPLE
from tests.support import lis_db
from tests.support.hl7_tag import tag
from tests.support.lis_delivery import SUBSCRIPTION, eventarc_binary, eventarc_structured, lis_event, new_id, push
from tests.support.lis_samples import by_file, check

ORU = by_file()["pyhl7__ORU-R01__1.hl7"]


def _post(client, request, path="/"):
    headers, body = request
    return client.post(path, headers=headers, data=body)


@pytest.mark.parametrize("form", [push, eventarc_binary, eventarc_structured])
def test_pubsub_forms_are_processed(lis_client, form):
    run, message_id = uuid.uuid4().hex[:8], new_id()
    response = _post(lis_client, form(tag(ORU.raw, run), message_id, orderingKey="patient-1"))
    assert response.status_code == 200
    rows = lis_db.messages(pubsub_message_id=message_id)
    check(ORU, rows, run)
    assert rows[0].transport == "pubsub" and rows[0].ordering_key == "patient-1"
    assert rows[0].subscription == SUBSCRIPTION  # kept, unlike functions-framework's own conversion


def test_push_to_a_topic_url_keys_the_source_like_functions_framework(lis_client):
    message_id = new_id()
    assert _post(lis_client, push(tag(ORU.raw, message_id), message_id), "/projects/p1/topics/lis?x=1").status_code == 200
    [row] = lis_db.messages(pubsub_message_id=message_id)
    assert row.ce_source == "//pubsub.googleapis.com/projects/p1/topics/lis"


def test_one_message_id_on_two_topics_is_two_messages_and_a_redelivery_on_one_is_a_duplicate(lis_client):
    # Pub/Sub ids are unique per topic only (the emulator of a second `make dev` starts again at 1).
    message_id, first, second = new_id(), uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    assert _post(lis_client, push(tag(ORU.raw, first), message_id), "/projects/p1/topics/lis-a").status_code == 200
    assert _post(lis_client, push(tag(ORU.raw, second), message_id), "/projects/p1/topics/lis-b").status_code == 200
    assert _post(lis_client, push(tag(ORU.raw, first), message_id), "/projects/p1/topics/lis-a").status_code == 200
    rows = {r.ce_source.rsplit("/", 1)[1]: r for r in lis_db.messages(pubsub_message_id=message_id)}
    assert {k: (r.status, r.delivery_count) for k, r in rows.items()} == {"lis-a": ("processed", 2), "lis-b": ("processed", 1)}


@pytest.mark.parametrize("content_type", ["application/hl7-v2", "application/hl7-v2+er7", "text/plain"])
def test_a_lis_cloudevent_with_hl7_data(lis_client, content_type):
    run, event_id = uuid.uuid4().hex[:8], new_id()
    assert _post(lis_client, lis_event(tag(ORU.raw, run), content_type, event_id)).status_code == 200
    rows = lis_db.messages(ce_source="/lis/test-lab", ce_id=event_id)
    check(ORU, rows, run)
    assert rows[0].transport == "cloudevent" and rows[0].pubsub_message_id is None


def test_a_structured_lis_cloudevent_with_hl7_text_data(lis_client):
    run, event_id = uuid.uuid4().hex[:8], new_id()
    event = {"specversion": "1.0", "type": "org.example.lis.message.v1", "source": "/lis/structured", "id": event_id,
             "datacontenttype": "application/hl7-v2", "data": tag(ORU.raw, run).decode("utf-8")}
    response = lis_client.post("/", headers={"Content-Type": "application/cloudevents+json"}, data=json.dumps(event))
    assert response.status_code == 200
    check(ORU, lis_db.messages(ce_source="/lis/structured", ce_id=event_id), run)


def test_a_lis_cloudevent_with_the_json_event(lis_client):
    event = json.loads(json.dumps(EXAMPLE))
    suffix = uuid.uuid4().hex[:8]
    event["message_id"] += suffix
    event["patient"]["identifiers"][0]["value"] += suffix
    event["orders"][0]["placer_number"] += suffix
    event["orders"][0]["filler_number"] += suffix
    event_id = new_id()
    assert _post(lis_client, lis_event(json.dumps(event).encode(), "application/json", event_id)).status_code == 200
    [row] = lis_db.messages(ce_source="/lis/test-lab", ce_id=event_id)
    assert (row.status, row.content_format, row.message_type, row.control_id) == ("processed", "json", "ORU^R01", event["message_id"])
    order = lis_db.order_by_number(placer=event["orders"][0]["placer_number"])
    [result] = lis_db.results(order["id"])
    assert (order["status"], result["value"], result["units"], result["status"]) == ("final", "4.2", "mmol/L", "F")
    assert lis_db.patient(row.patient_id)["birth_date"].isoformat() == "1980-04-01"


def test_the_json_event_through_pubsub(lis_client):
    event = json.loads(json.dumps(EXAMPLE))
    event.update(event="patient", message_id=new_id())
    del event["orders"]
    event["patient"]["identifiers"][0]["value"] = "J" + event["message_id"]
    message_id = new_id()
    assert _post(lis_client, push(json.dumps(event).encode(), message_id)).status_code == 200
    [row] = lis_db.messages(pubsub_message_id=message_id)
    assert (row.status, row.message_type) == ("processed", "ADT^A08")
    assert lis_db.patient(row.patient_id)["family"] == "Doe"


def test_an_invalid_json_event_is_quarantined_with_2xx(lis_client):
    event_id = new_id()
    bad = json.dumps({"version": "1", "event": "result", "message_id": "x", "sent_at": "2026-01-01T00:00:00Z"})
    assert _post(lis_client, lis_event(bad.encode(), "application/json", event_id)).status_code == 200
    [row] = lis_db.messages(ce_source="/lis/test-lab", ce_id=event_id)
    assert (row.status, row.error_code) == ("quarantined", "invalid_json_event")
    assert row.raw == bad.encode()


def test_a_push_message_without_data_is_stored_as_quarantined_not_rejected(lis_client):
    message_id = new_id()
    body = {"message": {"messageId": message_id, "attributes": {"k": "v"}, "publishTime": "2026-01-01T00:00:00Z"},
            "subscription": SUBSCRIPTION}
    response = lis_client.post("/", json=body)
    assert response.status_code == 200 and response.json["messages"][0]["status"] == "quarantined"
    [row] = lis_db.messages(pubsub_message_id=message_id)
    assert (row.status, row.error_code, row.raw, row.attributes) == ("quarantined", "no_data", b"", {"k": "v"})
    assert lis_client.post("/", json=body).status_code == 200  # and again: a redelivery, still 2xx
    assert lis_db.messages(pubsub_message_id=message_id)[0].delivery_count == 2


def test_an_eventarc_event_without_data_is_quarantined(lis_client):
    message_id = new_id()
    assert _post(lis_client, eventarc_binary(None, message_id)).status_code == 200
    [row] = lis_db.messages(pubsub_message_id=message_id)
    assert (row.status, row.error_code) == ("quarantined", "no_data")


def test_bad_base64_is_quarantined(lis_client):
    message_id = new_id()
    body = {"message": {"messageId": message_id, "data": "%%% not base64"}, "subscription": SUBSCRIPTION}
    assert lis_client.post("/", json=body).status_code == 200
    assert lis_db.messages(pubsub_message_id=message_id)[0].error_code == "invalid_base64"


def test_unparseable_hl7_is_quarantined_and_kept(lis_client):
    message_id = new_id()
    raw = b"\x0bMSH|^~\\&|A|B|||20260101||ORU^R01||P|2.5\x1c\r"
    assert _post(lis_client, push(raw, message_id)).status_code == 200
    [row] = lis_db.messages(pubsub_message_id=message_id)
    assert (row.status, row.error_code, row.raw, row.message_type) == ("quarantined", "no_control_id", raw, "ORU^R01")


SECRET = "JANE-DOE-19800401"


@pytest.mark.parametrize("request_", [
    ({"Content-Type": "application/json"}, json.dumps({"hello": SECRET}).encode()),
    ({"Content-Type": "text/plain"}, f"MSH|{SECRET}".encode()),
    ({"Content-Type": "application/json"}, b"{not json " + SECRET.encode()),
    ({"Content-Type": "application/cloudevents+json"}, json.dumps({"specversion": "1.0", "data": SECRET}).encode()),
    ({"Content-Type": "application/cloudevents+json"}, b"{broken " + SECRET.encode()),
    ({"Content-Type": "application/hl7-v2", "ce-specversion": "1.0", "ce-id": "1"}, SECRET.encode()),
], ids=["json", "text", "bad-json", "structured-missing", "structured-broken", "binary-partial"])
def test_a_request_that_is_not_a_cloudevent_or_push_body_is_400_and_quotes_nothing(lis_client, request_):
    response = _post(lis_client, request_)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert SECRET not in response.get_data(as_text=True)


def test_get_is_not_allowed(lis_client):
    assert lis_client.get("/").status_code == 405


def test_message_data_is_read_as_base64_of_bytes_not_text(lis_client):
    message_id = new_id()
    raw = tag(by_file()["elixirhl7__ADT-A01__1.hl7"].raw, message_id)  # UTF-8 with a non-ASCII character
    body = {"message": {"messageId": message_id, "data": base64.b64encode(raw).decode()}, "subscription": SUBSCRIPTION}
    assert lis_client.post("/", json=body).status_code == 200
    [row] = lis_db.messages(pubsub_message_id=message_id)
    assert row.raw == raw and row.status == "processed"


def test_a_structured_lis_cloudevent_with_base64_data(lis_client):
    run, event_id = uuid.uuid4().hex[:8], new_id()
    raw = tag(ORU.raw, run)
    event = {"specversion": "1.0", "type": "org.example.lis.message.v1", "source": "/lis/b64", "id": event_id,
             "datacontenttype": "application/hl7-v2", "data_base64": base64.b64encode(raw).decode()}
    response = lis_client.post("/", headers={"Content-Type": "application/cloudevents+json"}, data=json.dumps(event))
    assert response.status_code == 200
    rows = lis_db.messages(ce_source="/lis/b64", ce_id=event_id)
    check(ORU, rows, run)
    assert rows[0].raw == raw
    # The same CloudEvent (source, id) again: one row, counted twice.
    lis_client.post("/", headers={"Content-Type": "application/cloudevents+json"}, data=json.dumps(event))
    assert [r.delivery_count for r in lis_db.messages(ce_source="/lis/b64", ce_id=event_id)] == [2]


# --- JSON nested past the recursion limit, and the body limit -------------------------------------

DEEP = b'{"version": "1", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"


@pytest.mark.parametrize(("form", "reason"), [
    ("push data", "invalid_json"),
    ("binary lis event", "invalid_json"),
    ("binary eventarc", "invalid_pubsub_envelope"),
])
def test_deep_json_is_stored_as_quarantined_in_every_mode_that_carries_a_message(lis_client, form, reason):
    event_id = new_id()
    if form == "push data":
        request = push(DEEP, event_id)
    elif form == "binary lis event":
        request = lis_event(DEEP, "application/json", event_id=event_id)
    else:
        headers, _ = eventarc_binary(b"x", event_id)
        request = (headers, DEEP)
    response = _post(lis_client, request)
    assert response.status_code == 200, response.get_data(as_text=True)
    rows = (lis_db.messages(pubsub_message_id=event_id) if form == "push data"
            else lis_db.messages(ce_source=request[0]["ce-source"], ce_id=event_id))
    assert [(r.status, r.error_code, r.raw) for r in rows] == [("quarantined", reason, DEEP)]
    again = _post(lis_client, request)  # redelivered: a duplicate of the stored row
    assert again.status_code == 200 and again.get_json()["messages"][0]["status"] == "duplicate"


@pytest.mark.parametrize("body", [
    b'{"specversion": "1.0", "type": "t", "source": "s", "id": "i", "data": ' + DEEP + b"}",
    b'{"message": ' + DEEP + b"}",
])
def test_deep_json_with_nothing_readable_to_store_is_a_precise_400(lis_client, body):
    content_type = "application/cloudevents+json" if b"specversion" in body else "application/json"
    response = lis_client.post("/", data=body, headers={"Content-Type": content_type})
    assert response.status_code == 400 and response.mimetype == "application/problem+json"


def test_a_body_over_the_limit_is_413_and_stores_nothing(lis_client, monkeypatch):
    from shared.settings import reset_settings  # noqa: PLC0415

    monkeypatch.setenv("LIS_MAX_BODY_BYTES", "4096")
    reset_settings()
    try:
        message_id = new_id()
        headers, body = push(b"MSH|^~\\&|" + b"x" * 5000, message_id)
        response = lis_client.post("/", data=body, headers=headers)
        assert response.status_code == 413 and response.mimetype == "application/problem+json"
        assert "4096" in response.get_json()["detail"]
        # Without Content-Length (chunked): read up to the limit only, same answer.
        for size in (4097, len(body)):  # chunked, as gunicorn passes it on: no Content-Length
            chunked = lis_client.post("/", input_stream=io.BytesIO(body[:size]),
                                      headers={**headers, "Transfer-Encoding": "chunked"},
                                      environ_overrides={"wsgi.input_terminated": True})
            assert chunked.status_code == 413, size
        headers, body = lis_event(b"x" * 5000)
        assert lis_client.post("/", data=body, headers=headers).status_code == 413
        assert lis_db.messages(pubsub_message_id=message_id) == []
        ok_id = new_id()
        assert _post(lis_client, push(tag(ORU.raw, ok_id), ok_id)).status_code == 200
        headers, body = lis_event(b"MSH|" + b"y" * 4092)  # exactly the limit, chunked: read whole
        exact = lis_client.post("/", input_stream=io.BytesIO(body), headers={**headers, "Transfer-Encoding": "chunked"},
                                environ_overrides={"wsgi.input_terminated": True})
        assert exact.status_code == 200
        [row] = lis_db.messages(ce_source=headers["ce-source"], ce_id=headers["ce-id"])
        assert row.raw == body
    finally:
        monkeypatch.undo()
        reset_settings()
