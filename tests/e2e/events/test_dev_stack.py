"""End to end on the `make dev` stack: API -> outbox -> router (Triggers) -> notify; HL7 on the
emulator's topic -> lis_consumer -> result.available -> notify; PingSource -> jobs' outbox sweep;
dead letters from Knative-style retries and from the Pub/Sub dead-letter topic, listed and re-driven.
Every emitted CloudEvent is checked against the CloudEvents schema and its catalog schema."""

import json
import os
import subprocess
import sys
import uuid

import pytest
import requests
import sqlalchemy as sa

from shared.db import unit_of_work
from shared.events import catalog
from shared.events.publishing.envelope import from_outbox_row, to_structured
from shared.models import DeadLetter, OutboxEvent, PatientIdentifier
from shared.models.lis import LisMessage
from shared.models.notifications import Notification
from tests.e2e.events.conftest import UNREACHABLE_TYPE
from tests.support.cloudevents_schema import validate_event
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


def outbox(subject, event_type):
    with unit_of_work() as uow:
        return uow.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.subject == str(subject),
                                                                OutboxEvent.type == event_type)).all()


def notifications(event_source, event_id):
    with unit_of_work() as uow:
        return uow.session.scalars(sa.select(Notification).where(Notification.event_source == event_source,
                                                                 Notification.event_id == str(event_id))).all()


def deliveries(stack, event_id):
    return [d for d in requests.get(f"{stack.router}/_dev/deliveries", timeout=5).json() if d["event_id"] == str(event_id)]


def oru(control_id, mrn, placer, filler):
    return "\r".join([
        f"MSH|^~\\&|LIS|EVTLAB|PMGT|HOSP|20260301120000||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
        f"PID|1||{mrn}^^^EVTLAB^MR||Tester^Eve||19800101|F",
        f"ORC|RE|{placer}|{filler}",
        f"OBR|1|{placer}|{filler}|2345-7^Glucose^LN|||20260301110000",
        "OBX|1|NM|2345-7^Glucose^LN||95|mg/dL|70-99|N|||F|||20260301115500",
    ]).encode() + b"\r"


def patient_with_identifier(value):
    with unit_of_work() as uow:
        return uow.session.scalar(sa.select(PatientIdentifier.patient_id).where(PatientIdentifier.value == value))


def test_a_registered_patient_reaches_notify_once(stack):
    resp = requests.post(f"{stack.url('api')}/patients", headers=stack.auth, timeout=10, json={
        "name": {"family": "Mensah", "given": ["Ama"]}, "birth_date": "1990-05-17",
        "email": f"ama.{uuid.uuid4().hex[:6]}@example.org", "communication": {"email": True, "sms": False}})
    assert resp.status_code == 201, resp.text
    patient_id = resp.json()["id"]
    [row] = wait_for(lambda: [r for r in outbox(patient_id, catalog.PATIENT_REGISTERED) if r.published_at], what="published")
    validate_event(to_structured(from_outbox_row(row)))
    wait_for(lambda: [n for n in notifications(row.source, row.id) if n.channel == "email" and n.status == "sent"],
             what="the welcome e-mail to go out")
    rows = notifications(row.source, row.id)
    assert sorted((n.kind, n.channel) for n in rows) == sorted({("welcome", n.channel) for n in rows})  # one per channel
    assert [(d["trigger"], d["outcome"]) for d in deliveries(stack, row.id)] == [("notify-patient-registered", "delivered")]


