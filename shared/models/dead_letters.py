"""Dead letters: events whose delivery exhausted its retries, kept for an operator to re-drive."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Identity, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, new_id, utcnow


class DeadLetter(Base):
    """One undeliverable event, keyed by its CloudEvent (source, id).

    ``origin`` says where it came from: ``knative`` (a Trigger's deadLetterSink, with the
    knativeerror* extensions) or ``pubsub`` (a dead-letter topic's push subscription). The same
    event dead-lettered again after a re-drive updates its row (``dead_letter_count``).
    """

    __tablename__ = "dead_letters"
    __table_args__ = (
        UniqueConstraint("event_source", "event_id"),
        Index("ix_dead_letters_pending", "seq", postgresql_where=text("redriven_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    origin: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(300))
    event_source: Mapped[str] = mapped_column(String(300))
    event_type: Mapped[str] = mapped_column(String(200))
    event_subject: Mapped[str | None] = mapped_column(String(200))
    # Context attributes as received, delivery extensions removed; data kept as the bytes received.
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB)
    datacontenttype: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    error_code: Mapped[str | None] = mapped_column(String(32))  # knativeerrorcode (the subscriber's HTTP status)
    error_data: Mapped[str | None] = mapped_column(Text)  # knativeerrordata (base64 of its response body, ≤1024)
    error_dest: Mapped[str | None] = mapped_column(String(500))  # knativeerrordest (the subscriber's URL)
    delivery_attempts: Mapped[int | None] = mapped_column(Integer)  # Pub/Sub: CloudPubSubDeadLetterSourceDeliveryCount
    # Where a re-drive sends it: "sink" (the configured event sink) or a Pub/Sub topic path.
    redrive_target: Mapped[str | None] = mapped_column(String(300))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    dead_letter_count: Mapped[int] = mapped_column(Integer, default=1)
    redriven_at: Mapped[datetime | None]
    redrive_count: Mapped[int] = mapped_column(Integer, default=0)
