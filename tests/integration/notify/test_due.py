"""send_due_notifications: SMS deferred by quiet hours, reminders queued by jobs, pending retries.

The clock is injected: "23:30 in Madrid" and "the next morning" are instants passed in, never waited for.
Other tests' due rows may be processed too (the job sends whatever is due), so assertions look only at
this test's rows and at messages to this test's addresses.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import Notification, Patient
from shared.notify.delivery import MAX_ATTEMPTS
from shared.notify.due import send_due_notifications
from shared.notify.providers import TransientProviderError
from shared.notify.providers.fake import FakeProvider
from shared.notify.service import NotifyRequest, notify_for_event, queue_notification
from tests.support.notify import create_final_result, create_patient, notification_rows

pytestmark = pytest.mark.integration

# 23:30 in Madrid (CEST, UTC+2) and 08:00 there the next morning.
NIGHT = datetime(2026, 6, 10, 21, 30, tzinfo=timezone.utc)
MORNING = datetime(2026, 6, 11, 6, 0, tzinfo=timezone.utc)


def clock(instant: datetime):
    return lambda: instant


def request(patient_id: uuid.UUID, event_id: uuid.UUID) -> NotifyRequest:
    return NotifyRequest(kind="results_ready", patient_id=patient_id, event_source="/patient-mgt/lis-consumer",
                         event_id=str(event_id))


def mine(provider: FakeProvider, *addresses: str | None) -> list:
    return [m for m in provider.sent if m.to in addresses]


def test_an_sms_at_night_waits_for_the_morning_while_the_email_goes_now(database_url):
    patient = create_patient(timezone_name="Europe/Madrid")
    event_id = create_final_result(patient.id)
    provider = FakeProvider()

    assert notify_for_event(request(patient.id, event_id), provider=provider, clock=clock(NIGHT)) == {
        "sent": 1, "scheduled": 1}
    assert [m.channel for m in mine(provider, patient.email, patient.phone)] == ["email"]
    email, sms = notification_rows(event_id=event_id)
    assert (sms.status, sms.reason, sms.send_after) == ("scheduled", "quiet_hours", MORNING)
    # A redelivery during the night changes nothing.
    assert notify_for_event(request(patient.id, event_id), provider=provider, clock=clock(NIGHT)) == {"duplicate": 2}

    send_due_notifications(30, now=clock(MORNING - timedelta(minutes=1)), provider=provider)
    assert [m.channel for m in mine(provider, patient.email, patient.phone)] == ["email"]

    send_due_notifications(30, now=clock(MORNING), provider=provider)
    send_due_notifications(30, now=clock(MORNING + timedelta(hours=1)), provider=provider)
    assert sorted(m.channel for m in mine(provider, patient.email, patient.phone)) == ["email", "sms"]
    [sms] = [r for r in notification_rows(event_id=event_id) if r.channel == "sms"]
    assert (sms.status, sms.sent_at, sms.attempts, sms.reason) == ("sent", MORNING, 1, None)


def test_consent_withdrawn_overnight_is_respected_in_the_morning(database_url):
    patient = create_patient(timezone_name="Europe/Madrid")
    event_id = create_final_result(patient.id)
    provider = FakeProvider()
    notify_for_event(request(patient.id, event_id), provider=provider, clock=clock(NIGHT))
    with unit_of_work() as uow:
        uow.session.execute(sa.update(Patient).where(Patient.id == patient.id).values(comm_sms=False))

    send_due_notifications(30, now=clock(MORNING), provider=provider)
    assert mine(provider, patient.phone) == []
    [sms] = [r for r in notification_rows(event_id=event_id) if r.channel == "sms"]
    assert (sms.status, sms.reason) == ("skipped", "no_consent")


def test_a_due_sms_still_inside_quiet_hours_is_rescheduled_not_sent(database_url):
    patient = create_patient(timezone_name="Europe/Madrid")
    with unit_of_work() as uow:
        queue_notification(uow, patient_id=patient.id, kind="reminder", source="/tests/jobs", key=f"r-{uuid.uuid4()}",
                           send_after=NIGHT - timedelta(minutes=10), channels=("sms",))
    provider = FakeProvider()
    send_due_notifications(30, now=clock(NIGHT), provider=provider)
    assert mine(provider, patient.phone) == []
    [row] = notification_rows(patient_id=patient.id)
    assert (row.status, row.reason, row.send_after) == ("scheduled", "quiet_hours", MORNING)


def test_a_reminder_queued_by_jobs_is_sent_once_when_due(database_url):
    patient = create_patient(language="es")
    key = f"reminder-{uuid.uuid4()}"
    due = datetime(2026, 6, 12, 10, 0, tzinfo=timezone.utc)
    with unit_of_work() as uow:
        assert queue_notification(uow, patient_id=patient.id, kind="reminder", source="/tests/jobs", key=key, send_after=due) == 2
    with unit_of_work() as uow:  # queueing the same key again queues nothing
        assert queue_notification(uow, patient_id=patient.id, kind="reminder", source="/tests/jobs", key=key, send_after=due) == 0

    provider = FakeProvider()
    send_due_notifications(30, now=clock(due - timedelta(seconds=1)), provider=provider)
    assert mine(provider, patient.email, patient.phone) == []
    send_due_notifications(30, now=clock(due), provider=provider)
    send_due_notifications(30, now=clock(due + timedelta(hours=2)), provider=provider)
    messages = mine(provider, patient.email, patient.phone)
    assert sorted(m.channel for m in messages) == ["email", "sms"]
    assert {m.rendered.language for m in messages} == {"es"}
    assert [(r.status, r.language) for r in notification_rows(event_id=key)] == [("sent", "es")] * 2


def test_a_pending_row_is_retried_by_the_job_after_its_backoff_and_the_redelivery_then_sends_nothing(database_url):
    patient = create_patient()
    event_id = create_final_result(patient.id)
    noon = datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc)
    provider = FakeProvider()
    provider.fail_next(TransientProviderError("ServiceUnavailable"), times=2)
    with pytest.raises(Exception, match="provider_unavailable"):
        notify_for_event(request(patient.id, event_id), provider=provider, clock=clock(noon))

    send_due_notifications(30, now=clock(noon + timedelta(seconds=30)), provider=provider)  # backoff not over
    assert mine(provider, patient.email, patient.phone) == []
    send_due_notifications(30, now=clock(noon + timedelta(minutes=1)), provider=provider)
    assert len(mine(provider, patient.email, patient.phone)) == 2
    assert notify_for_event(request(patient.id, event_id), provider=provider, clock=clock(noon + timedelta(minutes=2))) == {
        "duplicate": 2}
    assert len(mine(provider, patient.email, patient.phone)) == 2


def test_a_transient_failure_after_the_last_attempt_fails_the_row(database_url):
    patient = create_patient(sms_opt_in=False)
    event_id = create_final_result(patient.id)
    noon = datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc)
    provider = FakeProvider()
    provider.fail_next(TransientProviderError("Throttling"))
    with pytest.raises(Exception, match="provider_unavailable"):
        notify_for_event(request(patient.id, event_id), provider=provider, clock=clock(noon))
    with unit_of_work() as uow:
        uow.session.execute(sa.update(Notification).where(Notification.event_id == str(event_id), Notification.channel == "email")
                            .values(attempts=MAX_ATTEMPTS - 1))
    provider.fail_next(TransientProviderError("Throttling"))
    send_due_notifications(30, now=clock(noon + timedelta(hours=1)), provider=provider)
    [email, _] = notification_rows(event_id=event_id)
    assert (email.status, email.reason, email.attempts) == ("failed", "retries_exhausted", MAX_ATTEMPTS)
    assert mine(provider, patient.email) == []


def test_the_job_expires_claims_older_than_the_lease_without_sending(database_url):
    patient = create_patient(sms_opt_in=False)
    noon = datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc)
    nid = uuid.uuid4()
    with unit_of_work() as uow:
        uow.session.add(Notification(id=nid, patient_id=patient.id, kind="results_ready", channel="email",
                                     event_source="/tests", event_id=str(uuid.uuid4()), status="sending",
                                     claimed_at=noon, attempts=1, created_at=noon, updated_at=noon))
    provider = FakeProvider()
    send_due_notifications(30, now=clock(noon + timedelta(minutes=4)), provider=provider)
    assert [(r.status, r.reason) for r in notification_rows(patient_id=patient.id)] == [("sending", None)]
    counts = send_due_notifications(30, now=clock(noon + timedelta(minutes=6)), provider=provider)
    assert counts.get("outcome_unknown", 0) >= 1
    assert [(r.status, r.reason) for r in notification_rows(patient_id=patient.id)] == [("failed", "outcome_unknown")]
    assert mine(provider, patient.email) == []


def test_concurrent_job_runs_send_each_due_row_once(database_url):
    patients = [create_patient() for _ in range(4)]
    due = datetime(2026, 6, 13, 12, 0, tzinfo=timezone.utc)
    with unit_of_work() as uow:
        for p in patients:
            queue_notification(uow, patient_id=p.id, kind="reminder", source="/tests/jobs", key=f"k-{uuid.uuid4()}", send_after=due)
    provider = FakeProvider()
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait(10)
        send_due_notifications(30, now=clock(due), provider=provider)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    addresses = [a for p in patients for a in (p.email, p.phone)]
    sent = mine(provider, *addresses)
    assert sorted(m.to for m in sent) == sorted(addresses)  # every one, each exactly once
    for p in patients:
        assert [r.status for r in notification_rows(patient_id=p.id)] == ["sent", "sent"]
