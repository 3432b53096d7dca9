"""FHIR Bulk Data exports (``GET /fhir/$export``): the request and its progress, and the NDJSON it wrote.

* ``fhir_exports``: one row per kick-off. The jobs function works on it in slices (one CloudEvent each,
  ``step`` counting them); ``type_index``/``cursor`` are where the next slice starts (keyset by id),
  ``lease_until`` keeps two deliveries off one export.
* ``fhir_export_files``: the output files, one per (type, part); a file is its chunks in ``seq`` order.
* ``fhir_export_chunks``: NDJSON lines, one slice's page each. Rows in PostgreSQL rather than files in
  a directory: the api (which serves them) and the jobs function (which writes them) are separate
  Knative Services with no shared disk, and any instance of either must see every export.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, new_id, utcnow

EXPORT_STATUSES = ("accepted", "in-progress", "completed", "failed", "cancelled")


class FhirExport(Base):
    __tablename__ = "fhir_exports"
    __table_args__ = (
        CheckConstraint("status IN ('accepted','in-progress','completed','failed','cancelled')", name="status"),
        CheckConstraint("level IN ('system','patient')", name="level"),
        Index("ix_fhir_exports_expires_at", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    level: Mapped[str] = mapped_column(String(16))
    types: Mapped[list[str]] = mapped_column(ARRAY(Text))
    since: Mapped[datetime | None]
    request_url: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[uuid.UUID | None]  # the API key's id: only it may poll, download, cancel
    status: Mapped[str] = mapped_column(String(16), default="accepted")
    step: Mapped[int] = mapped_column(Integer, default=0)
    type_index: Mapped[int] = mapped_column(Integer, default=0)
    cursor: Mapped[uuid.UUID | None]
    written: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(64))
    transaction_time: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]


class FhirExportFile(Base):
    __tablename__ = "fhir_export_files"
    __table_args__ = (UniqueConstraint("export_id", "resource_type", "part"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    export_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("fhir_exports.id", ondelete="CASCADE"))
    resource_type: Mapped[str] = mapped_column(String(32))
    part: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FhirExportChunk(Base):
    __tablename__ = "fhir_export_chunks"

    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("fhir_export_files.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    lines: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)  # NDJSON: one resource per line, each line ending in \n
