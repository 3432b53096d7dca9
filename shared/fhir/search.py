"""FHIR search semantics shared by every resource type: value lists, tokens, dates, references,
``_id``, ``_lastUpdated``, ``_sort`` and keyset pages.

A parameter given several times is AND (``name=a&name=b``: both); a comma inside one value is OR
(``name=a,b``: either), as the FHIR search specification says. A parameter that cannot take a list
(``_sort`` with two keys, ``_count``) answers 400, never an empty result.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from shared.db import UnitOfWork
from shared.errors import ValidationFailed
from shared.fhir.params import bad_param, birthdate_bounds, split_escaped
from shared.instants import utc_instant
from shared.services import cursor

MAX_VALUES = 20
Raw = str | list[str] | None


def and_or(raw: Raw, field: str, *, unescape: bool = True) -> list[list[str]]:
    """``raw`` (one value, or the values of a repeated parameter) as AND groups of OR options.
    ``unescape=False`` keeps ``\\|`` escaped for a token's second split."""
    if raw is None:
        return []
    groups = []
    for value in [raw] if isinstance(raw, str) else raw:
        options = [o.strip() for o in split_escaped(value, ",", unescape=unescape)]
        if not all(options):
            raise bad_param(field, "has an empty value in its list")
        groups.append(options)
    if sum(len(g) for g in groups) > MAX_VALUES:
        raise bad_param(field, f"give at most {MAX_VALUES} values")
    return groups


def all_of(raw: Raw, field: str, condition: Callable[[str], sa.ColumnElement[bool]],
           *, unescape: bool = True) -> list[sa.ColumnElement[bool]]:
    """One condition per repetition of ``field``, each the OR of its comma-separated values."""
    return [sa.or_(*(condition(v) for v in options)) for options in and_or(raw, field, unescape=unescape)]


# --- tokens -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    """A token value: ``system`` None = any system, "" = no system; ``code`` None = any code."""
    system: str | None
    code: str | None


def token(value: str, field: str) -> Token:
    """``code``, ``system|code``, ``system|`` (any code in the system) or ``|code`` (no system)."""
    pieces = [p.strip() for p in split_escaped(value, "|")]
    if len(pieces) == 1 and pieces[0]:
        return Token(None, pieces[0])
    if len(pieces) == 2 and (pieces[0] or pieces[1]):
        return Token(pieces[0], pieces[1] or None)
    raise bad_param(field, "use code, system|code, system| or |code")


# --- references and ids -------------------------------------------------------------------------

def reference_id(value: str, field: str, kind: str) -> uuid.UUID | None:
    """``<id>``, ``<kind>/<id>`` or an absolute reference → the id; None for an id that cannot be ours
    (it matches nothing). A reference to another type is a 400."""
    ref = value.strip().rstrip("/")
    if "/" in ref:
        prefix, _, ref = ref.rpartition("/")
        if not (prefix == kind or prefix.endswith("/" + kind)):
            raise bad_param(field, f"give the {kind} id, or {kind}/<id>")
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


def id_condition(column: sa.ColumnElement[Any], kind: str, field: str) -> Callable[[str], sa.ColumnElement[bool]]:
    def condition(value: str) -> sa.ColumnElement[bool]:
        rid = reference_id(value, field, kind)
        return column == rid if rid is not None else sa.false()
    return condition


# --- dates --------------------------------------------------------------------------------------

_DATETIME = re.compile(
    r"^(eq|ne|lt|le|gt|ge|sa|eb)?(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$")


def _zone(text: str | None) -> timezone:
    if text is None or text == "Z":
        return timezone.utc
    sign = 1 if text[0] == "+" else -1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _instant_period(m: re.Match[str]) -> tuple[datetime, datetime | None]:
    """[start, end) of a FHIR date/dateTime search value; a time without an offset is UTC."""
    year, month, day = int(m.group(2)), m.group(3), m.group(4)
    if m.group(5) is None:
        low, high = birthdate_bounds([m.group(0)[len(m.group(1) or ""):]])
        start = datetime(low.year, low.month, low.day, tzinfo=timezone.utc)  # type: ignore[union-attr]
        return start, datetime(high.year, high.month, high.day, tzinfo=timezone.utc) if high else None
    tz = _zone(m.group(9))
    second = m.group(7)
    start = datetime(year, int(month), int(day), int(m.group(5)), int(m.group(6)), int(second or 0),
                     int((m.group(8) or ".0")[1:7].ljust(6, "0")), tzinfo=tz)
    step = timedelta(microseconds=1) if m.group(8) else timedelta(seconds=1) if second else timedelta(minutes=1)
    try:
        return start, start + step
    except OverflowError:
        return start, None


