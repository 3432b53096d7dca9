"""An event's notification statements on the driver pool (``shared.db.wire``), without SQLAlchemy.

What wakes a notify instance from zero is an event (``patient.registered``: the welcome), and its path —
claim the rows, call the provider, record the outcome (``shared.notify.service``) — runs these texts on a
pg8000 connection of the process's pool, as the jobs runner's claim does: no SQLAlchemy, no models, no
mappers on the first event's path (``tests/unit/test_cold_imports.py``). Each function mirrors the ORM
step it replaces for an event and writes the same rows (``tests/integration/notify/test_event_sql.py``):

- ``rows_for_event``, ``expire_stale_claims``, ``insert``, ``transition``, ``status_of``: ``shared.notify.store``;
- ``load_recipient``: ``shared.notify.delivery.load_recipient`` — the patient, the merge chain followed
  and the ``patient.read`` audit row in one statement;
- ``record_outcome``: ``shared.notify.delivery.record_outcome`` (the same ``outcome_change``).

The due job keeps the ORM steps: its rows are locked (``FOR UPDATE SKIP LOCKED``) in an ORM transaction.
Functions take the driver pool's unit of work (``shared.db.driver_uow``) and never commit.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from shared.auth import SYSTEM_NOTIFY, Principal
from shared.db import wire
from shared.db.driver_uow import DriverUnitOfWork
from shared.instants import utcnow
from shared.log import current_request_id
from shared.notify import runtime
from shared.notify.delivery import MAX_MERGE_HOPS, Claimed, Outcome, outcome_change, recipient, recorded
from shared.notify.policy import OUTCOME_UNKNOWN, Recipient
from shared.notify.providers import Provider
from shared.telemetry.outcomes import record_notification


class Row(NamedTuple):
    """What the claim reads of an existing notification row."""

    id: uuid.UUID
    status: str
    claimed_at: datetime | None
    attempts: int


_ROWS = ("SELECT channel, id, status, claimed_at, attempts FROM notifications "
         "WHERE event_source = %s AND event_id = %s AND kind = %s")


def rows_for_event(tx: DriverUnitOfWork, event_source: str, event_id: str, kind: str) -> dict[str, Row]:
    """The rows of one (event, kind), by channel."""
    found = wire.rows(tx.con, _ROWS, (event_source, event_id, kind), prepared=True)
    return {channel: Row(*rest) for channel, *rest in found}


_EXPIRE = ("UPDATE notifications SET status = 'failed', reason = %s, updated_at = %s::timestamptz "
           "WHERE status = 'sending' AND claimed_at < %s::timestamptz AND id = ANY(%s::uuid[]) RETURNING id")


def expire_stale_claims(tx: DriverUnitOfWork, now: datetime, lease: timedelta, ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """Of ``ids``, the rows ``sending`` for longer than ``lease`` become ``failed``/``outcome_unknown``;
    returns their ids (``store.expire_stale_claims``: the message may have gone out, it is not resent)."""
    found = wire.rows(tx.con, _EXPIRE, (OUTCOME_UNKNOWN, now, now - lease, [str(i) for i in ids]), prepared=True)
    return [row[0] for row in found]


# The patient, the records its merges lead to (``follow``, at most ``MAX_MERGE_HOPS`` on, stopping at a
# record that is missing), and the ``patient.read`` audit row naming every record read, in reading order:
# ``delivery.load_recipient``'s reads and audit in one statement. No row, no audit: an unknown patient.
_RECIPIENT = f"""\
WITH RECURSIVE chain AS (
    SELECT p.id, p.status, p.merged_into, 0 AS hops FROM patients p WHERE p.id = %s::uuid
    UNION ALL
    SELECT q.id, q.status, q.merged_into, c.hops + 1 FROM chain c JOIN patients q ON q.id = c.merged_into
    WHERE %s::boolean AND c.status = 'merged' AND c.hops < {MAX_MERGE_HOPS}
), last AS (
    SELECT id FROM chain ORDER BY hops DESC LIMIT 1
), audit AS (
    INSERT INTO audit_log (at, principal, principal_id, action, patient_ids, request_id, outcome, details)
    SELECT %s::timestamptz, %s, %s::uuid, 'patient.read',
           ARRAY(SELECT id FROM chain GROUP BY id ORDER BY min(hops)), %s, 'success', %s::jsonb FROM last
)
SELECT p.id, p.status, p.email, p.phone, p.comm_email, p.comm_sms, p.timezone, p.preferred_language, p.given[1]
FROM last JOIN patients p ON p.id = last.id"""


def load_recipient(tx: DriverUnitOfWork, patient_id: uuid.UUID, *, follow_merge: bool, purpose: str) -> Recipient | None:
    """The patient to notify (audited read), or None if no such patient exists."""
    found = wire.rows(tx.con, _RECIPIENT, (patient_id, follow_merge, utcnow(), SYSTEM_NOTIFY.name, SYSTEM_NOTIFY.key_id,
                                           current_request_id(), json.dumps({"purpose": purpose})), prepared=True)
    return recipient(*found[0]) if found else None


_INSERT = (
    "INSERT INTO notifications (id, patient_id, kind, channel, event_source, event_id, event_type, order_id, "
    "created_at, status, claimed_at, attempts, language, reason, send_after, updated_at) "
    "VALUES (%s::uuid, %s::uuid, %s, %s, %s, %s, %s, %s::uuid, %s::timestamptz, %s, %s::timestamptz, %s::integer, "
    "%s, %s, %s::timestamptz, %s::timestamptz) "
    "ON CONFLICT (event_source, event_id, kind, channel) DO NOTHING RETURNING id"
)
_INSERTED = ("id", "patient_id", "kind", "channel", "event_source", "event_id", "event_type", "order_id", "created_at",
             "status", "claimed_at", "attempts", "language", "reason", "send_after", "updated_at")


def insert(tx: DriverUnitOfWork, values: dict[str, Any]) -> bool:
    """Insert one row unless its (event, kind, channel) exists; True if this call inserted it (``ON
    CONFLICT DO NOTHING`` waits for a concurrent transaction inserting the same key: of two copies of
    an event, exactly one inserts, and so claims, the row)."""
    return bool(wire.rows(tx.con, _INSERT, tuple(values.get(name) for name in _INSERTED), prepared=True))


# The columns a transition may set, with the cast of their parameter.
_SETTABLE = {"status": "", "reason": "", "language": "", "provider": "", "provider_message_id": "",
             "attempts": "::integer", "patient_id": "::uuid", "claimed_at": "::timestamptz",
             "send_after": "::timestamptz", "sent_at": "::timestamptz", "updated_at": "::timestamptz"}


@functools.lru_cache(maxsize=32)
def _update(columns: tuple[str, ...], guard: str) -> str:
    assignments = ", ".join(f"{name} = %s{_SETTABLE[name]}" for name in columns)
    return f"UPDATE notifications SET {assignments} WHERE id = %s::uuid AND {guard} RETURNING id"


def transition(tx: DriverUnitOfWork, notification_id: uuid.UUID, from_statuses: Iterable[str], **values: Any) -> bool:
    """Set ``values`` on the row if its status is one of ``from_statuses``; True if it was."""
    sql = _update(tuple(values), "status = ANY(%s::text[])")
    return bool(wire.rows(tx.con, sql, (*values.values(), notification_id, list(from_statuses)), prepared=True))


def transition_if_outcome_unknown(tx: DriverUnitOfWork, notification_id: uuid.UUID, **values: Any) -> bool:
    """Correct a row the lease sweep marked ``failed``/``outcome_unknown`` once its outcome is known."""
    sql = _update(tuple(values), f"status = 'failed' AND reason = '{OUTCOME_UNKNOWN}'")
    return bool(wire.rows(tx.con, sql, (*values.values(), notification_id), prepared=True))


_STATUS = ("SELECT status FROM notifications "
           "WHERE event_source = %s AND event_id = %s AND kind = %s AND channel = %s")


def status_of(tx: DriverUnitOfWork, event_source: str, event_id: str, kind: str, channel: str) -> str | None:
    found = wire.rows(tx.con, _STATUS, (event_source, event_id, kind, channel), prepared=True)
    return found[0][0] if found else None


_AUDIT = ("INSERT INTO audit_log (at, principal, principal_id, action, patient_ids, request_id, outcome, details) "
          "VALUES (%s::timestamptz, %s, %s::uuid, %s, %s::uuid[], %s, %s, %s::jsonb)")


def audit(tx: DriverUnitOfWork, principal: Principal, action: str, patient_ids: Iterable[uuid.UUID], *,
          outcome: str = "success", details: dict[str, Any] | None = None) -> None:
    """One audit row (``shared.audit.record``'s, stamped now) in the transaction: ids, counts and codes only."""
    ids = [str(i) for i in dict.fromkeys(patient_ids)]
    wire.execute(tx.con, _AUDIT, (utcnow(), principal.name, principal.key_id, action, ids, current_request_id(), outcome,
                                  json.dumps(details) if details is not None else None), prepared=True)


def record_outcome(tx: DriverUnitOfWork, claimed: Claimed, outcome: Outcome, now: datetime, provider: Provider) -> str:
    """Store the provider's answer on the claimed row and audit it; returns the status recorded
    (``delivery.record_outcome``'s rules: ``outcome_change``)."""
    name = runtime.provider_name(provider)
    nid = claimed.notification_id
    change = outcome_change(claimed, outcome, now, name)
    if change.values is not None:
        if not transition(tx, nid, ("sending",), **change.values) and change.correct_unknown:
            transition_if_outcome_unknown(tx, nid, **change.values)
    audit_outcome, details = recorded(claimed, outcome, change.status, name)
    audit(tx, SYSTEM_NOTIFY, "notification.send", [claimed.patient_id], outcome=audit_outcome, details=details)
    tx.after_commit(lambda: record_notification(claimed.channel, change.status, claimed.kind))
    return change.status
