"""GET /patients: every filter is an index lookup, pages follow a stable keyset order.

Order: ``(family_norm, id)`` (index ``ix_patients_family_norm_id``; ``ix_patients_status_family_norm_id``
for one status). Name words are prefix ranges on ``patient_name_tokens.token`` (collation "C",
``token >= w AND token < w⁺``, which stays an index range even in a generic prepared plan). A
search by name words alone takes its page from the tokens (``_token_page``: their rows carry the
patient's ``family_norm`` and ``status``); with any other filter the page is read from patients.
Identifiers and the MRN go through ``patient_identifiers`` (unique ``(system, value)``, and
``value``), so an identifier moved by a merge finds the surviving patient. ``docs/api.md`` shows
the plans; ``tests/integration/registry/test_search_plans.py`` checks them.

A search runs one SQL text per query shape (``Shape``: which filters, how many name words, a
cursor or not), compiled from the SQLAlchemy statement once per process and shape
(``search_sql``); a request computes its values (``search_values``) and binds them. No value is
ever written into the text: PostgreSQL logs a failed statement's text, and names, birth dates and
identifiers must not reach its log. A search by name words alone runs prepared (``runs_prepared``),
every other shape unnamed and planned for its values.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.dialects.postgresql.pg8000 import dialect as pg8000_dialect

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


def _has_word(word: Any, kind: Any, end: Any = None) -> sa.ColumnElement[bool]:
    """A name word as a prefix range on the tokens: ``word`` and ``end`` (its
    ``prefix_upper_bound``) are values, or parameters when the text is built for every value."""
    token = PatientNameToken.token
    upper = prefix_upper_bound(word) if end is None else end
    sub = sa.select(PatientNameToken.patient_id).where(token >= word, token < upper)
    if kind is not None:
        sub = sub.where(PatientNameToken.kind == kind)
    return Patient.id.in_(sub)


def _has_identifier(system: Any, value: Any) -> sa.ColumnElement[bool]:
    sub = sa.select(PatientIdentifier.patient_id).where(PatientIdentifier.value == value)
    if system is not None:
        sub = sub.where(PatientIdentifier.system == system)
    return Patient.id.in_(sub)


# patients as a lightweight table of the key columns (the cursor's row, the page's documents).
_KEYS = sa.table("patients", sa.column("id", sa.Uuid()), sa.column("family_norm", sa.String()))
# The name parameters and the kind of name word each one matches (None: family or any given name).
_NAME_FIELDS: tuple[tuple[str, str | None], ...] = (("name", None), ("family", "family"), ("given", "given"))


class Shape(NamedTuple):
    """What a search's SQL text depends on: which filters, how many name words, whether a cursor
    continues the page — never a value (those are bound: ``search_values``). The statuses (a
    subset of the three) are written into the text."""

    statuses: tuple[str, ...]
    words: tuple[int, ...]  # distinct words of name, family, given
    birth_date: bool
    identifier: str | None  # "value" (any system), "system|value", or None
    mrn: bool
    phone: bool
    email: bool
    cursor: bool


def search_values(q: PatientSearchQuery, cursor_id: uuid.UUID | None = None) -> tuple[Shape, dict[str, Any]]:
    """The query's shape and its values by bind name (the names ``_conditions`` binds)."""
    values: dict[str, Any] = {"page_limit": q.limit + 1}
    words = []
    for field, _kind in _NAME_FIELDS:
        found = dict.fromkeys(tokens(getattr(q, field) or ""))
        for i, word in enumerate(found):
            values[f"{field}{i}"], values[f"{field}{i}_end"] = word, prefix_upper_bound(word)
        words.append(len(found))
    if q.birth_date is not None:
        values["birth_date"] = q.birth_date
    identifier = None
    if (parts := q.identifier_parts()) is not None:
        system, values["identifier"] = parts
        identifier = "value" if system is None else "system|value"
        if system is not None:
            values["identifier_system"] = system
    if q.mrn is not None:
        values["mrn"], values["mrn_system"] = q.mrn, MRN_SYSTEM
    for field in ("phone", "email"):
        if getattr(q, field) is not None:
            values[field] = getattr(q, field)
    if cursor_id is not None:
        values["cursor_id"] = cursor_id
    return Shape(q.statuses(), tuple(words), q.birth_date is not None, identifier, q.mrn is not None,
                 q.phone is not None, q.email is not None, cursor_id is not None), values