def date_condition(column: sa.ColumnElement[Any], field: str) -> Callable[[str], sa.ColumnElement[bool]]:
    """A ``date`` search value with prefix eq (default), ne, lt, le, gt, ge, sa or eb, on an instant column."""
    def condition(value: str) -> sa.ColumnElement[bool]:
        m = _DATETIME.match(value)
        if not m:
            raise bad_param(field, "use YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][Z|±hh:mm], "
                                   "optionally prefixed eq, ne, lt, le, gt, ge, sa or eb")
        try:
            start, end = _instant_period(m)
        except (ValueError, TypeError):
            raise bad_param(field, "is not a calendar date and time") from None
        start_utc, end_utc = utc_instant(start), utc_instant(end) if end is not None else None
        if start_utc is None or (end is not None and end_utc is None):
            raise bad_param(field, "is outside the range of instants this server holds")
        start, end = start_utc, end_utc
        at_or_after_end = column >= end if end is not None else sa.false()
        before_end = column < end if end is not None else column.is_not(None)
        within = sa.and_(column >= start, before_end)
        return {"eq": within, "ne": sa.not_(within), "lt": column < start, "eb": column < start, "le": before_end,
                "gt": at_or_after_end, "sa": at_or_after_end, "ge": column >= start}[m.group(1) or "eq"]
    return condition


def birthdate_condition(column: sa.ColumnElement[date]) -> Callable[[str], sa.ColumnElement[bool]]:
    def condition(value: str) -> sa.ColumnElement[bool]:
        low, high = birthdate_bounds([value])
        parts = [column >= low] if low is not None else []
        if high is not None:
            parts.append(column < high)
        if low is not None and high is not None and low >= high:
            return sa.false()
        return sa.and_(sa.true(), *parts)
    return condition


# --- sort and pages -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Sort:
    """A keyset order: ``key`` then ``id``, both ascending or both descending."""
    key: sa.ColumnElement[Any]
    id: sa.ColumnElement[Any]
    descending: bool


def sort_of(raw: str | None, field_sorts: dict[str, tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]],
            default: Sort) -> Sort:
    """``_sort=key`` or ``-key`` (one key; a list is refused rather than half applied)."""
    if raw is None:
        return default
    if "," in raw:
        raise bad_param("_sort", "sort by one key")
    name = raw.strip()
    descending = name.startswith("-")
    name = name.lstrip("-")
    if name not in field_sorts:
        raise bad_param("_sort", f"sort by {', '.join(sorted(field_sorts))} (prefix - for descending)")
    key, id_ = field_sorts[name]
    return Sort(key, id_, descending)


def ordered(stmt: sa.Select[Any], sort: Sort, size: int) -> sa.Select[Any]:
    """``stmt`` in ``sort`` order, ``size`` + 1 rows (one more tells whether a next page exists)."""
    order: Sequence[Any] = (sort.key.desc(), sort.id.desc()) if sort.descending else (sort.key, sort.id)
    return stmt.order_by(*order).limit(size + 1)


def page(uow: UnitOfWork, stmt: sa.Select[Any], sort: Sort, kind: str, token_: str | None,
         size: int) -> tuple[list[Any], str | None]:
    """One keyset page of ``stmt`` in ``sort`` order after the row ``token_`` names, and the next cursor."""
    if size == 0:
        return [], None
    if token_:
        try:
            last_id = cursor.decode_id(kind, token_)
        except ValidationFailed:
            raise bad_param("_cursor", "is not a cursor this search issued") from None
        last_key = uow.session.execute(sa.select(sort.key).where(sort.id == last_id)).first()
        if last_key is None:
            raise bad_param("_cursor", "is not a cursor this search issued")
        after = sa.tuple_(sort.key, sort.id)
        mark = sa.tuple_(sa.literal(last_key[0]), sa.literal(last_id))
        stmt = stmt.where(after < mark if sort.descending else after > mark)
    rows = list(uow.session.scalars(ordered(stmt, sort, size)))
    more = len(rows) > size
    rows = rows[:size]
    return rows, cursor.encode(kind, rows[-1].id) if more else None


def count(uow: UnitOfWork, stmt: sa.Select[Any]) -> int:
    return uow.session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())) or 0
