"""The notify function end to end in one process: CloudEvent in (binary and structured), SES/SNS out
through moto's server on 127.0.0.1, rows in PostgreSQL. Sends are read back from /moto-api/data.json."""

from __future__ import annotations

import logging
import uuid

import pytest
from cloudevents.conversion import to_binary, to_structured

from shared.events import catalog
from shared.log import CloudLoggingFormatter
from tests.support.notify import (
    PORTAL,
    RESULT_VALUE,
    SENDER,
    TEST_NAME,
    create_final_result,
    create_patient,
    make_event,
    notification_rows,
    outbox_cloudevent,
)


def post(client, event, mode=to_binary):  # noqa: ANN001, ANN201
    headers, body = mode(event)
    return client.post("/", headers=headers, data=body)


@pytest.mark.parametrize("mode", [to_binary, to_structured])
def test_a_final_result_sends_one_email_and_one_sms_that_say_ready_without_the_result(notify_client, moto, mode):
    patient = create_patient()
    event_id = create_final_result(patient.id)

    event = outbox_cloudevent(event_id)
    response = post(notify_client, event, mode)

    assert response.status_code == 200
    [email] = moto.emails_to(patient.email)
    assert email["source"] == SENDER
    assert email["subject"] == "Your lab results are ready"
    assert "Your lab results are ready." in email["body"] and f'href="{PORTAL}"' in email["body"]
    [sms] = moto.sms_to(patient.phone)
    assert sms["message"] == f"Your lab results are ready. View them securely in the patient portal: {PORTAL}"
    for text in (email["subject"], email["body"], sms["message"]):
        assert RESULT_VALUE not in text and TEST_NAME not in text and patient.family not in text
    assert patient.given not in email["subject"] and patient.given not in sms["message"]
    rows = notification_rows(event_id=event_id)
    assert [(r.channel, r.status, r.provider, r.provider_message_id) for r in rows] == [
        ("email", "sent", "aws", email["id"]), ("sms", "sent", "aws", sms["message_id"])]
    assert {str(r.order_id) for r in rows} == {event.get_data()["order_id"]}


def test_an_opted_out_patient_gets_nothing_and_skipped_rows(notify_client, moto):
    patient = create_patient(email_opt_in=False, sms_opt_in=False)
    event_id = create_final_result(patient.id)
    assert post(notify_client, outbox_cloudevent(event_id)).status_code == 200
    assert moto.emails_to(patient.email) == [] and moto.sms_to(patient.phone) == []
    assert [(r.channel, r.status, r.reason) for r in notification_rows(event_id=event_id)] == [
        ("email", "skipped", "no_consent"), ("sms", "skipped", "no_consent")]


def test_the_same_event_delivered_three_times_sends_once(notify_client, moto):
    patient = create_patient()
    event = outbox_cloudevent(create_final_result(patient.id))
    statuses = [post(notify_client, event, mode).status_code for mode in (to_binary, to_structured, to_binary)]
    assert statuses == [200, 200, 200]
    assert len(moto.emails_to(patient.email)) == 1 and len(moto.sms_to(patient.phone)) == 1


def test_with_the_provider_down_the_event_is_retried_and_once_back_sent_exactly_once(notify_client, moto):
    patient = create_patient()
    event_id = create_final_result(patient.id)
    event = outbox_cloudevent(event_id)

    moto.stop()
    try:
        down = [post(notify_client, event) for _ in range(2)]
    finally:
        moto.start()
    assert [r.status_code for r in down] == [503, 503]
    assert down[0].get_json() == {"status": "retry", "reason": "provider_unavailable"}
    assert [(r.status, r.reason, r.attempts) for r in notification_rows(event_id=event_id)] == [
        ("pending", "EndpointConnectionError", 2)] * 2

    assert post(notify_client, event).status_code == 200
    assert post(notify_client, event).status_code == 200
    assert len(moto.emails_to(patient.email)) == 1 and len(moto.sms_to(patient.phone)) == 1
    assert [(r.status, r.attempts) for r in notification_rows(event_id=event_id)] == [("sent", 3)] * 2


