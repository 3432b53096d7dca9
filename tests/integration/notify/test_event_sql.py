"""The event path's statements on the driver pool (shared.notify.event_sql) write what the ORM steps they
replace write (shared.notify.delivery's, which the due job keeps): the same recipient and audit row for a
patient and its merge chain, the same row and audit row for every provider answer. And a welcome goes
through claim, send and record in a fixed number of statements, none through SQLAlchemy."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from shared.db import unit_of_work
from shared.db.driver_uow import driver_unit_of_work
from shared.models import AuditEntry, Notification, Patient
from shared.notify import delivery, event_sql, store
from shared.notify.delivery import MAX_ATTEMPTS, MAX_MERGE_HOPS, Claimed, Outcome
from shared.notify.policy import OUTCOME_UNKNOWN
from shared.notify.providers.fake import FakeProvider
from shared.notify.render import Rendered
from shared.notify.service import NotifyRequest, notify_for_event
from tests.support.notify import create_patient
from tests.support.statements import counting, through_sqlalchemy

pytestmark = pytest.mark.integration

NOON_UTC = datetime(2026, 6, 10, 12, 0, tzinfo=timezone.utc)


def _audit_rows(action: str, **where: str) -> list[tuple]:
    """The audit rows of ``action`` naming the patient (``patient``) or the notification (``notification``)."""
    stmt = sa.select(AuditEntry.principal, AuditEntry.principal_id, AuditEntry.action, AuditEntry.patient_ids,
                     AuditEntry.outcome, AuditEntry.details).where(AuditEntry.action == action).order_by(AuditEntry.id)
    if "patient" in where:
        stmt = stmt.where(AuditEntry.patient_ids.contains([uuid.UUID(where["patient"])]))
    if "notification" in where:
        stmt = stmt.where(AuditEntry.details["notification_id"].astext == where["notification"])
    with unit_of_work() as uow:
        return [tuple(row) for row in uow.session.execute(stmt).all()]


def _merge_chain(length: int) -> list[uuid.UUID]:
    """``length`` patients, each merged into the next (the last one survives). The database refuses such a
    chain now (merges are one hop); one written before that rule, by hand here, is still followed."""
    ids = [create_patient().id for _ in range(length)]
    with unit_of_work() as uow:
        uow.session.execute(sa.text("SET LOCAL session_replication_role = replica"))  # the one-hop trigger off
        for source, target in zip(ids, ids[1:]):
            uow.session.execute(sa.update(Patient).where(Patient.id == source).values(status="merged", merged_into=target))
    return ids


@pytest.mark.parametrize("follow_merge", [True, False], ids=["follow", "stay"])
@pytest.mark.parametrize("length", [1, 3, MAX_MERGE_HOPS + 2])
def test_the_recipient_and_its_audit_row_are_the_orms(database_url, follow_merge, length):
    chain = _merge_chain(length)
    with unit_of_work() as uow:
        by_orm = delivery.load_recipient(uow, chain[0], follow_merge=follow_merge, purpose="results_ready")
    with driver_unit_of_work() as tx:
        by_sql = event_sql.load_recipient(tx, chain[0], follow_merge=follow_merge, purpose="results_ready")
    assert by_sql == by_orm
    assert by_sql.patient_id == (chain[min(length - 1, MAX_MERGE_HOPS)] if follow_merge else chain[0])
    orm_audit, sql_audit = _audit_rows("patient.read", patient=str(chain[0]))
    assert sql_audit == orm_audit
    assert sql_audit[3] == (chain[:MAX_MERGE_HOPS + 1] if follow_merge else chain[:1])  # every record read, in order


def test_a_patient_without_given_name_language_or_phone_gets_the_same_defaults(database_url):
    patient = create_patient()
    with unit_of_work() as uow:
        uow.session.execute(sa.update(Patient).where(Patient.id == patient.id).values(
            given=[], preferred_language=None, comm_sms=False, phone=None))
        by_orm = delivery.load_recipient(uow, patient.id, follow_merge=True, purpose="welcome")
    with driver_unit_of_work() as tx:
        by_sql = event_sql.load_recipient(tx, patient.id, follow_merge=True, purpose="welcome")
    assert by_sql == by_orm
    assert (by_sql.given_name, by_sql.language, by_sql.phone) == ("", "en", None)


def test_an_unknown_patient_is_none_and_not_audited(database_url):
    unknown = uuid.uuid4()
    with driver_unit_of_work() as tx:
        assert event_sql.load_recipient(tx, unknown, follow_merge=True, purpose="welcome") is None
    assert _audit_rows("patient.read", patient=str(unknown)) == []


def _claimed_row(patient_id: uuid.UUID, attempts: int, status: str, reason: str | None) -> Claimed:
    """A notification row as a claim left it (``sending``), or as the lease sweep left it; the claim on it."""
    nid = uuid.uuid4()
    values = delivery.claim_values(NOON_UTC, attempts, "en")
    if status != "sending":
        values = {**values, "status": status, "reason": reason}
    with unit_of_work() as uow:
        assert store.insert(uow, {"id": nid, "patient_id": patient_id, "kind": "welcome", "channel": "email",
                                  "event_source": "/tests/event-sql", "event_id": str(uuid.uuid4()), "event_type": None,
                                  "order_id": None, "created_at": NOON_UTC, **values})
    rendered = Rendered(subject="Welcome", text="Welcome", html=None, language="en", kind="welcome")
    return Claimed(nid, patient_id, "welcome", "email", to="pt@example.org", rendered=rendered, attempts=attempts)


_COMPARED = ("patient_id", "kind", "channel", "status", "reason", "language", "send_after", "claimed_at", "attempts",
             "provider", "provider_message_id", "sent_at", "created_at", "updated_at")


def _row(nid: uuid.UUID) -> tuple:
    with unit_of_work() as uow:
        return tuple(uow.session.execute(
            sa.select(*(getattr(Notification, c) for c in _COMPARED)).where(Notification.id == nid)).one())


OUTCOMES = {"sent": Outcome("sent", message_id="msg-1"), "failed": Outcome("failed", "invalid_address"),
            "pending": Outcome("pending", "throttled"), "unknown": Outcome("unknown", "unexpected_error")}


@pytest.mark.parametrize("start", ["sending", "outcome_unknown"])
@pytest.mark.parametrize("attempts", [1, MAX_ATTEMPTS])
@pytest.mark.parametrize("answer", sorted(OUTCOMES))
def test_recording_an_outcome_writes_the_orms_row_and_audit_row(database_url, answer, attempts, start):
    patient = create_patient()
    provider = FakeProvider()
    status, reason = ("sending", None) if start == "sending" else ("failed", OUTCOME_UNKNOWN)
    later = NOON_UTC + timedelta(minutes=2)
    by_orm, by_sql = (_claimed_row(patient.id, attempts, status, reason) for _ in range(2))
    with unit_of_work() as uow:
        orm_status = delivery.record_outcome(uow, by_orm, OUTCOMES[answer], later, provider)
    with driver_unit_of_work() as tx:
        sql_status = event_sql.record_outcome(tx, by_sql, OUTCOMES[answer], later, provider)
    assert sql_status == orm_status
    assert _row(by_sql.notification_id) == _row(by_orm.notification_id)
    [orm_audit] = _audit_rows("notification.send", notification=str(by_orm.notification_id))
    [sql_audit] = _audit_rows("notification.send", notification=str(by_sql.notification_id))
    without_id = lambda row: (*row[:5], {k: v for k, v in row[5].items() if k != "notification_id"})  # noqa: E731
    assert without_id(sql_audit) == without_id(orm_audit)


def test_a_rolled_back_claim_leaves_nothing(database_url):
    patient = create_patient()
    event_id = str(uuid.uuid4())
    with pytest.raises(RuntimeError), driver_unit_of_work() as tx:
        event_sql.load_recipient(tx, patient.id, follow_merge=False, purpose="welcome")
        assert event_sql.insert(tx, {"id": uuid.uuid4(), "patient_id": patient.id, "kind": "welcome", "channel": "sms",
                                     "event_source": "/tests/event-sql", "event_id": event_id, "created_at": NOON_UTC,
                                     **delivery.claim_values(NOON_UTC, 1, "en")})
        raise RuntimeError("the claim fails before its commit")
    with unit_of_work() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).where(Notification.event_id == event_id)) == 0


def test_a_welcome_is_claimed_sent_and_recorded_in_eight_statements_none_through_sqlalchemy(database_url):
    patient = create_patient()
    request = NotifyRequest(kind="welcome", patient_id=patient.id, event_source="/patient-mgt/api",
                            event_id=str(patient.registered_event_id), event_type="org.patientmgt.patient.registered.v1")
    provider = FakeProvider()
    with counting() as counter, through_sqlalchemy() as seen:
        counts = notify_for_event(request, provider=provider, clock=lambda: NOON_UTC)
    assert counts == {"sent": 2}
    assert seen == []
    # claim: the event's rows, the recipient with its audit row, a row per channel; record: per channel the
    # row's transition and its audit row (BEGIN rides with the first statement of each; COMMIT apart)
    assert counter["statements"] == 8
    with counting() as counter:  # a redelivery reads the rows and stops
        assert notify_for_event(request, provider=provider, clock=lambda: NOON_UTC) == {"duplicate": 2}
    assert counter["statements"] == 1
    assert len(provider.sent) == 2