def test_an_hl7_result_published_to_the_emulator_reaches_notify(stack):
    tag = uuid.uuid4().hex[:10].upper()
    mrn = f"EVT{tag}"
    message_id = stack.emulator.publish("lis-inbound", oru(f"CTL{tag}", mrn, f"PL{tag}", f"FI{tag}"))
    patient_id = wait_for(lambda: patient_with_identifier(mrn), timeout=60, what="lis_consumer to store the patient")
    with unit_of_work() as uow:
        # By the unique control id: emulator message ids restart at 1 in every emulator of the session.
        [message] = uow.session.scalars(sa.select(LisMessage).where(LisMessage.control_id == f"CTL{tag}")).all()
    assert message.status == "processed" and message.pubsub_message_id == message_id
    assert message.ce_source == f"//pubsub.googleapis.com/projects/{stack.emulator.project}/topics/lis-inbound"
    [row] = wait_for(lambda: [r for r in outbox(patient_id, catalog.RESULT_AVAILABLE) if r.published_at], timeout=60,
                     what="result.available to be published")
    assert row.source == "/patient-mgt/lis-consumer" and row.data["status"] == "final"
    with unit_of_work() as uow:
        emitted = uow.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.subject == str(patient_id))).all()
    for event in emitted:
        validate_event(to_structured(from_outbox_row(event)))
    wait_for(lambda: notifications(row.source, row.id), timeout=60, what="notify to act on result.available")
    assert [(d["trigger"], d["outcome"]) for d in deliveries(stack, row.id)] == [("notify-result-available", "delivered")]