def _param(name: str, type_: Any = None) -> sa.BindParameter[Any]:
    """A named parameter of a search's text, its value given at execution (``search_values``)."""
    return sa.bindparam(name, type_=type_, required=False)


def _conditions(shape: Shape) -> list[sa.ColumnElement[bool]]:
    """The page's WHERE, every value a named parameter (``search_values`` names them)."""
    conditions = [_status_in(Patient.status, shape)]
    for (field, kind), count in zip(_NAME_FIELDS, shape.words, strict=True):
        which = None if kind is None else sa.literal(kind, literal_execute=True)  # "family" or "given", in the text
        conditions += [_has_word(_param(f"{field}{i}"), which, _param(f"{field}{i}_end")) for i in range(count)]
    if shape.birth_date:
        conditions.append(Patient.birth_date == _param("birth_date"))
    if shape.identifier is not None:
        system = _param("identifier_system") if shape.identifier == "system|value" else None
        conditions.append(_has_identifier(system, _param("identifier")))
    if shape.mrn:
        conditions.append(_has_identifier(_param("mrn_system"), _param("mrn")))
    if shape.phone:
        conditions.append(Patient.phone == _param("phone"))
    if shape.email:
        conditions.append(Patient.email == _param("email"))
    if shape.cursor:
        conditions.append(_after_cursor(Patient.family_norm, Patient.id))
    return conditions


def _status_in(status: Any, shape: Shape) -> sa.ColumnElement[bool]:
    """The statuses, written into the text: a subset of three fixed words, no patient data."""
    return status.in_(sa.bindparam("statuses", shape.statuses, expanding=True, literal_execute=True))


def _after_cursor(family_norm: Any, patient_id: Any) -> sa.ColumnElement[bool]:
    """Keys after the cursor's patient in the order ``(family_norm, id)``."""
    last = _KEYS.alias("cursor_row")
    last_family = sa.select(last.c.family_norm).where(last.c.id == _param("cursor_id", sa.Uuid())).scalar_subquery()
    return sa.tuple_(family_norm, patient_id) > sa.tuple_(last_family, _param("cursor_id", sa.Uuid()))


def _by_name_only(shape: Shape) -> bool:
    """Name words and nothing else but statuses and a cursor: the page comes from the tokens."""
    return any(shape.words) and not (shape.birth_date or shape.identifier or shape.mrn or shape.phone or shape.email)


def _token_page(shape: Shape) -> sa.Select[Any]:
    """The page of a search by name words only, from the tokens alone (their rows carry the
    patient's ``family_norm`` and ``status``, migration 0017): each word's prefix range in
    ``ix_patient_name_tokens_page``, index-only, the first filtered by status and the cursor; the
    ranges intersected as ``(family_norm, patient_id)`` (which also makes a patient with two tokens
    in a range one row); the page ordered ``(family_norm, id)``.

    Never a probe of ``patients`` per match, never a scan of every patient. An intersection, not a
    semi-join: whatever the estimates, each range is read once (a semi-join planned for an
    estimate of one row for "wilson" read the whole range of "ama" again for each of its 900 rows:
    90 ms), so the work is the words' ranges, whatever the values.

    Each word, range bound and the LIMIT is ``(SELECT $n)`` (``_unseen``): this text runs prepared
    (``runs_prepared``), and its plan is the same whether PostgreSQL plans it for the values or not."""
    token = PatientNameToken.__table__.c
    parts = []
    for (field, kind), count in zip(_NAME_FIELDS, shape.words, strict=True):
        for i in range(count):
            part = sa.select(token.family_norm, token.patient_id).where(
                token.token >= _unseen(f"{field}{i}", token.token.type),
                token.token < _unseen(f"{field}{i}_end", token.token.type))
            if kind is not None:
                part = part.where(token.kind == sa.literal(kind, literal_execute=True))
            if not parts:
                part = part.where(_status_in(token.status, shape))
                if shape.cursor:
                    part = part.where(_after_cursor(token.family_norm, token.patient_id))
            parts.append(part)
    matches = (sa.intersect(*parts) if len(parts) > 1 else parts[0].distinct()).subquery("matches")
    return (
        sa.select(matches.c.patient_id.label("id"), matches.c.family_norm)
        .order_by(matches.c.family_norm, matches.c.patient_id)
        .limit(_unseen("page_limit", sa.Integer()))
    )


