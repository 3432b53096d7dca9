"""The steps both paths share (the event consumer and the due-notifications job).

1. ``load_recipient`` reads the patient (audited) in the claiming transaction;
2. ``render_for`` renders the message for a claimed row (a TemplateError rolls the claim back);
3. ``deliver`` calls the provider *after* the claim is committed, outside any transaction;
4. ``record_outcome`` stores what the provider said, in a new transaction.

A ``Claimed`` holds the address and the rendered text in memory only; rows never store them.

Two implementations of the database steps share what is decided here (``recipient``, ``claim_values``,
``outcome_change``, ``recorded``): the ORM's below, for the due job (its rows are locked in an ORM
transaction), and the driver pool's in ``shared.notify.event_sql``, for an event (no SQLAlchemy on its
path). Importing this module loads no SQLAlchemy: the ORM steps load it when called.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from shared.auth import SYSTEM_NOTIFY
from shared.log import get_logger
from shared.notify import runtime
from shared.notify.policy import RETRIES_EXHAUSTED, Channel, Recipient
from shared.notify.providers import PermanentProviderError, Provider, TransientProviderError
from shared.notify.render import Rendered, render
from shared.telemetry.outcomes import record_notification

if TYPE_CHECKING:
    from shared.db import UnitOfWork

log = get_logger("patient_mgt.notify")

MAX_ATTEMPTS = 24
"""Provider calls per notification before a transient failure becomes ``failed``/``retries_exhausted``
(with the backoff below, about a day: long enough for an operator to fix credentials or quotas)."""
MAX_MERGE_HOPS = 5


def retry_delay(attempts: int) -> timedelta:
    """When the due job may retry a ``pending`` row: 1, 2, 4 … minutes after the attempt, at most an hour."""
    return timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 3600))


def load_recipient(uow: UnitOfWork, patient_id: uuid.UUID, *, follow_merge: bool, purpose: str) -> Recipient | None:
    """The patient to notify (audited read), or None if no such patient exists.

    With ``follow_merge`` a merged record leads to the record it was merged into (the same person,
    whose consent and contact data now apply), at most ``MAX_MERGE_HOPS`` records on; otherwise a
    merged patient is returned as merged. (The event path's one statement: ``event_sql.load_recipient``.)
    """
    from shared import audit  # noqa: PLC0415 — the ORM steps load SQLAlchemy when called (see the module)
    from shared.models import Patient  # noqa: PLC0415

    patient = uow.session.get(Patient, patient_id, populate_existing=True)
    if patient is None:
        return None
    read = [patient.id]
    hops = 0
    while follow_merge and patient.status == "merged" and patient.merged_into is not None and hops < MAX_MERGE_HOPS:
        target = uow.session.get(Patient, patient.merged_into, populate_existing=True)
        if target is None:
            break
        patient, hops = target, hops + 1
        read.append(patient.id)
    audit.record(uow, SYSTEM_NOTIFY, "patient.read", read, details={"purpose": purpose})
    return recipient(patient.id, patient.status, patient.email, patient.phone, patient.comm_email, patient.comm_sms,
                     patient.timezone, patient.preferred_language, patient.given[0] if patient.given else None)


def recipient(patient_id: uuid.UUID, status: str, email: str | None, phone: str | None, comm_email: bool | None,
              comm_sms: bool | None, timezone: str | None, language: str | None, given_name: str | None) -> Recipient:
    """A patient's row as the ``Recipient`` the policy and the templates read (defaults for what is unset)."""
    return Recipient(patient_id=patient_id, status=status, email=email, phone=phone, comm_email=bool(comm_email),
                     comm_sms=bool(comm_sms), timezone=timezone or "UTC", language=language or "en",
                     given_name=given_name or "")


def render_for(kind: str, channel: Channel, recipient: Recipient) -> Rendered:
    """SMS get the portal link only; e-mails also the greeting name and the facility's name."""
    context = runtime.email_context(recipient.given_name) if channel == "email" else runtime.sms_context()
    return render(kind, channel, recipient.language, context)


def claim_values(now: datetime, attempts: int, language: str) -> dict[str, object]:
    return {"status": "sending", "claimed_at": now, "attempts": attempts, "language": language,
            "reason": None, "send_after": None, "updated_at": now}


@dataclass(frozen=True)
class Claimed:
    """A row this process committed as ``sending``: it alone may call the provider for it."""

    notification_id: uuid.UUID
    patient_id: uuid.UUID
    kind: str
    channel: Channel
    to: str = field(repr=False)
    rendered: Rendered = field(repr=False)
    attempts: int = 1


@dataclass(frozen=True)
class Outcome:
    status: Literal["sent", "failed", "pending", "unknown"]
    reason: str | None = None
    message_id: str | None = None
    error: BaseException | None = field(default=None, repr=False)


def deliver(claimed: Claimed, provider: Provider) -> Outcome:
    """Call the provider once. Never raises: an unexpected error is returned as ``unknown``."""
    try:
        if claimed.channel == "email":
            message_id = provider.send_email(claimed.to, claimed.rendered, from_address=runtime.email_from())
        else:
            message_id = provider.send_sms(claimed.to, claimed.rendered)
    except PermanentProviderError as exc:
        return Outcome("failed", exc.reason)
    except TransientProviderError as exc:
        return Outcome("pending", exc.reason)
    except Exception as exc:  # noqa: BLE001 — we cannot tell whether it went out: leave the claim (see record_outcome)
        return Outcome("unknown", "unexpected_error", error=exc)
    return Outcome("sent", message_id=str(message_id)[:200])


@dataclass(frozen=True)
class Change:
    """What recording an outcome writes: ``status`` is what the call reports; ``values`` are set on the row
    if it is still ``sending`` (None: nothing, the row stays ``sending``); with ``correct_unknown`` a row the
    lease sweep marked ``failed``/``outcome_unknown`` meanwhile gets them instead."""

    status: str
    values: dict[str, Any] | None
    correct_unknown: bool = False


def outcome_change(claimed: Claimed, outcome: Outcome, now: datetime, provider_name: str) -> Change:
    """The row's new state for the provider's answer (see ``record_outcome``)."""
    if outcome.status == "sent":
        return Change("sent", {"status": "sent", "provider_message_id": outcome.message_id, "provider": provider_name,
                               "sent_at": now, "reason": None, "updated_at": now}, correct_unknown=True)
    if outcome.status == "failed":
        return Change("failed", {"status": "failed", "reason": outcome.reason, "provider": provider_name,
                                 "updated_at": now})
    if outcome.status == "pending":
        if claimed.attempts >= MAX_ATTEMPTS:
            return Change("failed", {"status": "failed", "reason": RETRIES_EXHAUSTED, "provider": provider_name,
                                     "updated_at": now})
        return Change("pending", {"status": "pending", "reason": outcome.reason, "provider": provider_name,
                                  "send_after": now + retry_delay(claimed.attempts), "claimed_at": None,
                                  "updated_at": now})
    return Change("sending", None)


def recorded(claimed: Claimed, outcome: Outcome, status: str, provider_name: str) -> tuple[str, dict[str, Any]]:
    """Log the recorded attempt; the outcome and details of its ``notification.send`` audit row."""
    nid = claimed.notification_id
    log.info(
        "notification attempt recorded",
        extra={"fields": {"notification_id": str(nid), "kind": claimed.kind, "channel": claimed.channel,
                          "status": status, "reason": outcome.reason, "attempts": claimed.attempts,
                          "provider": provider_name}},
    )
    details = {"notification_id": str(nid), "kind": claimed.kind, "channel": claimed.channel, "reason": outcome.reason}
    return (status if status != "sending" else "unknown"), details


def record_outcome(uow: UnitOfWork, claimed: Claimed, outcome: Outcome, now: datetime, provider: Provider) -> str:
    """Store the provider's answer on the claimed row; returns the status recorded.

    ``unknown`` leaves the row ``sending``: after the lease it becomes ``failed``/``outcome_unknown``
    and is never resent automatically. A ``sent`` that arrives after the lease expired corrects that.
    (The event path's statements: ``event_sql.record_outcome``.)
    """
    from shared import audit  # noqa: PLC0415 — the ORM steps load SQLAlchemy when called (see the module)
    from shared.notify import store  # noqa: PLC0415

    name = runtime.provider_name(provider)
    nid = claimed.notification_id
    change = outcome_change(claimed, outcome, now, name)
    if change.values is not None:
        if not store.transition(uow, nid, ("sending",), **change.values) and change.correct_unknown:
            store.transition_if_outcome_unknown(uow, nid, **change.values)
    audit_outcome, details = recorded(claimed, outcome, change.status, name)
    audit.record(uow, SYSTEM_NOTIFY, "notification.send", [claimed.patient_id], outcome=audit_outcome, details=details)
    uow.after_commit(lambda: record_notification(claimed.channel, change.status, claimed.kind))
    return change.status
