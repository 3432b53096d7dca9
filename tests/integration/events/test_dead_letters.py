"""Dead letters through the real jobs function (Knative deadLetterSink and Pub/Sub dead-letter topic
deliveries), listed and re-driven through the api's routes."""

import base64
import json
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from functions_framework import create_app

from shared.db import unit_of_work
from shared.events import catalog
from shared.models import AuditEntry, DeadLetter, ProcessedEvent
from tests.conftest import auth
from tests.support.sink import http_sink

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def jobs_client(database_url):
    return create_app(target="jobs", source=str(ROOT / "functions" / "jobs" / "main.py"), signature_type="cloudevent").test_client()


def knative_dead_letter(subject=None, event_id=None, code="503"):
    subject = subject or str(uuid.uuid4())
    body = base64.b64encode(b'{"status": "retry", "reason": "database_unavailable"}').decode()
    return CloudEvent({
        "specversion": "1.0", "id": event_id or str(uuid.uuid4()), "source": "/patient-mgt/api", "type": catalog.PATIENT_REGISTERED,
        "subject": subject, "time": "2026-03-01T12:00:00Z", "dataschema": catalog.dataschema_for(catalog.PATIENT_REGISTERED),
        "datacontenttype": "application/json", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "knativeerrorcode": code, "knativeerrordata": body, "knativeerrordest": "http://notify.patient-mgt.svc.cluster.local/",
    }, {"patient_id": subject, "version": 1, "origin": "api"})


def post_dead_letter(jobs_client, event, path="/dead-letter"):
    headers, body = to_binary(event)
    return jobs_client.post(path, headers=headers, data=body)


def stored(event_id):
    with unit_of_work() as uow:
        return list(uow.session.scalars(sa.select(DeadLetter).where(DeadLetter.event_id == event_id)))


def listed(client, token, **query):
    resp = client.get("/events/dead-letters", headers=auth(token), query_string={"limit": 200, **query})
    assert resp.status_code == 200
    return resp.get_json()


def test_a_knative_dead_letter_is_stored_once_and_listed_for_admins(jobs_client, client, admin_token):
    event = knative_dead_letter()
    for _ in range(2):  # the dead-letter sink is at-least-once too
        assert post_dead_letter(jobs_client, event).status_code == 200
    [row] = stored(event["id"])
    assert (row.origin, row.error_code, row.event_subject, row.redrive_target) == ("knative", "503", event["subject"], "sink")
    assert "knativeerrorcode" not in row.attributes and row.attributes["traceparent"].startswith("00-")
    # the jobs consumer did not claim it: a later re-drive addressed to jobs must not look like a duplicate
    with unit_of_work() as uow:
        assert uow.session.scalar(sa.select(ProcessedEvent).where(ProcessedEvent.event_id == event["id"])) is None
    [item] = [i for i in listed(client, admin_token)["items"] if i["event"]["id"] == event["id"]]
    assert item["error"] == {"code": "503", "data": event["knativeerrordata"],
                             "response": '{"status": "retry", "reason": "database_unavailable"}',
                             "destination": "http://notify.patient-mgt.svc.cluster.local/"}
    assert item["data"] == {"patient_id": event["subject"], "version": 1, "origin": "api"} and item["redrivable"] is True
    with unit_of_work() as uow:
        audits = uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "events.dead_letters.list",
                                                                 AuditEntry.patient_ids.contains([uuid.UUID(event["subject"])]))).all()
    assert audits


def test_knative_error_extensions_mark_a_dead_letter_on_any_path(jobs_client):
    event = knative_dead_letter()
    assert post_dead_letter(jobs_client, event, path="/").status_code == 200
    assert len(stored(event["id"])) == 1


def test_redrive_republishes_the_same_event_to_the_sink_once(jobs_client, client, admin_token, use_sink):
    event = knative_dead_letter()
    post_dead_letter(jobs_client, event)
    [row] = stored(event["id"])
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        resp = client.post(f"/events/dead-letters/{row.id}/redrive", headers=auth(admin_token))
        again = client.post(f"/events/dead-letters/{row.id}/redrive", headers=auth(admin_token))
    assert resp.status_code == 200 and resp.get_json()["redrive_count"] == 1 and resp.get_json()["redriven_at"]
    assert again.status_code == 409 and again.headers["Content-Type"].startswith("application/problem+json")
    [sent] = sink.requests
    assert sent.header("ce-id") == event["id"] and sent.header("ce-source") == event["source"]
    assert sent.header("ce-subject") == event["subject"] and sent.header("ce-traceparent") == event["traceparent"]
    assert not [h for h in sent.headers if h.lower().startswith("ce-knative")]
    assert json.loads(sent.body) == event.data
    assert [i["event"]["id"] for i in listed(client, admin_token, status="redriven")["items"]].count(event["id"]) == 1
    assert event["id"] not in [i["event"]["id"] for i in listed(client, admin_token)["items"]]
    with unit_of_work() as uow:
        audit = uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "events.dead_letter.redrive",
                                                                AuditEntry.patient_ids.contains([uuid.UUID(event["subject"])]))).all()
    assert [a.outcome for a in audit] == ["success"]
    assert audit[0].details["dead_letter_id"] == str(row.id)


