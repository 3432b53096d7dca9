"""The LIS inbox: every message received from the laboratory feed, and the keys that dedupe it.

* ``lis_messages`` holds one row per HL7 message (a Pub/Sub message or CloudEvent carrying an
  FHS/BHS batch gives one row per message in it, ``part`` 0..n-1). Rows are never deleted; the raw
  bytes may be purged after ``LIS_RAW_RETENTION_DAYS`` (metadata kept).
* A redelivery of the same Pub/Sub ``messageId`` (or the same CloudEvent ``source``/``id``) hits a
  unique index and has no second effect.
* ``lis_control_ids`` is the (MSH-4, MSH-10, content digest) claim: a message is applied only by
  the transaction that inserts its claim, so the same HL7 message re-published under a new id is a
  ``duplicate``, while a different message under a reused MSH-10 gets its own claim (and a
  ``control_id_reused`` warning naming the earlier message).
* ``lis_patient_sync`` remembers, per patient and demographic field, the stamp of the last write —
  (MSH-7, MSH-10, MSH-4) of a LIS message, or the time of an API edit — so an older message never
  overwrites newer data, and which side (``lis`` or ``api``) set the field last.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, Uuid, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, new_id, utcnow
from shared.models import patients as _patients  # noqa: F401  (the table its foreign keys reference)

LIS_STATUSES = ("processed", "duplicate", "ignored", "quarantined", "failed")


class LisMessage(Base):
    __tablename__ = "lis_messages"
    __table_args__ = (
        CheckConstraint("status IN ('processed','duplicate','ignored','quarantined','failed')", name="status"),
        CheckConstraint("part >= 0 AND part < parts", name="part_in_range"),
        # The delivery keys: one row per (Pub/Sub message, part), or per (CloudEvent, part). A Pub/Sub
        # message id is unique within its topic only (an emulator restart reuses "1", "2", …), so the
        # source — which names the topic — is part of the key.
        Index("uq_lis_messages_pubsub_source", "ce_source", "pubsub_message_id", "part", unique=True,
              postgresql_where=text("pubsub_message_id IS NOT NULL")),
        Index("uq_lis_messages_cloudevent", "ce_source", "ce_id", "part", unique=True,
              postgresql_where=text("pubsub_message_id IS NULL")),
        Index("ix_lis_messages_received_at", "received_at"),
        Index("ix_lis_messages_status_received_at", "status", "received_at"),
        Index("ix_lis_messages_processed_at", "processed_at"),
        Index("ix_lis_messages_patient_id", "patient_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    # How it arrived: "pubsub" (push body or messagePublished CloudEvent) or "cloudevent" (direct).
    transport: Mapped[str] = mapped_column(String(16))
    ce_source: Mapped[str] = mapped_column(String(300))
    ce_id: Mapped[str] = mapped_column(String(300))
    ce_type: Mapped[str | None] = mapped_column(String(200))
    pubsub_message_id: Mapped[str | None] = mapped_column(String(300))
    publish_time: Mapped[datetime | None]
    ordering_key: Mapped[str | None] = mapped_column(String(300))
    subscription: Mapped[str | None] = mapped_column(String(300))
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    part: Mapped[int] = mapped_column(Integer, default=0)
    parts: Mapped[int] = mapped_column(Integer, default=1)
    content_format: Mapped[str] = mapped_column(String(16))  # hl7v2 | json | unknown
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    raw_size: Mapped[int] = mapped_column(Integer)
    sending_application: Mapped[str | None] = mapped_column(String(200))
    sending_facility: Mapped[str | None] = mapped_column(String(200))
    control_id: Mapped[str | None] = mapped_column(Text)
    message_type: Mapped[str | None] = mapped_column(String(40))
    message_time: Mapped[datetime | None]  # MSH-7 (or the JSON event's sent_at)
    status: Mapped[str] = mapped_column(String(16))
    # A short PHI-free code: the quarantine reason, the ignore reason, or failed's exception type.
    error_code: Mapped[str | None] = mapped_column(String(200))
    warnings: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    patient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patients.id"))
    # Every patient the message concerned (several for a message with several patient groups).
    patient_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list, server_default=text("'{}'::uuid[]"))
    duplicate_of: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("lis_messages.id"))
    lag_seconds: Mapped[float | None] = mapped_column(Float)
    delivery_count: Mapped[int] = mapped_column(Integer, default=1)
    attempts: Mapped[int] = mapped_column(Integer, default=1)


class LisControlId(Base):
    """The (MSH-4, MSH-10, content digest) claim of the message that was applied (or ignored) under
    this key. ``content_sha256`` is ``''`` for claims made before the digest was kept (0010): the
    consumer fills it in from the claiming message's stored bytes when that key is met again."""

    __tablename__ = "lis_control_ids"

    sending_facility: Mapped[str] = mapped_column(Text, primary_key=True)
    control_id: Mapped[str] = mapped_column(Text, primary_key=True)
    content_sha256: Mapped[str] = mapped_column(Text, primary_key=True, server_default=text("''"))
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lis_messages.id"), index=True)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)


class LisPatientSync(Base):
    """Per demographic field, the stamp of the LIS message that last wrote it."""

    __tablename__ = "lis_patient_sync"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    field_stamps: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Per field, who set it last: {"source": "lis", "at": MSH-7, "message_id": …} or
    # {"source": "api", "at": edit time, "by": principal} (migration 0010).
    field_sources: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
