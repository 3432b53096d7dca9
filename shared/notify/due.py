"""Send the notifications whose time has come: SMS deferred by quiet hours, reminders queued by jobs,
and ``pending`` rows left by a transient provider failure (after their backoff).

Called by the jobs function's ``notifications-due`` job: ``send_due_notifications(budget_seconds)``.
Each row goes through the same three steps as an event (claim → send → record), so the same
exactly-once rules hold: rows are taken with ``FOR UPDATE SKIP LOCKED`` (two job runs never take the
same row) and committed as ``sending`` before the provider is called. Consent, address, patient
status and quiet hours are decided again at send time: a patient who opted out overnight gets nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta

from shared.db import UnitOfWork, unit_of_work
from shared.log import get_logger
from shared.models import Notification
from shared.notify import runtime, store
from shared.notify.delivery import Claimed, claim_values, deliver, load_recipient, record_outcome, render_for
from shared.notify.policy import PATIENT_INACTIVE, decide
from shared.notify.providers import Provider
from shared.settings import get_settings

log = get_logger("patient_mgt.notify.due")


def send_due_notifications(
    budget_seconds: float,
    *,
    now: runtime.Clock | None = None,
    provider: Provider | None = None,
) -> dict[str, int]:
    """Send what is due until nothing is or ``budget_seconds`` have passed; returns counts by outcome.

    Counts: ``sent``, ``failed``, ``pending`` (transient error, retried later), ``skipped``,
    ``rescheduled`` (still in quiet hours), ``outcome_unknown`` (expired claims), ``sending``
    (unexpected error, left for review). A transient provider error ends the run early: the
    provider is down and the remaining rows keep their place. ``now`` is the clock (tests inject one).
    """
    clock = now or runtime.system_clock
    deadline = time.monotonic() + budget_seconds
    counts: Counter[str] = Counter()
    lease = timedelta(seconds=get_settings().notify_sending_lease_seconds)
    with unit_of_work() as uow:
        expired = store.expire_stale_claims(uow, clock(), lease)
    if expired:
        counts["outcome_unknown"] += len(expired)
        log.warning("notification claims expired; outcome unknown, not resent", extra={"fields": {"count": len(expired)}})

    while time.monotonic() < deadline:
        with unit_of_work() as uow:
            row = store.lock_next_due(uow, clock())
            if row is None:
                break
            claimed, status = _claim_due(uow, row, clock())
        if claimed is None:
            counts[status] += 1
            continue
        provider = provider or runtime.get_provider()
        outcome = deliver(claimed, provider)
        with unit_of_work() as uow:
            counts[record_outcome(uow, claimed, outcome, clock(), provider)] += 1
        if outcome.status == "pending":
            break  # the provider is down: stop spending the budget on it
    result = dict(counts)
    log.info("due notifications processed", extra={"fields": {"counts": result}})
    return result


def _claim_due(uow: UnitOfWork, row: Notification, now: datetime) -> tuple[Claimed | None, str]:
    """Decide a locked due row again; claim it (``sending``) or record why not. Returns (claim, status)."""
    settings = get_settings()
    recipient = load_recipient(uow, row.patient_id, follow_merge=row.kind != "welcome", purpose=row.kind)
    if recipient is None:  # unreachable while the foreign key holds; never leave a row due forever
        store.transition(uow, row.id, (row.status,), status="skipped", reason=PATIENT_INACTIVE, updated_at=now)
        return None, "skipped"
    channel = "email" if row.channel == "email" else "sms"
    decision = decide(channel, recipient, now, quiet_start=settings.quiet_hours_start, quiet_end=settings.quiet_hours_end)
    if decision.action == "skip":
        store.transition(uow, row.id, (row.status,), status="skipped", reason=decision.reason, claimed_at=None, updated_at=now)
        return None, "skipped"
    if decision.action == "schedule":
        store.transition(uow, row.id, (row.status,), status="scheduled", reason=decision.reason,
                         send_after=decision.send_after, updated_at=now)
        return None, "rescheduled"
    rendered = render_for(row.kind, channel, recipient)
    attempts = row.attempts + 1
    if not store.transition(uow, row.id, (row.status,), patient_id=recipient.patient_id,
                            **claim_values(now, attempts, rendered.language)):
        return None, "in_flight"  # unreachable while the row is locked; never send without the claim
    return Claimed(row.id, recipient.patient_id, row.kind, channel, to=recipient.address(channel) or "",
                   rendered=rendered, attempts=attempts), "sending"
