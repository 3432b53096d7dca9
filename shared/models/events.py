"""The transactional outbox and the consumer inbox (processed_events)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Identity, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, utcnow


class OutboxEvent(Base):
    """A CloudEvent written in the same transaction as the change it announces."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_unpublished", "seq", postgresql_where=text("published_at IS NULL")),
        Index("ix_outbox_subject_seq", "subject", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # the CloudEvent id
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    source: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(200))
    time: Mapped[datetime] = mapped_column(default=utcnow)
    dataschema: Mapped[str | None] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    traceparent: Mapped[str | None] = mapped_column(String(64))
    tracestate: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class ProcessedEvent(Base):
    """The inbox: a consumer inserts (consumer, source, id) in the same transaction as its work,
    so a redelivered CloudEvent hits the primary key and has no second effect."""

    __tablename__ = "processed_events"
    __table_args__ = (Index("ix_processed_events_processed_at", "processed_at"),)

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(300), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    event_type: Mapped[str | None] = mapped_column(String(200))
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)
