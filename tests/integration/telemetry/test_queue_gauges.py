"""Queue-depth gauges read PostgreSQL: each matches the rows it describes, now."""

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from shared.auth import SYSTEM_CLI
from shared.db import unit_of_work
from shared.models import DeadLetter, LisMessage, Notification, OutboxEvent
from shared.schemas.patients import PatientCreate
from shared.services.patients import register_patient
from shared.telemetry import queues
from tests.support.telemetry import capture

GAUGES = {
    "outbox_unpublished": "patient_mgt.outbox.unpublished",
    "outbox_oldest_age": "patient_mgt.outbox.oldest_age",
    "notifications_due": "patient_mgt.notifications.due",
    "lis_quarantined": "patient_mgt.lis.quarantined",
    "dead_letters_pending": "patient_mgt.dead_letters.pending",
    "duplicate_flags_open": "patient_mgt.duplicates.open",
}


@pytest.fixture()
def cap(database_url):
    yield from capture(queue_gauges=True, traces=False)


def _gauges(cap):
    queues.forget()  # a fresh query, not the snapshot of an earlier collection
    data = cap.collect()
    values = {}
    for key, name in GAUGES.items():
        [point] = cap.points(name, data)
        values[key] = point.value
    return values


def _database_truth():
    """The same depths, counted by the test's own SQL."""
    with unit_of_work() as uow:
        row = uow.session.execute(sa.text("""
            SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS outbox_unpublished,
                   (SELECT extract(epoch FROM now() - min(created_at)) FROM outbox WHERE published_at IS NULL) AS oldest,
                   (SELECT count(*) FROM notifications WHERE status IN ('scheduled', 'pending') AND send_after <= now()) AS due,
                   (SELECT count(*) FROM lis_messages WHERE status = 'quarantined') AS quarantined,
                   (SELECT count(*) FROM dead_letters WHERE redriven_at IS NULL) AS dead_letters
        """)).mappings().one()
    return row


def _patient():
    body = {"name": {"family": "Gauge", "given": ["Test"]}, "birth_date": "1970-01-01"}
    with unit_of_work() as uow:
        return register_patient(uow, SYSTEM_CLI, PatientCreate.model_validate_json(json.dumps(body))).id


def _notification(patient_id, status, send_after, **extra):
    return Notification(patient_id=patient_id, kind="reminder", channel="sms", event_source="/tests/telemetry",
                        event_id=uuid.uuid4().hex, status=status, send_after=send_after, **extra)


def _lis_message(status):
    raw = uuid.uuid4().bytes
    return LisMessage(transport="cloudevent", ce_source="/tests/telemetry", ce_id=uuid.uuid4().hex, content_format="hl7v2",
                      raw=raw, raw_sha256=uuid.uuid4().hex * 2, raw_size=len(raw), status=status,
                      error_code="missing_msh" if status == "quarantined" else None)


def _dead_letter(redriven_at=None):
    event_id = uuid.uuid4().hex
    return DeadLetter(origin="knative", event_id=event_id, event_source="/tests/telemetry", event_type="org.patientmgt.test.v1",
                      attributes={"id": event_id, "source": "/tests/telemetry", "type": "org.patientmgt.test.v1"},
                      redriven_at=redriven_at)


def _outbox(created_at, published_at=None):
    return OutboxEvent(id=uuid.uuid4(), source="/tests/telemetry", type="org.patientmgt.test.v1", subject=None,
                       time=created_at, data={}, created_at=created_at, published_at=published_at)


def test_queue_depth_gauges_match_the_rows_in_postgresql(cap):
    patient_id = _patient()  # before the baseline: its registration writes an outbox row
    before = _gauges(cap)
    now = datetime.now(timezone.utc)
    ten_days_ago = now - timedelta(days=10)
    with unit_of_work() as uow:
        uow.session.add_all([
            # 2 unpublished outbox events (one ten days old), 1 published
            _outbox(ten_days_ago), _outbox(now), _outbox(now, published_at=now),
            # 2 due (scheduled and pending, past send_after), 1 scheduled for later, 1 sent
            _notification(patient_id, "scheduled", now - timedelta(minutes=5)),
            _notification(patient_id, "pending", now - timedelta(seconds=1)),
            _notification(patient_id, "scheduled", now + timedelta(hours=2)),
            _notification(patient_id, "sent", None, provider_message_id="m-1", sent_at=now),
            # 3 quarantined LIS messages, 1 processed
            _lis_message("quarantined"), _lis_message("quarantined"), _lis_message("quarantined"), _lis_message("processed"),
            # 1 dead letter waiting, 1 re-driven
            _dead_letter(), _dead_letter(redriven_at=now),
        ])
    after = _gauges(cap)
    truth = _database_truth()

    assert after["outbox_unpublished"] - before["outbox_unpublished"] == 2
    assert after["notifications_due"] - before["notifications_due"] == 2
    assert after["lis_quarantined"] - before["lis_quarantined"] == 3
    assert after["dead_letters_pending"] - before["dead_letters_pending"] == 1
    assert after["outbox_unpublished"] == truth["outbox_unpublished"]
    assert after["notifications_due"] == truth["due"]
    assert after["lis_quarantined"] == truth["quarantined"]
    assert after["dead_letters_pending"] == truth["dead_letters"]
    # the ten-day-old event is the oldest unpublished one: its age, as PostgreSQL sees it
    assert 10 * 86400 <= after["outbox_oldest_age"] <= float(truth["oldest"])


def test_publishing_the_oldest_event_lowers_the_age_and_the_count(cap):
    old = _outbox(datetime.now(timezone.utc) - timedelta(days=20))
    with unit_of_work() as uow:
        uow.session.add(old)
    before = _gauges(cap)
    assert before["outbox_oldest_age"] >= 20 * 86400
    with unit_of_work() as uow:
        uow.session.execute(sa.update(OutboxEvent).where(OutboxEvent.id == old.id).values(published_at=sa.func.now()))
    after = _gauges(cap)
    assert after["outbox_unpublished"] == before["outbox_unpublished"] - 1
    assert after["outbox_oldest_age"] < 20 * 86400


def test_the_snapshot_is_reused_within_a_collection(cap, monkeypatch):
    reads = []
    real = queues.read_depths
    monkeypatch.setattr(queues, "read_depths", lambda: reads.append(1) or real())
    queues.forget()
    data = cap.collect()
    assert len(reads) == 1  # six gauges, one query
    assert all(len(cap.points(name, data)) == 1 for name in GAUGES.values())