def test_lis_send_publishes_files_to_the_emulator_or_posts_them(stack, tmp_path):
    env = {**os.environ, "DATA_DIR": str(stack.data_dir), "NO_GCE_CHECK": "true"}
    files = []
    for n in range(2):
        tag = uuid.uuid4().hex[:10].upper()
        path = tmp_path / f"oru-{n}.hl7"
        path.write_bytes(oru(f"SND{tag}", f"SND{tag}", f"PL{tag}", f"FI{tag}"))
        files.append((path, f"SND{tag}"))
    cli = [sys.executable, "-m", "shared.cli", "lis", "send"]
    published = subprocess.run([*cli, str(files[0][0])], env=env, capture_output=True, text=True, timeout=60)
    assert published.returncode == 0, published.stderr
    assert "published to projects/" in published.stdout
    posted = subprocess.run([*cli, "--post", str(files[1][0])], env=env, capture_output=True, text=True, timeout=60)
    assert posted.returncode == 0 and "HTTP 200" in posted.stdout, posted.stdout + posted.stderr
    for _path, mrn in files:
        wait_for(lambda mrn=mrn: patient_with_identifier(mrn), timeout=60, what="lis_consumer to store the sent file")
    missing = subprocess.run([*cli, str(tmp_path / "missing.hl7")], env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_the_outbox_sweep_pingsource_publishes_an_event_whose_immediate_publish_failed(stack):
    from shared.events.outbox import emit
    from tests.support.event_samples import sample_data

    subject = uuid.uuid4()
    with unit_of_work() as uow:  # this test process has no sink: the immediate publish leaves the row
        event_id = emit(uow, catalog.PATIENT_UPDATED, subject, sample_data(catalog.PATIENT_UPDATED, subject))
    assert requests.post(f"{stack.router}/_dev/pingsources/outbox-sweep", timeout=5).status_code == 202
    [row] = wait_for(lambda: [r for r in outbox(subject, catalog.PATIENT_UPDATED) if r.published_at], timeout=60,
                     what="the jobs function's sweep to publish it")
    assert row.id == event_id
    ping = wait_for(lambda: [d for d in requests.get(f"{stack.router}/_dev/deliveries", timeout=5).json()
                             if d["type"] == "dev.knative.sources.ping" and d["source"].endswith("/pingsources/outbox-sweep")],
                    what="the tick's delivery")
    assert ping[-1]["status"] == 200
    wait_for(lambda: [d for d in deliveries(stack, event_id) if d["trigger"] == "jobs-patient-updated" and d["outcome"] == "delivered"],
             what="the swept event to reach its Trigger")


def test_an_undeliverable_broker_event_is_dead_lettered_listed_and_redriven(stack):
    event_id = str(uuid.uuid4())
    headers = {"ce-specversion": "1.0", "ce-id": event_id, "ce-source": "/tests/e2e", "ce-type": UNREACHABLE_TYPE,
               "Content-Type": "application/json"}
    assert requests.post(stack.router, data=b'{"n": 1}', headers=headers, timeout=5).status_code == 202

    def listed():
        resp = requests.get(f"{stack.url('api')}/events/dead-letters", headers=stack.auth, params={"type": UNREACHABLE_TYPE}, timeout=5)
        return [i for i in resp.json()["items"] if i["event"]["id"] == event_id]

    [item] = wait_for(listed, timeout=60, what="the dead letter to be stored")
    assert item["origin"] == "knative" and item["error"]["code"] == "500"
    assert item["error"]["destination"] == f"http://127.0.0.1:{stack.closed_port}/"
    assert "dispatch error" in item["error"]["response"]
    attempts = [d for d in deliveries(stack, event_id) if d["outcome"] == "failed"]
    assert attempts and attempts[0]["attempts"] == 4  # first try and 3 retries
    resp = requests.post(f"{stack.url('api')}/events/dead-letters/{item['id']}/redrive", headers=stack.auth, timeout=10)
    assert resp.status_code == 200, resp.text
    # re-published with the same id; its subscriber is still down, so it comes back as a dead letter
    wait_for(lambda: [i for i in listed() if i["dead_letter_count"] == 2], timeout=60, what="the second dead-lettering")
    with unit_of_work() as uow:
        [row] = uow.session.scalars(sa.select(DeadLetter).where(DeadLetter.event_id == event_id)).all()
    assert (row.redrive_count, row.redriven_at, json.loads(row.data)) == (1, None, {"n": 1})


def test_a_lis_message_nobody_can_take_goes_through_the_dead_letter_topic_and_back(stack, monkeypatch):
    from google.cloud import pubsub_v1

    emu, tag = stack.emulator, uuid.uuid4().hex[:8]
    topic, dlq = f"lis-{tag}", f"lis-{tag}-dead-letter"
    emu.create_topic(topic)
    emu.create_topic(dlq)
    emu.create_push_subscription(f"{topic}-down", topic, f"http://127.0.0.1:{stack.closed_port}/{emu.topic_path(topic)}",
                                 dead_letter_topic=dlq, max_delivery_attempts=5, minimum_backoff="0.1s", maximum_backoff="0.2s")
    emu.create_push_subscription(f"{dlq}-jobs", dlq, f"{stack.url('jobs')}/dead-letter/{emu.topic_path(dlq)}")
    payload = f"MSH|^~\\&|LIS|EVTLAB|PMGT|HOSP|20260301120000||ADT^A08|DLQ{tag}|P|2.5.1\r".encode()
    emu.publish(topic, payload, {"origin": "e2e"})

    def stored():
        with unit_of_work() as uow:
            return uow.session.scalars(sa.select(DeadLetter).where(DeadLetter.event_source == f"//pubsub.googleapis.com/{emu.topic_path(dlq)}")).all()

    [row] = wait_for(stored, timeout=90, what="the Pub/Sub dead letter to reach jobs")
    assert (row.origin, row.delivery_attempts, row.redrive_target) == ("pubsub", 5, emu.topic_path(topic))
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emu.host)
    subscriber = pubsub_v1.SubscriberClient()
    pull = subscriber.subscription_path(emu.project, f"{topic}-pull")
    subscriber.create_subscription(name=pull, topic=emu.topic_path(topic))
    resp = requests.post(f"{stack.url('api')}/events/dead-letters/{row.id}/redrive", headers=stack.auth, timeout=10)
    assert resp.status_code == 200, resp.text
    received = subscriber.pull(subscription=pull, max_messages=5, timeout=10).received_messages
    assert [(m.message.data, dict(m.message.attributes)) for m in received] == [(payload, {"origin": "e2e"})]
    subscriber.close()
