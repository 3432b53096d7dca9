"""Opaque page cursors: ``base64url("<kind>:<key>")`` where the key is an id, never patient data.

A page continues after the row the cursor names (its sort key is looked up again), so a URL
carries no names, and a cursor from one list is refused by another.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

import sqlalchemy as sa

from shared.db import UnitOfWork
from shared.errors import ValidationFailed


def encode(kind: str, key: uuid.UUID | int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode().rstrip("=")


def invalid() -> ValidationFailed:
    return ValidationFailed(
        [{"in": "query", "field": "cursor", "message": "is not a cursor this list issued", "code": "invalid_cursor"}]
    )


def _payload(kind: str, token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid() from None
    prefix, sep, payload = raw.partition(":")
    if prefix != kind or not sep:
        raise invalid()
    return payload


def decode_id(kind: str, token: str) -> uuid.UUID:
    try:
        return uuid.UUID(_payload(kind, token))
    except ValueError:
        raise invalid() from None


def decode_int(kind: str, token: str) -> int:
    payload = _payload(kind, token)
    if not payload.isdigit() or len(payload) > 18:
        raise invalid()
    return int(payload)


def newest_first_page(
    uow: UnitOfWork, stmt: sa.Select[Any], model: Any, at: Any, kind: str, token: str | None, limit: int,
) -> tuple[list[Any], str | None]:
    """One page of ``stmt`` ordered newest first by (``at``, id), continuing after the row ``token`` names."""
    return keyset_page(uow, stmt, model, at, kind, token, limit, newest_first=True)


def keyset_page(
    uow: UnitOfWork, stmt: sa.Select[Any], model: Any, at: Any, kind: str, token: str | None, limit: int,
    *, newest_first: bool,
) -> tuple[list[Any], str | None]:
    """One page of ``stmt`` ordered by (``at``, id), descending or ascending, after the row ``token`` names.

    ``at`` may be an expression (``coalesce(observed_at, created_at)``); it must never be NULL.
    """
    if token:
        last_id = decode_id(kind, token)
        last_at = uow.session.scalar(sa.select(at).where(model.id == last_id))
        if last_at is None:
            raise invalid()
        key, last = sa.tuple_(at, model.id), sa.tuple_(sa.literal(last_at), sa.literal(last_id))
        stmt = stmt.where(key < last if newest_first else key > last)
    order = (at.desc(), model.id.desc()) if newest_first else (at.asc(), model.id.asc())
    rows = list(uow.session.scalars(stmt.order_by(*order).limit(limit + 1)))
    return rows[:limit], encode(kind, rows[limit - 1].id) if len(rows) > limit else None