def runs_prepared(shape: Shape) -> bool:
    """Whether this shape's statement runs prepared: a search by name words only (``_token_page``).

    PostgreSQL plans a prepared statement for its values five times, then keeps its generic plan
    (planned once, values unknown) if that plan's estimated cost is no worse than the custom plans'
    (``plan_cache_mode=auto``). With the words and the LIMIT as plain parameters the generic plan
    costs more (a default range selectivity against the histogram's few rows, 10 % of the rows
    against the LIMIT's 21), so every search was planned again; written ``(SELECT $n)`` (an
    InitPlan, whose value neither plan sees) both plans are the same plan, the generic one is kept
    from the sixth execution, and a search is not planned again (PostgreSQL CPU per search ≈ 1.35 →
    ≈ 0.9 ms at 100,000 patients, docs/performance.md). Other shapes stay unprepared: their plans
    depend on the values (a generic plan of a birth-date or identifier search scans patients)."""
    return _by_name_only(shape)


def _unseen(name: str, type_: Any) -> sa.ScalarSelect[Any]:
    """The parameter ``name`` as ``(SELECT $n)``: an InitPlan, evaluated once when the statement
    starts, that the planner does not see through, values given or not (``runs_prepared``)."""
    return sa.select(_param(name, type_)).scalar_subquery()


def _page(shape: Shape) -> sa.Select[Any]:
    """The page query's keys ``(id, family_norm)`` (``page_limit``: ``limit + 1`` rows, one more
    tells whether a next page exists) in the keyset order ``(family_norm, id)``."""
    if _by_name_only(shape):
        return _token_page(shape)
    # With a name word the matches come from the token index (a few hundred rows at most for a real
    # word); ordering by an expression the (family_norm, id) index cannot provide keeps the planner
    # from walking that index through every patient and probing the tokens for each (200 ms for
    # name=von at 100,000 patients). Without one, the index order is the cheap plan and stays.
    family_order = Patient.family_norm.concat(sa.literal("", literal_execute=True)) if any(shape.words) \
        else Patient.family_norm
    return (
        sa.select(Patient.id, Patient.family_norm)
        .where(*_conditions(shape))
        .order_by(family_order, Patient.id)
        .limit(_param("page_limit", sa.Integer()))
    )


def build_search(q: PatientSearchQuery) -> sa.Select[Any]:
    """The page query of ``q`` (``_page``) with its values in place of the parameters, typed by the values as
    a statement written with them would be (``tests/integration/registry/test_search_plans.py``
    EXPLAINs it compiled with literal values)."""
    shape, values = search_values(q)

    def value(element: Any) -> Any:
        return sa.literal(values[element.key]) if isinstance(element, sa.BindParameter) and element.key in values else None

    return sa.sql.visitors.replacement_traverse(_page(shape), {}, value)  # type: ignore[no-any-return]


def _outer(shape: Shape) -> tuple[sa.Select[Any], sa.CTE]:
    """Everything of a search's statement but the page (``"page"``, referenced here by name): the
    audit insert of what the page shows (``shown``: the ids of its first ``limit`` rows, in order), and
    one row of (the shown documents as compact JSON text, the id of the last one if the page has a
    row more — the next cursor's key — and whether the cursor is valid). The documents' text is the
    response's ``items`` as PostgreSQL writes it (``patient_sql.json_array``), never decoded: only
    the shown rows are built (the row more only tells that a next page exists). A cursor whose
    patient is gone makes the audit insert write nothing."""
    from shared.services.patient_sql import json_array, patient_json  # noqa: PLC0415

    def const(value: str, type_: Any = None) -> sa.BindParameter[Any]:  # written into the text
        return sa.literal(value, type_, literal_execute=True)

    page = sa.table("page", sa.column("id", sa.Uuid()), sa.column("family_norm", sa.String()))
    order = (page.c.family_norm, page.c.id)
    valid: sa.ColumnElement[bool] = sa.true()
    if shape.cursor:
        last = _KEYS.alias("cursor_row")
        valid = sa.exists().where(last.c.id == _param("cursor_id", sa.Uuid()))
    shown_limit = _unseen("s_limit", sa.Integer()) if runs_prepared(shape) else _param("s_limit", sa.Integer())
    shown = sa.select(sa.func.array(sa.select(page.c.id).order_by(*order).limit(shown_limit)
                                    .scalar_subquery()).label("ids")).cte("shown")
    table = AuditEntry.__table__
    audit_row = sa.insert(table).from_select(
        ["at", "principal", "principal_id", "action", "patient_ids", "request_id", "outcome", "details"],
        sa.select(
            _param("s_at", table.c.at.type), _param("s_principal", table.c.principal.type),
            _param("s_principal_id", table.c.principal_id.type),
            const("patient.search", table.c.action.type), shown.c.ids,
            _param("s_request_id", table.c.request_id.type), const("success", table.c.outcome.type),
            sa.func.jsonb_build_object(const("params"), _param("s_params", JSONB),
                                       const("returned"), sa.func.cardinality(shown.c.ids)),
        ).where(valid),
    ).cte("audit")
    # the shown ids joined back to patients by primary key, in the page's order (ordinality)
    items = sa.literal_column(json_array(
        patient_json("found"),
        "shown, unnest(shown.ids) WITH ORDINALITY AS listed(id, n) JOIN patients AS found ON found.id = listed.id",
        "listed.n") + "::text")
    # the page holds limit + 1 rows when a next page exists: its cursor names the last row shown
    next_key = sa.literal_column("(SELECT CASE WHEN (SELECT count(*) FROM page) > cardinality(shown.ids) "
                                 "THEN (shown.ids[cardinality(shown.ids)])::text END FROM shown)")
    return sa.select(items, next_key, valid), audit_row


