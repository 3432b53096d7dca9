"""Critical lab results: one alert per result, and the messages sent for it (the alert, its escalation)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, new_id, utcnow
from shared.models import orders as _orders  # noqa: F401  (the table its foreign keys reference)
from shared.models import patients as _patients  # noqa: F401  (the table its foreign keys reference)

ALERT_STATUSES = ("open", "acknowledged")
MESSAGE_LEVELS = ("alert", "escalation")
MESSAGE_STATUSES = ("sending", "sent", "pending", "failed", "unrouted")
CHANNELS = ("email", "sms", "webhook")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class CriticalAlert(Base):
    __tablename__ = "critical_alerts"
    __table_args__ = (
        CheckConstraint(_in("status", ALERT_STATUSES), name="status"),
        CheckConstraint("status <> 'acknowledged' OR acknowledged_at IS NOT NULL", name="acknowledged_has_time"),
        # The escalation job: open alerts not escalated yet, by when they fall due.
        Index("ix_critical_alerts_due", "escalate_at", postgresql_where=text("status = 'open' AND escalated_at IS NULL")),
        Index("ix_critical_alerts_patient", "patient_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # Once per result: the constraint is the guard, not a read before the insert.
    result_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lab_results.id"), unique=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    order_id: Mapped[uuid.UUID | None]
    code: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(40))  # "flag:HH", "range:high", … (a code, never a value)
    facility: Mapped[str | None] = mapped_column(String(200))  # MSH-4 of the result's message
    ward: Mapped[str | None] = mapped_column(String(100))  # PV1-3.1, when the message had one
    route: Mapped[str | None] = mapped_column(String(320))  # the CRITICAL_ALERT_ROUTES key that matched
    status: Mapped[str] = mapped_column(String(16), default="open")
    escalate_at: Mapped[datetime]
    escalated_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CriticalAlertMessage(Base):
    """One send per (alert, level): the idempotency record of notify, as notifications are for patients.
    No address or text is stored (the route and the alert re-render it)."""

    __tablename__ = "critical_alert_messages"
    __table_args__ = (
        UniqueConstraint("alert_id", "level"),
        CheckConstraint(_in("level", MESSAGE_LEVELS), name="level"),
        CheckConstraint(_in("status", MESSAGE_STATUSES), name="status"),
        CheckConstraint("status <> 'sending' OR claimed_at IS NOT NULL", name="sending_is_claimed"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("critical_alerts.id"))
    level: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
