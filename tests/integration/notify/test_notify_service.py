"""The notify use case against real PostgreSQL, with the in-memory provider (our port) and an injected clock.

Covers the exactly-once rules: one row per (event, kind, channel) committed as ``sending`` before the
provider call, redeliveries, concurrent copies, transient and permanent provider errors, and a
process that died during the provider call.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from shared.consumer import RetryLater
from shared.db import unit_of_work
from shared.models import AuditEntry, Patient
from shared.notify.policy import OUTCOME_UNKNOWN
from shared.notify.providers import PermanentProviderError, TransientProviderError
from shared.notify.providers.fake import FakeProvider
from shared.notify.render import TemplateError
from shared.notify.service import NotifyRequest, UnknownPatient, notify_for_event
from shared.settings import reset_settings
from tests.support.notify import RESULT_VALUE, TEST_NAME, create_final_result, create_patient, notification_rows

pytestmark = pytest.mark.integration

NOON_UTC = datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc)


def clock(instant: datetime = NOON_UTC):
    return lambda: instant


def results_request(patient_id: uuid.UUID, event_id: uuid.UUID | str) -> NotifyRequest:
    return NotifyRequest(kind="results_ready", patient_id=patient_id, event_source="/patient-mgt/lis-consumer",
                         event_id=str(event_id), event_type="org.patientmgt.result.available.v1")


def sent_to(provider: FakeProvider, *addresses: str | None) -> list:
    return [m for m in provider.sent if m.to in addresses]


def test_an_opted_in_patient_gets_one_email_and_one_sms_without_the_result(database_url):
    patient = create_patient()
    event_id = create_final_result(patient.id)
    provider = FakeProvider()

    counts = notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock())

    assert counts == {"sent": 2}
    email, sms = sorted(sent_to(provider, patient.email, patient.phone), key=lambda m: m.channel)
    assert (email.channel, email.to, sms.channel, sms.to) == ("email", patient.email, "sms", patient.phone)
    assert "results are ready" in email.rendered.text and "results are ready" in sms.rendered.text
    for text in (email.rendered.subject, email.rendered.text, email.rendered.html, sms.rendered.text):
        assert RESULT_VALUE not in text and TEST_NAME not in text
    assert patient.given not in (email.rendered.subject or "") and patient.given not in sms.rendered.text
    rows = notification_rows(event_id=event_id)
    assert [(r.channel, r.status, r.provider_message_id, r.attempts, r.language) for r in rows] == [
        ("email", "sent", email.message_id, 1, "en"), ("sms", "sent", sms.message_id, 1, "en")]
    assert all(r.sent_at == NOON_UTC and r.patient_id == patient.id for r in rows)
    with unit_of_work() as uow:
        actions = uow.session.execute(
            sa.select(AuditEntry.action, AuditEntry.principal, AuditEntry.outcome)
            .where(AuditEntry.patient_ids.contains([patient.id]), AuditEntry.principal == "system:notify")
        ).all()
    assert sorted(actions) == [("notification.send", "system:notify", "sent")] * 2 + [("patient.read", "system:notify", "success")]


def test_an_opted_out_patient_gets_nothing_and_skipped_rows(database_url):
    patient = create_patient(email_opt_in=False, sms_opt_in=False)
    event_id = create_final_result(patient.id)
    provider = FakeProvider()

    assert notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock()) == {"skipped": 2}
    assert provider.sent == []
    assert [(r.channel, r.status, r.reason) for r in notification_rows(event_id=event_id)] == [
        ("email", "skipped", "no_consent"), ("sms", "skipped", "no_consent")]


def test_consent_without_a_phone_number_is_skipped_as_no_address(database_url):
    patient = create_patient(with_phone=False)
    event_id = create_final_result(patient.id)
    provider = FakeProvider()
    notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock())
    assert [(r.channel, r.status, r.reason) for r in notification_rows(event_id=event_id)] == [
        ("email", "sent", None), ("sms", "skipped", "no_address")]
    assert [m.channel for m in provider.sent] == ["email"]


def test_the_same_event_delivered_three_times_sends_once(database_url):
    patient = create_patient()
    event_id = create_final_result(patient.id)
    provider = FakeProvider()
    outcomes = [notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock())
                for _ in range(3)]
    assert outcomes == [{"sent": 2}, {"duplicate": 2}, {"duplicate": 2}]
    assert len(sent_to(provider, patient.email, patient.phone)) == 2
    with unit_of_work() as uow:  # a duplicate does not even read the patient again
        reads = uow.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
            AuditEntry.patient_ids.contains([patient.id]), AuditEntry.action == "patient.read",
            AuditEntry.principal == "system:notify"))
    assert reads == 1


def test_a_transient_provider_error_is_retried_and_then_sent_exactly_once(database_url):
    patient = create_patient()
    event_id = create_final_result(patient.id)
    provider = FakeProvider()
    provider.fail_next(TransientProviderError("EndpointConnectionError"), times=2)

    with pytest.raises(RetryLater) as info:
        notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock())
    assert info.value.reason == "provider_unavailable"
    rows = notification_rows(event_id=event_id)
    assert [(r.status, r.reason, r.attempts, r.send_after) for r in rows] == [
        ("pending", "EndpointConnectionError", 1, NOON_UTC + timedelta(minutes=1))] * 2
    assert provider.sent == []

    assert notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock()) == {"sent": 2}
    assert notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock()) == {"duplicate": 2}
    assert len(provider.sent) == 2
    assert [(r.status, r.reason, r.attempts) for r in notification_rows(event_id=event_id)] == [("sent", None, 2)] * 2


def test_a_permanent_provider_error_is_recorded_as_failed_and_acknowledged(database_url):
    patient = create_patient(sms_opt_in=False)
    event_id = create_final_result(patient.id)
    provider = FakeProvider()
    provider.fail_next(PermanentProviderError("MessageRejected"))

    assert notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock()) == {
        "failed": 1, "skipped": 1}
    assert notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock()) == {"duplicate": 2}
    assert provider.sent == []
    assert [(r.channel, r.status, r.reason) for r in notification_rows(event_id=event_id)] == [
        ("email", "failed", "MessageRejected"), ("sms", "skipped", "no_consent")]


def test_a_spanish_speaking_patient_gets_the_spanish_templates(database_url):
    patient = create_patient(language="es-MX")
    event_id = create_final_result(patient.id)
    provider = FakeProvider()
    notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock())
    email, sms = sorted(provider.sent, key=lambda m: m.channel)
    assert email.rendered.subject == "Sus resultados de laboratorio están listos"
    assert sms.rendered.text.startswith("Ya puede consultar sus resultados")
    assert [r.language for r in notification_rows(event_id=event_id)] == ["es", "es"]


class _Crash(BaseException):
    """Stands for the process dying inside the provider call (not an Exception: nothing catches it)."""


class _CrashingProvider(FakeProvider):
    def send_email(self, to, rendered, *, from_address):
        super().send_email(to, rendered, from_address=from_address)  # accepted by the provider...
        raise _Crash()  # ...and the process dies before recording it


def test_a_claim_left_by_a_dead_process_is_never_resent_and_becomes_outcome_unknown(database_url):
    patient = create_patient(sms_opt_in=False)
    event_id = create_final_result(patient.id)
    crashing = _CrashingProvider()
    with pytest.raises(_Crash):
        notify_for_event(results_request(patient.id, event_id), provider=crashing, clock=clock())
    [email, _sms] = notification_rows(event_id=event_id)
    assert (email.status, email.claimed_at) == ("sending", NOON_UTC)

    provider = FakeProvider()
    # Within the lease the claim may belong to a delivery still in progress: retry later, send nothing.
    with pytest.raises(RetryLater) as info:
        notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock(NOON_UTC + timedelta(minutes=1)))
    assert info.value.reason == "notification_in_flight"
    # After the lease: recorded as failed/outcome_unknown, acknowledged, still nothing sent again.
    later = clock(NOON_UTC + timedelta(minutes=6))
    assert notify_for_event(results_request(patient.id, event_id), provider=provider, clock=later) == {
        "outcome_unknown": 1, "duplicate": 2}
    assert provider.sent == [] and len(crashing.sent) == 1
    assert [(r.channel, r.status, r.reason) for r in notification_rows(event_id=event_id)] == [
        ("email", "failed", OUTCOME_UNKNOWN), ("sms", "skipped", "no_consent")]


class _BlockingProvider(FakeProvider):
    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def send_email(self, to, rendered, *, from_address):
        self.entered.set()
        assert self.release.wait(30)
        return super().send_email(to, rendered, from_address=from_address)


def test_two_copies_delivered_at_once_send_once(database_url):
    patient = create_patient(sms_opt_in=False)
    event_id = create_final_result(patient.id)
    provider = _BlockingProvider()
    first: dict = {}

    def deliver_first() -> None:
        try:
            first["counts"] = notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock())
        except BaseException as exc:  # noqa: BLE001 — asserted below
            first["error"] = exc

    thread = threading.Thread(target=deliver_first)
    thread.start()
    assert provider.entered.wait(30)
    # The second copy arrives while the first is inside the provider call.
    with pytest.raises(RetryLater) as info:
        notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock())
    assert info.value.reason == "notification_in_flight"
    provider.release.set()
    thread.join(30)
    assert first == {"counts": {"sent": 1, "skipped": 1}}
    # The redelivery of the second copy then finds the outcome.
    assert notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock()) == {"duplicate": 2}
    assert len(provider.sent) == 1


def test_copies_racing_to_insert_the_rows_send_once(database_url):
    patient = create_patient()
    event_id = create_final_result(patient.id)
    provider = FakeProvider()
    barrier = threading.Barrier(4)
    results: list = []

    def deliver() -> None:
        barrier.wait(10)
        try:
            results.append(notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock()))
        except RetryLater as exc:
            results.append(exc.reason)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 4
    assert len(sent_to(provider, patient.email, patient.phone)) == 2
    assert [r.status for r in notification_rows(event_id=event_id)] == ["sent", "sent"]


def test_results_for_a_merged_patient_go_to_the_surviving_record(database_url):
    source, target = create_patient(), create_patient()
    event_id = create_final_result(source.id)
    with unit_of_work() as uow:
        uow.session.execute(sa.update(Patient).where(Patient.id == source.id).values(status="merged", merged_into=target.id))
    provider = FakeProvider()
    notify_for_event(results_request(source.id, event_id), provider=provider, clock=clock())
    assert sorted(m.to for m in provider.sent) == sorted([target.email, target.phone])
    assert {r.patient_id for r in notification_rows(event_id=event_id)} == {target.id}


def test_an_inactive_patient_is_skipped(database_url):
    patient = create_patient()
    event_id = create_final_result(patient.id)
    with unit_of_work() as uow:
        uow.session.execute(sa.update(Patient).where(Patient.id == patient.id).values(status="inactive"))
    provider = FakeProvider()
    assert notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock()) == {"skipped": 2}
    assert {r.reason for r in notification_rows(event_id=event_id)} == {"patient_inactive"}
    assert provider.sent == []


def test_a_welcome_to_a_merged_patient_is_skipped(database_url):
    source, target = create_patient(), create_patient()
    with unit_of_work() as uow:
        uow.session.execute(sa.update(Patient).where(Patient.id == source.id).values(status="merged", merged_into=target.id))
    provider = FakeProvider()
    request = NotifyRequest(kind="welcome", patient_id=source.id, event_source="/patient-mgt/api",
                            event_id=str(source.registered_event_id))
    assert notify_for_event(request, provider=provider, clock=clock()) == {"skipped": 2}
    assert {(r.patient_id, r.reason) for r in notification_rows(event_id=source.registered_event_id)} == {
        (source.id, "patient_merged")}


def test_an_unknown_patient_is_rejected_and_nothing_is_recorded(database_url):
    event_id = uuid.uuid4()
    with pytest.raises(UnknownPatient):
        notify_for_event(results_request(uuid.uuid4(), event_id), provider=FakeProvider(), clock=clock())
    assert notification_rows(event_id=event_id) == []


def test_a_broken_template_configuration_records_nothing_and_sends_nothing(database_url, monkeypatch):
    patient = create_patient()
    event_id = create_final_result(patient.id)
    provider = FakeProvider()
    monkeypatch.setenv("PORTAL_URL", "ftp://portal.example.org")  # not an http(s) URL: refused by the renderer
    reset_settings()
    try:
        with pytest.raises(TemplateError):
            notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock())
    finally:
        monkeypatch.delenv("PORTAL_URL")
        reset_settings()
    assert notification_rows(event_id=event_id) == [] and provider.sent == []
    # Once the configuration is fixed, the redelivery sends.
    assert notify_for_event(results_request(patient.id, event_id), provider=provider, clock=clock()) == {"sent": 2}
