"""Patient notifications: one row per (triggering event, kind, channel), and it is the idempotency record.

The row is committed as ``sending`` *before* the provider is called, so a redelivered event, a
second copy arriving at the same time or the due-notifications job finds it and never sends twice.
Statuses (``docs/notifications.md`` has the full state diagram):

- ``sending``   claimed by one process which is calling the provider now (``claimed_at``);
- ``sent``      the provider accepted it (``provider_message_id``);
- ``pending``   not accepted after a transient provider error; retried by a redelivery of the event
                or by the due job after ``send_after``;
- ``scheduled`` waits for ``send_after`` (SMS deferred by quiet hours, reminders queued by jobs);
- ``skipped``   deliberately not sent (``reason``: ``no_consent``, ``no_address``, ...);
- ``failed``    will not be sent (``reason``: the provider's permanent error code, or
                ``outcome_unknown`` when a ``sending`` claim outlived its lease: the process may have
                died after the provider accepted the message, so it is not resent automatically).

No message content, address or phone number is stored: the text is re-rendered from the templates.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Identity, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, new_id, utcnow
from shared.models import patients as _patients  # noqa: F401  (the table its foreign keys reference)

NOTIFICATION_STATUSES = ("sending", "sent", "pending", "scheduled", "skipped", "failed")
NOTIFICATION_KINDS = ("results_ready", "welcome", "reminder")
NOTIFICATION_CHANNELS = ("email", "sms")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        # Exactly one notification per (event, kind, channel): the CloudEvent is identified by (source, id).
        UniqueConstraint("event_source", "event_id", "kind", "channel"),
        CheckConstraint(_in("status", NOTIFICATION_STATUSES), name="status"),
        CheckConstraint(_in("kind", NOTIFICATION_KINDS), name="kind"),
        CheckConstraint(_in("channel", NOTIFICATION_CHANNELS), name="channel"),
        CheckConstraint("status <> 'sending' OR claimed_at IS NOT NULL", name="sending_is_claimed"),
        CheckConstraint("status NOT IN ('scheduled','pending') OR send_after IS NOT NULL", name="waiting_has_send_after"),
        CheckConstraint("status <> 'sent' OR provider_message_id IS NOT NULL", name="sent_has_message_id"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        # GET /patients/{id}/notifications, newest first.
        Index("ix_notifications_patient_seq", "patient_id", "seq"),
        # The due job: rows waiting for their time.
        Index("ix_notifications_due", "send_after", postgresql_where=text("status IN ('scheduled','pending')")),
        # The lease sweep: claims that may have outlived their process.
        Index("ix_notifications_sending", "claimed_at", postgresql_where=text("status = 'sending'")),
        # The operator console's list of failed deliveries (outcome_unknown among them), newest first.
        Index("ix_notifications_failed_seq", "seq", postgresql_where=text("status = 'failed'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(8))
    # The CloudEvent that asked for it, or a caller's key for notifications queued by jobs.
    event_source: Mapped[str] = mapped_column(String(300))
    event_id: Mapped[str] = mapped_column(String(300))
    event_type: Mapped[str | None] = mapped_column(String(200))
    order_id: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))  # a code, never provider text
    language: Mapped[str | None] = mapped_column(String(35))  # the template language used
    send_after: Mapped[datetime | None]
    claimed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider: Mapped[str | None] = mapped_column(String(16))
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