_DIALECT = pg8000_dialect()  # the engine's driver; the text does not depend on the server's version


@functools.lru_cache(maxsize=256)
def search_sql(shape: Shape) -> tuple[str, tuple[str, ...]]:
    """The one statement of every search of this shape, as SQL text (pg8000's ``%s`` placeholders),
    and the names of its parameters in order: the page (``_page``, keys only: the documents join
    its few rows back to patients by primary key) as a CTE, then ``_outer``. Compiled once per
    process and shape; a request only binds its values, so no name, birth date or identifier is
    ever part of the text."""
    page = _page(shape).cte("page")
    outer, audit_row = _outer(shape)
    statement = outer.add_cte(page, audit_row)  # the page first: the others read it
    compiled = statement.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
    return compiled.string, tuple(compiled.positiontup or ())


@functools.lru_cache(maxsize=512)  # a subset of PatientSearchQuery.used()'s nine names
def _params_json(used: tuple[str, ...]) -> str:
    """The audit row's ``params``: the names of the filters in use, as JSON (``patient_sql.dumps``)."""
    from shared.services.patient_sql import dumps  # noqa: PLC0415

    return dumps(list(used))


def search_statement(principal: Principal, q: PatientSearchQuery) -> tuple[Shape, str, tuple[Any, ...]]:
    """The query's shape, its statement (``search_sql``) and the values to bind, the audit row's included."""
    shape, values = search_values(q, cursor.decode_id(CURSOR_KIND, q.cursor) if q.cursor else None)
    values.update(s_limit=q.limit, s_at=utcnow(), s_principal=principal.name, s_principal_id=principal.key_id,
                  s_request_id=current_request_id(), s_params=_params_json(tuple(q.used())))
    sql, names = search_sql(shape)
    return shape, sql, tuple(values[n] for n in names)


def search_page(principal: Principal, q: PatientSearchQuery) -> str:
    """One page as the API's JSON document ``{"items": […], "next_cursor": …}`` (``PatientPage``),
    its items PostgreSQL's compact text (``_outer``) as is, with its ``patient.search`` audit row:
    one statement (``search_statement``) in autocommit mode on a driver connection
    (``services.patient_sql``), no SQLAlchemy per request. A cursor whose patient is gone is a 422.

    A search by name words only runs as a statement prepared on the connection
    (``patient_sql.prepared_rows``: one Bind/Execute round trip, planned once; ``runs_prepared`` says
    why its plan does not need the values). Any other shape is unnamed, planned for its values every
    time, and sent in one round trip (``patient_sql.pipelined_rows``): a generic plan of those
    (values and LIMIT unknown) scans the patients table sequentially (seen with EXPLAIN EXECUTE
    under plan_cache_mode=force_generic_plan on the plan tests' data)."""
    from shared.services.patient_sql import pipelined_rows, prepared_rows  # noqa: PLC0415

    shape, sql, params = search_statement(principal, q)
    [(items, next_key, ok)] = (prepared_rows if runs_prepared(shape) else pipelined_rows)(sql, params)
    if not ok:
        raise cursor.invalid()
    # a cursor is base64url: a JSON string as it stands, nothing to escape
    next_cursor = "null" if next_key is None else f'"{cursor.encode(CURSOR_KIND, next_key)}"'
    return f'{{"items":{items},"next_cursor":{next_cursor}}}'