def test_a_spanish_speaking_patient_gets_the_spanish_template(notify_client, moto):
    patient = create_patient(language="es")
    assert post(notify_client, outbox_cloudevent(create_final_result(patient.id))).status_code == 200
    [email] = moto.emails_to(patient.email)
    [sms] = moto.sms_to(patient.phone)
    assert email["subject"] == "Sus resultados de laboratorio están listos"
    assert 'lang="es"' in email["body"]
    assert sms["message"] == f"Ya puede consultar sus resultados de laboratorio en el portal del paciente: {PORTAL}"


def test_an_unverified_sender_fails_permanently_and_is_acknowledged(notify_client, moto, monkeypatch):
    from shared.settings import reset_settings

    patient = create_patient(sms_opt_in=False)
    event_id = create_final_result(patient.id)
    monkeypatch.setenv("NOTIFY_EMAIL_FROM", "unverified@lab.example.org")
    reset_settings()
    try:
        assert post(notify_client, outbox_cloudevent(event_id)).status_code == 200
    finally:
        monkeypatch.undo()
        reset_settings()
    assert moto.emails_to(patient.email) == []
    assert [(r.channel, r.status, r.reason) for r in notification_rows(event_id=event_id)] == [
        ("email", "failed", "MessageRejected"), ("sms", "skipped", "no_consent")]


def test_registration_of_an_opted_in_patient_sends_the_welcome(notify_client, moto):
    patient = create_patient(sms_opt_in=False)
    assert post(notify_client, outbox_cloudevent(patient.registered_event_id)).status_code == 200
    [email] = moto.emails_to(patient.email)
    assert email["subject"] != "Your lab results are ready" and patient.given not in email["subject"]
    assert [(r.kind, r.channel, r.status) for r in notification_rows(event_id=patient.registered_event_id)] == [
        ("welcome", "email", "sent"), ("welcome", "sms", "skipped")]


def test_a_preliminary_result_event_notifies_nobody(notify_client, moto):
    patient = create_patient()
    event = make_event(catalog.RESULT_AVAILABLE, {"patient_id": str(patient.id), "order_id": str(uuid.uuid4()),
                                                  "result_ids": [], "status": "preliminary"})
    assert post(notify_client, event).status_code == 200
    assert notification_rows(event_id=event["id"]) == [] and moto.emails_to(patient.email) == []


@pytest.mark.parametrize("data", [
    {"patient_id": "not-a-uuid", "order_id": str(uuid.uuid4()), "result_ids": [], "status": "final"},
    {"order_id": str(uuid.uuid4()), "result_ids": [], "status": "final"},
    {"patient_id": str(uuid.uuid4()), "order_id": str(uuid.uuid4()), "result_ids": [], "status": "final", "value": "7.4"},
])
def test_event_data_not_matching_the_catalog_is_rejected_with_400_and_records_nothing(notify_client, data):
    event = make_event(catalog.RESULT_AVAILABLE, data)
    response = post(notify_client, event)
    assert response.status_code == 400
    assert response.get_json() == {"status": "rejected", "reason": "invalid_event_data"}
    assert notification_rows(event_id=event["id"]) == []


def test_an_event_for_an_unknown_patient_is_rejected_with_400(notify_client):
    event = make_event(catalog.RESULT_AVAILABLE, {"patient_id": str(uuid.uuid4()), "order_id": str(uuid.uuid4()),
                                                  "result_ids": [], "status": "final"})
    response = post(notify_client, event)
    assert (response.status_code, response.get_json()) == (400, {"status": "rejected", "reason": "unknown_patient"})


def test_event_types_notify_does_not_handle_are_acknowledged(notify_client):
    patient = create_patient()
    event = make_event(catalog.PATIENT_UPDATED, {"patient_id": str(patient.id), "version": 2, "changed": ["email"]})
    assert post(notify_client, event).status_code == 200
    assert notification_rows(event_id=event["id"]) == []


def test_no_phi_reaches_the_logs(notify_client, moto, caplog):
    caplog.set_level(logging.DEBUG)
    patient = create_patient()
    event = outbox_cloudevent(create_final_result(patient.id))
    moto.stop()
    try:
        assert post(notify_client, event).status_code == 503
    finally:
        moto.start()
    assert post(notify_client, event).status_code == 200
    text = "\n".join(CloudLoggingFormatter().format(r) for r in caplog.records)
    assert "notification attempt recorded" in text  # the scenario did log
    for value in (patient.email, patient.phone, patient.given, patient.family, RESULT_VALUE, TEST_NAME):
        assert value not in text
