"""GET /patients: every filter is an index lookup, pages follow a stable keyset order.

Order: ``(family_norm, id)`` (index ``ix_patients_family_norm_id``; ``ix_patients_status_family_norm_id``
for one status). Name words are prefix ranges on ``patient_name_tokens.token`` (collation "C",
``token >= w AND token < w⁺``, which stays an index range even in a generic prepared plan).
Identifiers and the MRN go through ``patient_identifiers`` (unique ``(system, value)``, and
``value``), so an identifier moved by a merge finds the surviving patient. ``docs/api.md`` shows
the plans; ``tests/integration/registry/test_search_plans.py`` checks them.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by

from shared.auth import Principal
from shared.log import current_request_id
from shared.models import MRN_SYSTEM, AuditEntry, Patient, PatientIdentifier, PatientNameToken
from shared.models.base import utcnow
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


def build_search(q: PatientSearchQuery, after: tuple[Any, uuid.UUID] | None = None) -> sa.Select[tuple[Patient]]:
    """The page query (``limit + 1`` rows: one more tells whether a next page exists). ``after``:
    the last row's ``(family_norm, id)``; ``family_norm`` may be a SQL expression (a subquery)."""
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
        last_family = after[0] if isinstance(after[0], sa.ColumnElement) else sa.literal(after[0])
        conditions.append(sa.tuple_(Patient.family_norm, Patient.id) > sa.tuple_(last_family, sa.literal(after[1])))
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


# patients as a lightweight table of the key columns: an alias of the mapped table would build a
# proxy of each of its columns on every request.
_KEYS = sa.table("patients", sa.column("id", sa.Uuid()), sa.column("family_norm", sa.String()))


@functools.cache
def _outer(with_cursor: bool) -> tuple[sa.Select[Any], sa.CTE]:
    """Everything of a search's statement but the page: built once per process (values are named
    parameters, ``_values``), the page CTE is added per request and referenced here by name."""
    from shared.services.patient_sql import patient_json  # noqa: PLC0415

    page = sa.table("page", sa.column("id", sa.Uuid()), sa.column("family_norm", sa.String()))
    order = (page.c.family_norm, page.c.id)
    valid: sa.ColumnElement[bool] = sa.true()
    if with_cursor:
        last = _KEYS.alias("cursor_row")
        valid = sa.exists().where(last.c.id == sa.bindparam("s_cursor_id", type_=sa.Uuid()))
    shown = sa.select(sa.func.array(sa.select(page.c.id).order_by(*order).limit(sa.bindparam("s_limit", type_=sa.Integer()))
                                    .scalar_subquery()).label("ids")).cte("shown")
    table = AuditEntry.__table__
    audit_row = sa.insert(table).from_select(
        ["at", "principal", "principal_id", "action", "patient_ids", "request_id", "outcome", "details"],
        sa.select(
            sa.bindparam("s_at", type_=table.c.at.type), sa.bindparam("s_principal", type_=table.c.principal.type),
            sa.bindparam("s_principal_id", type_=table.c.principal_id.type),
            sa.literal("patient.search", table.c.action.type), shown.c.ids,
            sa.bindparam("s_request_id", type_=table.c.request_id.type), sa.literal("success", table.c.outcome.type),
            sa.func.jsonb_build_object("params", sa.bindparam("s_params", type_=JSONB),
                                       "returned", sa.func.cardinality(shown.c.ids)),
        ).where(valid),
    ).cte("audit")
    found = _KEYS.alias("found")
    items = (
        sa.select(sa.func.coalesce(sa.func.json_agg(aggregate_order_by(sa.literal_column(patient_json("found")), *order)),
                                   sa.literal_column("'[]'::json")))
        .select_from(page.join(found, found.c.id == page.c.id))
        .scalar_subquery()
    )
    return sa.select(items, valid), audit_row


def page_statement(principal: Principal, q: PatientSearchQuery) -> tuple[sa.Select[Any], dict[str, Any]]:
    """The one statement of a search and its named values: the page (``build_search``, keys only)
    as a CTE, the audit insert of what it shows, and one row of (documents as a JSON array, whether
    the cursor is valid). A cursor whose patient is gone makes the audit insert write nothing."""
    after = None
    values: dict[str, Any] = {"s_limit": q.limit, "s_at": utcnow(), "s_principal": principal.name,
                              "s_principal_id": principal.key_id, "s_request_id": current_request_id(),
                              "s_params": q.used()}
    if q.cursor:
        last_id = cursor.decode_id(CURSOR_KIND, q.cursor)
        last = _KEYS.alias("cursor_row")
        after = (sa.select(last.c.family_norm).where(last.c.id == last_id).scalar_subquery(), last_id)
        values["s_cursor_id"] = last_id
    # The page is keys only (fewer columns for SQLAlchemy to proxy on every request); the documents
    # join the page's few rows back to patients by primary key.
    page = build_search(q, after).with_only_columns(Patient.id, Patient.family_norm).cte("page")
    outer, audit_row = _outer(after is not None)
    return outer.add_cte(page, audit_row), values  # the page first: the others read it


def search_page(principal: Principal, q: PatientSearchQuery) -> tuple[list[dict[str, Any]], str | None]:
    """One page as the API's JSON documents, with its ``patient.search`` audit row: one statement
    (``page_statement``) in autocommit mode (``services.patient_sql``). A cursor whose patient is
    gone is a 422.

    Not a prepared statement: after five executions PostgreSQL may switch a prepared statement to
    a generic plan, and for searches that plan (values and LIMIT unknown) scans the patients table
    sequentially (seen with EXPLAIN EXECUTE under plan_cache_mode=force_generic_plan on the plan
    tests' data). An unnamed statement is planned for its values every time; it is sent in one
    round trip (``patient_sql.PIPELINED``) rather than pg8000's three."""
    from shared.services.patient_sql import PIPELINED, autocommit  # noqa: PLC0415

    statement, values = page_statement(principal, q)
    with autocommit() as conn:
        docs, ok = conn.execute(statement, values, execution_options=PIPELINED).one()
    if not ok:
        raise cursor.invalid()
    more = len(docs) > q.limit
    docs = docs[: q.limit]
    return docs, cursor.encode(CURSOR_KIND, uuid.UUID(docs[-1]["id"])) if more else None
