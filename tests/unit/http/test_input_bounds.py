"""Every typed value a route accepts is bounded to what the database driver can send: each
integer has bounds inside PostgreSQL's bigint, each instant is a ``StorableDatetime``.

A field added later without bounds fails here, before a huge number or an instant like
0001-01-01T00:00:00+14:00 can reach pg8000 (which fails while converting it, mid-statement).
"""

from __future__ import annotations

import types
from datetime import date, datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import pytest
from pydantic import AfterValidator, AwareDatetime, BaseModel, NaiveDatetime

import shared.api.every_route  # noqa: F401  (registers every route; the api function loads them lazily)
from shared.http.routing import ROUTES
from shared.schemas.common import MAX_BIGINT, StorableDatetime

MIN_BIGINT = -MAX_BIGINT - 1
_STORABLE = next(m for m in get_args(StorableDatetime)[1:] if isinstance(m, AfterValidator)).func


def _bounds(metadata: list[Any]) -> tuple[int | None, int | None]:
    low = high = None
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            low = m.ge
        elif isinstance(m, annotated_types.Gt):
            low = m.gt + 1
        elif isinstance(m, annotated_types.Le):
            high = m.le
        elif isinstance(m, annotated_types.Lt):
            high = m.lt - 1
        elif isinstance(m, annotated_types.Interval):
            low = m.ge if m.ge is not None else (m.gt + 1 if m.gt is not None else low)
            high = m.le if m.le is not None else (m.lt - 1 if m.lt is not None else high)
    return low, high


def unbounded(tp: Any, metadata: list[Any], path: str, seen: set[type]) -> list[str]:
    """Paths of integer and date-time fields under ``tp`` that are not bounded."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        return unbounded(base, [*metadata, *meta], path, seen)
    if origin in (Union, types.UnionType):
        return [p for arg in get_args(tp) if arg is not type(None) for p in unbounded(arg, metadata, path, seen)]
    if origin is Literal:
        return []
    if origin is not None:  # list[...], dict[...]: the container's constraints are not its items'
        return [p for arg in get_args(tp) for p in unbounded(arg, [], f"{path}[]", seen)]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp in seen:
            return []
        seen.add(tp)
        return [p for name, f in tp.model_fields.items() for p in unbounded(f.annotation, list(f.metadata), f"{path}.{name}", seen)]
    if tp is bool:
        return []
    if tp is int:
        low, high = _bounds(metadata)
        ok = low is not None and high is not None and MIN_BIGINT <= low and high <= MAX_BIGINT
        return [] if ok else [f"{path}: int without bounds inside bigint"]
    if tp in (datetime, AwareDatetime, NaiveDatetime):
        ok = any(isinstance(m, AfterValidator) and m.func is _STORABLE for m in metadata)
        return [] if ok else [f"{path}: date-time that is not a StorableDatetime"]
    if tp is date:
        return []  # Python's dates (years 1-9999) are all PostgreSQL dates
    return []


def _models() -> list[tuple[str, type[BaseModel]]]:
    found = []
    for r in ROUTES:
        for kind, model in (("query", r.query), ("body", r.body)):
            if model is not None:
                found.append((f"{r.endpoint} {kind}", model))
    return found


@pytest.mark.parametrize(("where", "model"), _models(), ids=[w for w, _ in _models()])
def test_every_integer_and_instant_a_route_accepts_is_bounded(where: str, model: type[BaseModel]) -> None:
    assert unbounded(model, [], model.__name__, set()) == []


def test_the_checker_finds_unbounded_fields() -> None:
    class Loose(BaseModel):
        count: int
        since: AwareDatetime | None = None
        items: list[int] = []

    class Tight(BaseModel):
        count: int = 1
        since: StorableDatetime | None = None

    assert unbounded(Loose, [], "Loose", set()) == [
        "Loose.count: int without bounds inside bigint",
        "Loose.since: date-time that is not a StorableDatetime",
        "Loose.items[]: int without bounds inside bigint",
    ]
    assert unbounded(Tight, [], "Tight", set()) == ["Tight.count: int without bounds inside bigint"]
