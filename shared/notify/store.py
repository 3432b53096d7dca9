"""Notification rows: inserts and conditional status transitions (no read-then-write races).

Every transition names the status it expects (``UPDATE … WHERE status = :from``); a caller that
loses a race updates nothing and learns it from the return value. Functions take the unit of work
and never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared.db import UnitOfWork
from shared.models import Notification
from shared.notify.policy import OUTCOME_UNKNOWN

FINAL_STATUSES = frozenset({"sent", "skipped", "failed"})
UNIQUE_KEY = ("event_source", "event_id", "kind", "channel")


def rows_for_event(uow: UnitOfWork, event_source: str, event_id: str, kind: str) -> dict[str, Notification]:
    """The rows of one (event, kind), by channel."""
    rows = uow.session.scalars(
        sa.select(Notification).where(
            Notification.event_source == event_source, Notification.event_id == event_id, Notification.kind == kind
        ).execution_options(populate_existing=True)
    ).all()
    return {row.channel: row for row in rows}


def insert(uow: UnitOfWork, values: dict[str, Any]) -> bool:
    """Insert one row unless its (event, kind, channel) exists; True if this call inserted it.

    ``ON CONFLICT DO NOTHING`` waits for a concurrent transaction inserting the same key, so of two
    copies of an event arriving at once exactly one inserts (and so claims) the row.
    """
    row = uow.session.execute(
        pg_insert(Notification)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(UNIQUE_KEY))
        .returning(Notification.id)
    ).first()
    return row is not None


def transition(uow: UnitOfWork, notification_id: uuid.UUID, from_statuses: Iterable[str], **values: Any) -> bool:
    """Set ``values`` on the row if its status is one of ``from_statuses``; True if it was."""
    result = uow.session.execute(
        sa.update(Notification)
        .where(Notification.id == notification_id, Notification.status.in_(list(from_statuses)))
        .values(**values)
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    ).first()
    return result is not None


def transition_if_outcome_unknown(uow: UnitOfWork, notification_id: uuid.UUID, **values: Any) -> bool:
    """Correct a row the lease sweep marked ``failed``/``outcome_unknown`` once its outcome is known."""
    result = uow.session.execute(
        sa.update(Notification)
        .where(Notification.id == notification_id, Notification.status == "failed", Notification.reason == OUTCOME_UNKNOWN)
        .values(**values)
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    ).first()
    return result is not None


def expire_stale_claims(
    uow: UnitOfWork, now: datetime, lease: timedelta, ids: Iterable[uuid.UUID] | None = None
) -> list[uuid.UUID]:
    """Rows ``sending`` for longer than ``lease`` become ``failed``/``outcome_unknown``; returns their ids.

    The process that claimed them died (or lost the database) somewhere around the provider call,
    so the message may have gone out: it is not resent automatically (docs/notifications.md).
    """
    stmt = (
        sa.update(Notification)
        .where(Notification.status == "sending", Notification.claimed_at < now - lease)
        .values(status="failed", reason=OUTCOME_UNKNOWN, updated_at=now)
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    )
    if ids is not None:
        stmt = stmt.where(Notification.id.in_(list(ids)))
    return list(uow.session.scalars(stmt))


def lock_next_due(uow: UnitOfWork, now: datetime) -> Notification | None:
    """The next row whose time has come (``scheduled`` or ``pending``), locked for this transaction.

    ``FOR UPDATE SKIP LOCKED``: concurrent job runs take different rows, never the same one.
    """
    return uow.session.scalars(
        sa.select(Notification)
        .where(Notification.status.in_(("scheduled", "pending")), Notification.send_after <= now)
        .order_by(Notification.send_after, Notification.seq)
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).first()


def page_for_patient(uow: UnitOfWork, patient_id: uuid.UUID, *, before: int | None, limit: int) -> list[Notification]:
    """A patient's notifications, newest first, keyset-paginated on ``seq``."""
    stmt = sa.select(Notification).where(Notification.patient_id == patient_id).order_by(Notification.seq.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(Notification.seq < before)
    return list(uow.session.scalars(stmt))


def page_failed(uow: UnitOfWork, *, outcome_unknown: bool | None, before: int | None, limit: int) -> list[Notification]:
    """Failed notifications of every patient, newest first, keyset-paginated on ``seq``
    (``ix_notifications_failed_seq``). ``outcome_unknown``: True only those, False all but those."""
    stmt = sa.select(Notification).where(Notification.status == "failed").order_by(Notification.seq.desc()).limit(limit)
    if outcome_unknown is True:
        stmt = stmt.where(Notification.reason == OUTCOME_UNKNOWN)
    elif outcome_unknown is False:
        stmt = stmt.where(Notification.reason.is_distinct_from(OUTCOME_UNKNOWN))
    if before is not None:
        stmt = stmt.where(Notification.seq < before)
    return list(uow.session.scalars(stmt))


def failed_counts(uow: UnitOfWork) -> dict[str, int]:
    """How many notifications are ``failed``: ``outcome_unknown`` and the others."""
    row = uow.session.execute(
        sa.select(sa.func.count().filter(Notification.reason == OUTCOME_UNKNOWN),
                  sa.func.count().filter(Notification.reason.is_distinct_from(OUTCOME_UNKNOWN)))
        .where(Notification.status == "failed")
    ).one()
    return {"outcome_unknown": row[0], "failed": row[1]}
