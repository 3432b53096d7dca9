"""GET /patients: every filter is an index lookup, pages follow a stable keyset order.

Order: ``(family_norm, id)`` (index ``ix_patients_family_norm_id``; ``ix_patients_status_family_norm_id``
for one status). Name words are prefix ranges on ``patient_name_tokens.token`` (collation "C",
``token >= w AND token < w⁺``, which stays an index range even in a generic prepared plan).
Identifiers and the MRN go through ``patient_identifiers`` (unique ``(system, value)``, and
``value``), so an identifier moved by a merge finds the surviving patient. ``docs/api.md`` shows
the plans; ``tests/integration/registry/test_search_plans.py`` checks them.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.models import MRN_SYSTEM, Patient, PatientIdentifier, PatientNameToken
from shared.normalize import tokens
from shared.schemas.search import PatientSearchQuery
from shared.services import cursor

CURSOR_KIND = "p"


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string above every string that starts with ``prefix`` (code-point order,
    which is byte order in UTF-8 under collation "C")."""
    last = ord(prefix[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates are not characters: skip them
        last = 0xE000
    if last > 0x10FFFF:
        return prefix + "\U0010ffff"
    return prefix[:-1] + chr(last)


def _has_word(word: str, kind: str | None) -> sa.ColumnElement[bool]:
    token = PatientNameToken.token
    sub = sa.select(PatientNameToken.patient_id).where(token >= word, token < prefix_upper_bound(word))
    if kind is not None:
        sub = sub.where(PatientNameToken.kind == kind)
    return Patient.id.in_(sub)


def _has_identifier(system: str | None, value: str) -> sa.ColumnElement[bool]:
    sub = sa.select(PatientIdentifier.patient_id).where(PatientIdentifier.value == value)
    if system is not None:
        sub = sub.where(PatientIdentifier.system == system)
    return Patient.id.in_(sub)


def build_search(q: PatientSearchQuery, after: tuple[str, uuid.UUID] | None = None) -> sa.Select[tuple[Patient]]:
    """The page query (``limit + 1`` rows: one more tells whether a next page exists)."""
    conditions: list[sa.ColumnElement[bool]] = [Patient.status.in_(q.statuses())]
    for text, kind in ((q.name, None), (q.family, "family"), (q.given, "given")):
        for word in dict.fromkeys(tokens(text or "")):
            conditions.append(_has_word(word, kind))
    if q.birth_date is not None:
        conditions.append(Patient.birth_date == q.birth_date)
    if (parts := q.identifier_parts()) is not None:
        conditions.append(_has_identifier(*parts))
    if q.mrn is not None:
        conditions.append(_has_identifier(MRN_SYSTEM, q.mrn))
    if q.phone is not None:
        conditions.append(Patient.phone == q.phone)
    if q.email is not None:
        conditions.append(Patient.email == q.email)
    if after is not None:
        conditions.append(sa.tuple_(Patient.family_norm, Patient.id) > sa.tuple_(sa.literal(after[0]), sa.literal(after[1])))
    # With a name word the matches come from the token index (a few hundred rows at most for a real
    # word); ordering by an expression the (family_norm, id) index cannot provide keeps the planner
    # from walking that index through every patient and probing the tokens for each (200 ms for
    # name=von at 100,000 patients). Without one, the index order is the cheap plan and stays.
    has_name = any(tokens(text or "") for text in (q.name, q.family, q.given))
    family_order = Patient.family_norm.concat("") if has_name else Patient.family_norm
    return (
        sa.select(Patient)
        .where(*conditions)
        .order_by(family_order, Patient.id)
        .limit(q.limit + 1)
    )


def _after(uow: UnitOfWork, token: str) -> tuple[str, uuid.UUID]:
    last_id = cursor.decode_id(CURSOR_KIND, token)
    family_norm = uow.session.scalar(sa.select(Patient.family_norm).where(Patient.id == last_id))
    if family_norm is None:
        raise cursor.invalid()
    return family_norm, last_id


def search_patients(uow: UnitOfWork, principal: Principal, q: PatientSearchQuery) -> tuple[list[Patient], str | None]:
    after = _after(uow, q.cursor) if q.cursor else None
    stmt = build_search(q, after).options(selectinload(Patient.identifiers))
    rows = list(uow.session.scalars(stmt))
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    audit.record(uow, principal, "patient.search", [p.id for p in rows],
                 details={"params": q.used(), "returned": len(rows)})
    return rows, cursor.encode(CURSOR_KIND, rows[-1].id) if more else None