def test_an_event_dead_lettered_again_after_a_redrive_is_pending_again(jobs_client, client, admin_token, use_sink):
    event = knative_dead_letter()
    post_dead_letter(jobs_client, event)
    [row] = stored(event["id"])
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        assert client.post(f"/events/dead-letters/{row.id}/redrive", headers=auth(admin_token)).status_code == 200
    post_dead_letter(jobs_client, knative_dead_letter(subject=event["subject"], event_id=event["id"], code="500"))
    [row] = stored(event["id"])
    assert (row.dead_letter_count, row.redriven_at, row.redrive_count, row.error_code) == (2, None, 1, "500")


def test_a_redrive_the_sink_refuses_changes_nothing(jobs_client, client, admin_token, use_sink):
    event = knative_dead_letter()
    post_dead_letter(jobs_client, event)
    [row] = stored(event["id"])
    with http_sink(lambda _r: 503) as sink:
        use_sink(k_sink=sink.url)
        resp = client.post(f"/events/dead-letters/{row.id}/redrive", headers=auth(admin_token))
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert len(sink.requests) == 1
    [after] = stored(event["id"])
    assert after.redriven_at is None and after.redrive_count == 0


def test_a_redrive_without_a_sink_is_409_and_an_unknown_dead_letter_404(client, admin_token, jobs_client, use_sink):
    event = knative_dead_letter()
    post_dead_letter(jobs_client, event)
    [row] = stored(event["id"])
    assert client.post(f"/events/dead-letters/{row.id}/redrive", headers=auth(admin_token)).status_code == 409
    assert client.post(f"/events/dead-letters/{uuid.uuid4()}/redrive", headers=auth(admin_token)).status_code == 404
    assert stored(event["id"])[0].redriven_at is None


def test_bad_list_queries_are_precise_422_problems(client, admin_token):
    for query in ({"status": "lost"}, {"limit": 0}, {"limit": 201}, {"before": "x"}, {"colour": "red"}):
        resp = client.get("/events/dead-letters", headers=auth(admin_token), query_string=query)
        assert resp.status_code == 422 and resp.get_json()["errors"][0]["in"] == "query", query


def pubsub_push_body(topic_path, data, attributes):
    return {"subscription": "projects/p/subscriptions/dlq-jobs", "message": {
        "data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": str(time.time_ns()),
        "publishTime": "2026-03-01T12:00:00.000Z"}}


def test_a_pubsub_dead_letter_is_stored_without_exposing_its_payload_and_redriven_to_its_topic(jobs_client, client, admin_token, emulator):
    from google.cloud import pubsub_v1

    emulator.create_topic("lis-inbound")
    subscriber = pubsub_v1.SubscriberClient()
    sub_path = subscriber.subscription_path(emulator.project, f"redrive-{uuid.uuid4().hex[:8]}")
    subscriber.create_subscription(name=sub_path, topic=emulator.topic_path("lis-inbound"))
    hl7 = b"MSH|^~\\&|LAB|HOSP||DEST|20260101||ORU^R01|DLQ-1|P|2.5.1\rPID|1||MRN-DLQ||DOE^JANE\r"
    attributes = {"source": "lis-gateway", "CloudPubSubDeadLetterSourceDeliveryCount": "5",
                  "CloudPubSubDeadLetterSourceSubscription": "lis-inbound-lis-consumer"}
    dlq = f"projects/{emulator.project}/topics/lis-inbound-dead-letter"
    body = pubsub_push_body(dlq, hl7, attributes)
    resp = jobs_client.post(f"/dead-letter/{dlq}", json=body)
    assert resp.status_code == 200
    [row] = stored(body["message"]["messageId"])
    assert (row.origin, row.delivery_attempts, row.redrive_target) == ("pubsub", 5, emulator.topic_path("lis-inbound"))
    [item] = [i for i in listed(client, admin_token, type="google.cloud.pubsub.topic.v1.messagePublished")["items"] if i["id"] == str(row.id)]
    assert item["data"] is None and item["data_bytes"] > len(hl7) and "DOE" not in json.dumps(item)
    redrive = client.post(f"/events/dead-letters/{row.id}/redrive", headers=auth(admin_token))
    assert redrive.status_code == 200
    pulled = subscriber.pull(subscription=sub_path, max_messages=10, timeout=10)
    [message] = [m.message for m in pulled.received_messages]
    assert message.data == hl7 and dict(message.attributes) == {"source": "lis-gateway"}
    subscriber.delete_subscription(subscription=sub_path)
    subscriber.close()


def test_a_pubsub_dead_letter_from_an_unknown_topic_cannot_be_redriven(jobs_client, client, admin_token):
    body = pubsub_push_body("", b"x", {})
    assert jobs_client.post("/dead-letter", json=body).status_code == 200
    [row] = stored(body["message"]["messageId"])
    assert row.redrive_target is None
    [item] = [i for i in listed(client, admin_token)["items"] if i["id"] == str(row.id)]
    assert item["redrivable"] is False
    assert client.post(f"/events/dead-letters/{row.id}/redrive", headers=auth(admin_token)).status_code == 409
