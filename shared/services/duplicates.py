"""Probable duplicates: the same birth date and (the same folded family and first given name, or
the same phone, or the same e-mail). Case, accents, spacing and hyphens are folded (``fold``).

``find_duplicates`` is the one implementation: the API refuses a registration with candidates
(unless ``allow_duplicate``) and lists them at ``GET /patients/{id}/duplicates``; the LIS feed
flags them for review. Every rule includes the birth date, so each lookup is a range of an index
that leads with ``birth_date``, and ``lock_birth_date`` serialises the check-then-insert of
registrations that share a birth date (so two concurrent registrations of the same person cannot
both miss each other).
"""

from __future__ import annotations

import hashlib

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, NamedTuple

from shared.normalize import fold
from shared.prepared import PIPELINED

if TYPE_CHECKING:
    import sqlalchemy as sa

    from shared.db import UnitOfWork

# SQLAlchemy and the model load with the first search, not on import: the LIS consumer's fast path
# reads REASONS, MAX_CANDIDATES and lock_key only (shared.lis.sql).

REASONS = ("name_and_birth_date", "phone_and_birth_date", "email_and_birth_date")
MAX_CANDIDATES = 50


@dataclass(frozen=True)
class PatientLike:
    """What duplicate detection looks at. Build one directly, or with :meth:`of` from a ``Patient``
    row, a ``PatientCreate`` / ``PatientState`` body, or anything with the same attributes."""

    birth_date: date | None
    family: str
    given: Sequence[str] = ()
    phone: str | None = None
    email: str | None = None
    exclude_id: uuid.UUID | None = field(default=None, compare=False)

    @classmethod
    def of(cls, obj: Any) -> PatientLike:
        if isinstance(obj, PatientLike):
            return obj
        from shared.models import Patient  # noqa: PLC0415

        if isinstance(obj, Patient):
            return cls(obj.birth_date, obj.family, tuple(obj.given), obj.phone, obj.email, exclude_id=obj.id)
        name = obj.name  # a PatientCreate-like body
        email = getattr(obj, "email", None)
        return cls(obj.birth_date, name.family, tuple(name.given), getattr(obj, "phone", None),
                   str(email) if email else None, exclude_id=getattr(obj, "id", None))


class Duplicate(NamedTuple):
    patient_id: uuid.UUID
    reason: str  # one of REASONS: the strongest rule that matched


def find_duplicates(uow: UnitOfWork, patient_like: Any) -> list[Duplicate]:
    """Active or inactive patients (never merged ones) that are probably the same person."""
    probe = PatientLike.of(patient_like)
    if probe.birth_date is None:
        return []
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.models import Patient  # noqa: PLC0415

    family = fold(probe.family)
    first = fold(probe.given[0]) if probe.given else ""
    rules: list[tuple[sa.ColumnElement[bool], str]] = []
    if family:
        rules.append((sa.and_(Patient.family_norm == family, Patient.first_given_norm == first), REASONS[0]))
    if probe.phone:
        rules.append((Patient.phone == probe.phone, REASONS[1]))
    if probe.email:
        rules.append((Patient.email == probe.email.lower(), REASONS[2]))
    if not rules:
        return []
    reason = sa.case(*rules, else_=sa.literal(REASONS[2]))
    stmt = (
        sa.select(Patient.id, reason.label("reason"))
        .where(Patient.birth_date == probe.birth_date, Patient.status != "merged", sa.or_(*(r for r, _ in rules)))
        .order_by(Patient.created_at, Patient.id)
        .limit(MAX_CANDIDATES)
    )
    if probe.exclude_id is not None:
        stmt = stmt.where(Patient.id != probe.exclude_id)
    # Planned for its values (a custom plan) in one round trip where the engine has the hook (shared.prepared).
    return [Duplicate(row.id, row.reason) for row in uow.session.execute(stmt, execution_options=PIPELINED)]


def lock_key(birth_date: date) -> int:
    """The advisory-lock key (a signed 64-bit number) of a birth date; every registration path uses it.

    Computed here, not in SQL from the date: the hot registration path sends it inlined in a
    simple-protocol statement, and a statement's text reaches PostgreSQL's log when it fails
    (``log_min_error_statement``) — a number, never a birth date."""
    digest = hashlib.blake2b(f"patient-duplicates:{birth_date.isoformat()}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_birth_date(uow: UnitOfWork, birth_date: date | None) -> None:
    """Serialise, until commit, the transactions that register patients born on ``birth_date``."""
    if birth_date is not None:
        import sqlalchemy as sa  # noqa: PLC0415

        uow.session.execute(
            sa.text("SELECT pg_advisory_xact_lock(CAST(:key AS bigint))"), {"key": lock_key(birth_date)},
        )
