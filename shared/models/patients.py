"""Patients and their identifiers."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (

    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Sequence,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.models.base import Base, new_id, utcnow

MRN_SEQUENCE = Sequence("patient_mrn_seq", start=10_000_000)
from shared.mrn import MRN_SYSTEM  # noqa: E402, F401 — defined without SQLAlchemy (the LIS fast path's)


def is_mrn_system(system: str) -> bool:
    """The MRN's system in any letter case: it is reserved for the registry. A URN's scheme and
    namespace compare case-insensitively, so ``URN:Patient-MGT:mrn`` names the same system, and a
    client identifier under it would make an MRN search find a second patient."""
    return system.strip().casefold() == MRN_SYSTEM
PATIENT_STATUSES = ("active", "inactive", "merged")
SEXES = ("male", "female", "other", "unknown")


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (
        CheckConstraint("status IN ('active','inactive','merged')", name="status"),
        CheckConstraint("sex IN ('male','female','other','unknown')", name="sex"),
        CheckConstraint("(status = 'merged') = (merged_into IS NOT NULL)", name="merged_into_iff_merged"),
        CheckConstraint("merged_into IS NULL OR merged_into <> id", name="not_merged_into_self"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_patients_dup_name", "birth_date", "family_norm", "first_given_norm"),
        Index("ix_patients_birth_date_phone", "birth_date", "phone"),
        Index("ix_patients_birth_date_email", "birth_date", "email"),
        # Search: the stable page order (family_norm, id), the same order within one status, and
        # exact contact look-ups (see services/search.py and docs/api.md for the plans).
        Index("ix_patients_family_norm_id", "family_norm", "id"),
        Index("ix_patients_status_family_norm_id", "status", "family_norm", "id"),
        Index("ix_patients_phone", "phone"),
        Index("ix_patients_email", "email"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    mrn: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    merged_into: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patients.id"), index=True)
    family: Mapped[str] = mapped_column(String(200))
    given: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    prefix: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    suffix: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    # Normalized (case, accents, spacing and hyphens folded) for duplicate detection and search.
    family_norm: Mapped[str] = mapped_column(String(200))
    first_given_norm: Mapped[str] = mapped_column(String(200), default="")
    birth_date: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(16), default="unknown")
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    address: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # None: never given (a LIS patient); the API's registration defaults to "en" (migration 0015).
    preferred_language: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    comm_email: Mapped[bool] = mapped_column(Boolean, default=False)
    comm_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16), default="api")
    # The MSH-7 / MSH-10 of the newest LIS message whose demographics were applied: an older
    # message arriving later must not overwrite newer data.
    lis_applied_at: Mapped[datetime | None]
    lis_applied_control_id: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    identifiers: Mapped[list[PatientIdentifier]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", order_by="PatientIdentifier.created_at"
    )


class PatientIdentifier(Base):
    """An identifier belongs to one patient: (system, value) is unique across the registry."""

    __tablename__ = "patient_identifiers"
    __table_args__ = (
        UniqueConstraint("system", "value"),
        # ``identifier=value`` (any system) in search.
        Index("ix_patient_identifiers_value", "value"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), index=True)
    system: Mapped[str] = mapped_column(String(200))
    value: Mapped[str] = mapped_column(String(200))
    type: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    patient: Mapped[Patient] = relationship(back_populates="identifiers")


NAME_TOKEN_KINDS = ("family", "given")


class PatientNameToken(Base):
    """The name-search index: each folded word of a patient's family and given names (and each whole
    folded name), so ``name=gar`` is the btree range ``token >= 'gar' AND token < 'gas'`` (collation
    "C": code-point order whatever the database's default collation). Rewritten with the names
    (``services.name_index.index_names``), in the same transaction.

    Each row also carries its patient's page keys, ``family_norm`` and ``status``, so a search by
    name finds its page in ``ix_patient_name_tokens_page`` alone (``services.search``). Database
    triggers keep them equal to the patient's (migration 0017): whatever a writer gives is replaced
    by the patient's values on insert, and a change of the patient's updates its rows."""

    __tablename__ = "patient_name_tokens"
    __table_args__ = (
        CheckConstraint("kind IN ('family','given')", name="kind"),
        Index("ix_patient_name_tokens_page", "token", "kind", "family_norm", "patient_id", postgresql_include=["status"]),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    token: Mapped[str] = mapped_column(String(200, collation="C"), primary_key=True)
    # Copies of the patient's, set by the database (triggers of migration 0017). Nullable only for
    # the moment a statement inserts tokens before their patient (then filled at its end).
    family_norm: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str | None] = mapped_column(String(16))
