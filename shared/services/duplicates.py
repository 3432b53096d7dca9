"""Probable duplicates: the same birth date and (the same folded family and first given name, or
the same phone, or the same e-mail). Case, accents, spacing and hyphens are folded (``fold``).

``RULES`` is the one definition: ``find_duplicates`` (the ORM's), the registration's CTE
(``services.patient_sql``) and the LIS fast path's text (``shared.lis.sql``) build their conditions
from it (``match_sql``). The API refuses a registration with candidates (unless ``allow_duplicate``)
and lists them at ``GET /patients/{id}/duplicates``; the LIS feed flags them for review. Every rule
includes the birth date, so each lookup is a range of an index that leads with ``birth_date``, and
``lock_birth_date`` serialises the check-then-insert of registrations that share a birth date (so two
concurrent registrations of the same person cannot both miss each other).
"""

from __future__ import annotations

import hashlib

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, NamedTuple

from shared.normalize import fold_key
from shared.prepared import PIPELINED

if TYPE_CHECKING:
    import sqlalchemy as sa

    from shared.db import UnitOfWork

# SQLAlchemy and the model load with the first search, not on import: the registration's SQL and the
# LIS consumer's fast path read the rules, MAX_CANDIDATES and lock_key only (shared.lis.sql).

REASONS = ("name_and_birth_date", "phone_and_birth_date", "email_and_birth_date")
MAX_CANDIDATES = 50


class Rule(NamedTuple):
    """One rule beside the birth date: every column of the candidate equal to the probe's. It applies
    to a probe whose first column has a value (a folded family name that is not empty, a phone, an
    e-mail); a candidate matching several rules is given the first one's reason."""

    reason: str
    columns: tuple[str, ...]


# The rules, in order of strength: every implementation builds its conditions from these (the ORM's
# ``find_duplicates``; the registration's CTE, ``services.patient_sql``; the LIS fast path's text,
# ``shared.lis.sql``) — a rule changed here changes all three.
RULES = (Rule(REASONS[0], ("family_norm", "first_given_norm")), Rule(REASONS[1], ("phone",)),
         Rule(REASONS[2], ("email",)))


def probe_values(family: str, given: Sequence[str], phone: str | None, email: str | None) -> dict[str, str | None]:
    """The probe's value of each rule column, as the columns store them (names folded, e-mail lower case)."""
    return {"family_norm": fold_key(family), "first_given_norm": fold_key(given[0]) if given else "", "phone": phone,
            "email": email.lower() if email else None}


def applicable(values: dict[str, Any]) -> list[Rule]:
    """The rules a probe with these `probe_values` is checked by."""
    return [rule for rule in RULES if values.get(rule.columns[0])]


def match_sql(rules: Sequence[Rule], candidate: Callable[[str], str], probe: Callable[[str], str], *,
              guarded: bool = False) -> tuple[str, str]:
    """SQL text of (any of `rules` holds, the reason of the first that holds): ``candidate(column)`` is
    the candidate row's column, ``probe(column)`` the probe's value. `guarded`: each rule also checks
    that the probe's first column has a value (``<> ''``: NULL fails it too), for a probe whose values
    are only known to SQL."""
    conditions = []
    for rule in rules:
        parts = [f"{probe(rule.columns[0])} <> ''"] if guarded else []
        parts += [f"{candidate(column)} = {probe(column)}" for column in rule.columns]
        conditions.append(" AND ".join(parts))
    reason = "CASE " + " ".join(f"WHEN {c} THEN '{r.reason}'" for c, r in zip(conditions, rules, strict=True)) \
        + f" ELSE '{REASONS[-1]}' END"
    return "(" + " OR ".join(f"({c})" for c in conditions) + ")", reason


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

    values = probe_values(probe.family, probe.given, probe.phone, probe.email)
    rules = [(sa.and_(*(getattr(Patient, column) == values[column] for column in rule.columns)), rule.reason)
             for rule in applicable(values)]
    if not rules:
        return []
    reason = sa.case(*rules, else_=sa.literal(REASONS[-1]))
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
