"""The notify use case: one event asks for one kind of notification to one patient, on every channel.

Three transactions, so that a message is never sent twice:

1. *claim*: read the patient (audited), decide each channel (consent, address, status, quiet
   hours), render what will be sent, and insert one row per channel (``sending``, ``skipped`` or
   ``scheduled``) — or take over a ``pending`` row left by a transient failure. Committed before
   anything is sent. The unique (event, kind, channel) key makes the row the idempotency record:
   a redelivery or a concurrent copy finds it and does not send again.
2. *send*: call the provider for the rows this call claimed, outside any transaction.
3. *record*: ``sent`` with the provider's message id, ``failed`` with a permanent reason, or back
   to ``pending`` after a transient error — then ``RetryLater`` so the platform redelivers.

A row found ``sending`` belongs to a call in progress (→ ``RetryLater``: the redelivery will see its
outcome) or, once older than NOTIFY_SENDING_LEASE_SECONDS, to a process that died around the
provider call: it becomes ``failed``/``outcome_unknown`` and is not resent (docs/notifications.md).

The three steps run on the driver pool (``shared.notify.event_sql``): an event loads no SQLAlchemy, so
a notify instance woken from zero answers its first event without importing it (docs/performance.md).
``queue_notification`` works in its caller's ORM transaction (the jobs function's reminders).
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared.auth import SYSTEM_NOTIFY
from shared.consumer import RetryLater
from shared.db.driver_uow import DriverUnitOfWork, driver_unit_of_work
from shared.ids import uuid4
from shared.log import get_logger
from shared.notify import event_sql, runtime
from shared.notify.delivery import Claimed, Outcome, claim_values, deliver, render_for
from shared.notify.policy import CHANNELS, Channel, Decision, decide
from shared.notify.providers import Provider
from shared.notify.render import resolve_language
from shared.settings import get_settings
from shared.telemetry.outcomes import record_notification

if TYPE_CHECKING:
    from shared.db import UnitOfWork

log = get_logger("patient_mgt.notify")


class UnknownPatient(Exception):
    """The event names a patient that does not exist: no retry can make it applicable."""


@dataclass(frozen=True)
class NotifyRequest:
    """What an event asks for. (event_source, event_id) identify the CloudEvent."""

    kind: str
    patient_id: uuid.UUID
    event_source: str
    event_id: str
    event_type: str | None = None
    order_id: uuid.UUID | None = None

    @property
    def follow_merge(self) -> bool:
        # Results belong to the person (now under the surviving record); a welcome does not.
        return self.kind != "welcome"


def notify_for_event(
    request: NotifyRequest, *, provider: Provider | None = None, clock: runtime.Clock = runtime.system_clock
) -> dict[str, int]:
    """Apply one event; returns counts by outcome. Raises RetryLater (5xx), UnknownPatient, TemplateError."""
    now = clock()
    counts: Counter[str] = Counter()
    with driver_unit_of_work() as tx:
        claimed = _claim(tx, request, now, counts)
    if claimed:
        provider = provider or runtime.get_provider()
        outcomes = [(c, deliver(c, provider)) for c in claimed]
        after = clock()
        with driver_unit_of_work() as tx:
            for c, outcome in outcomes:
                counts[event_sql.record_outcome(tx, c, outcome, after, provider)] += 1
        for _c, outcome in outcomes:
            if outcome.error is not None:
                raise outcome.error
        if any(o.status == "pending" for _c, o in outcomes):
            raise RetryLater("provider_unavailable")
    if counts["in_flight"]:
        raise RetryLater("notification_in_flight")
    return dict(counts)


def _claim(tx: DriverUnitOfWork, request: NotifyRequest, now: datetime, counts: Counter[str]) -> list[Claimed]:
    lease = timedelta(seconds=get_settings().notify_sending_lease_seconds)
    rows = event_sql.rows_for_event(tx, request.event_source, request.event_id, request.kind)
    stale = [r.id for r in rows.values() if r.status == "sending" and r.claimed_at and r.claimed_at < now - lease]
    if stale:
        expired = event_sql.expire_stale_claims(tx, now, lease, stale)
        counts["outcome_unknown"] += len(expired)
        log.warning("notification claim expired; outcome unknown, not resent",
                    extra={"fields": {"notification_ids": [str(i) for i in expired], "kind": request.kind}})
        rows = event_sql.rows_for_event(tx, request.event_source, request.event_id, request.kind)

    open_channels = [ch for ch in CHANNELS if ch not in rows or rows[ch].status == "pending"]
    for ch in CHANNELS:
        if ch in rows and rows[ch].status != "pending":
            counts["in_flight" if rows[ch].status == "sending" else "duplicate"] += 1
    if not open_channels:
        return []  # nothing to decide: the patient is not even read

    recipient = event_sql.load_recipient(tx, request.patient_id, follow_merge=request.follow_merge, purpose=request.kind)
    if recipient is None:
        raise UnknownPatient()
    claimed: list[Claimed] = []
    settings = get_settings()
    for channel in open_channels:
        decision = decide(channel, recipient, now, quiet_start=settings.quiet_hours_start, quiet_end=settings.quiet_hours_end)
        rendered = render_for(request.kind, channel, recipient) if decision.action == "send" else None
        language = rendered.language if rendered else resolve_language(request.kind, recipient.language)
        existing = rows.get(channel)
        attempts = (existing.attempts if existing else 0) + (1 if rendered else 0)
        values = _values_for(decision, now, attempts, language)
        if existing is None:
            nid = uuid4()
            won = event_sql.insert(tx, {
                "id": nid, "patient_id": recipient.patient_id, "kind": request.kind, "channel": channel,
                "event_source": request.event_source, "event_id": request.event_id, "event_type": request.event_type,
                "order_id": request.order_id, "created_at": now, **values,
            })
            if not won:  # a concurrent copy of the event inserted it first (and committed)
                status = event_sql.status_of(tx, request.event_source, request.event_id, request.kind, channel)
                counts[_status_word(status or "sending")] += 1
                continue
        else:
            nid = existing.id
            if not event_sql.transition(tx, nid, ("pending",), patient_id=recipient.patient_id, **values):
                counts["in_flight"] += 1  # the due job or another copy took it over
                continue
        if rendered is not None:
            claimed.append(Claimed(nid, recipient.patient_id, request.kind, channel,
                                   to=recipient.address(channel) or "", rendered=rendered, attempts=attempts))
        else:
            counts[values["status"]] += 1  # type: ignore[index]
            tx.after_commit(lambda ch=channel, st=values["status"]: record_notification(ch, str(st), request.kind))
    return claimed


def _values_for(decision: Decision, now: datetime, attempts: int, language: str) -> dict[str, object]:
    if decision.action == "send":
        return claim_values(now, attempts, language)
    status = "skipped" if decision.action == "skip" else "scheduled"
    return {"status": status, "reason": decision.reason, "send_after": decision.send_after, "claimed_at": None,
            "attempts": attempts, "language": language, "updated_at": now}


def _status_word(status: str) -> str:
    return "in_flight" if status in ("sending", "pending") else "duplicate"


def queue_notification(
    uow: UnitOfWork,
    *,
    patient_id: uuid.UUID,
    kind: str,
    source: str,
    key: str,
    send_after: datetime,
    order_id: uuid.UUID | None = None,
    channels: tuple[Channel, ...] = CHANNELS,
) -> int:
    """Queue ``kind`` for a patient at ``send_after`` on each channel (for the jobs function's reminders).

    (``source``, ``key``) plays the CloudEvent's (source, id): queueing the same key twice queues
    once. Consent, address and quiet hours are decided when the due job sends, not now. Returns the
    number of rows queued by this call. Runs in the caller's transaction.
    """
    from shared import audit  # noqa: PLC0415 — the ORM, which an event's path does without
    from shared.models.notifications import NOTIFICATION_KINDS  # noqa: PLC0415
    from shared.notify import store  # noqa: PLC0415

    if kind not in NOTIFICATION_KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    if send_after.tzinfo is None:
        raise ValueError("send_after must be timezone-aware")
    now = runtime.system_clock()
    queued = 0
    for channel in channels:
        queued += store.insert(uow, {
            "id": uuid4(), "patient_id": patient_id, "kind": kind, "channel": channel, "event_source": source,
            "event_id": key, "event_type": None, "order_id": order_id, "status": "scheduled", "send_after": send_after,
            "attempts": 0, "created_at": now, "updated_at": now,
        })
    if queued:
        audit.record(uow, SYSTEM_NOTIFY, "notification.queue", [patient_id], details={"kind": kind, "queued": queued})
    return queued


__all__ = ["NotifyRequest", "Outcome", "UnknownPatient", "notify_for_event", "queue_notification"]
