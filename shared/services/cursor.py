"""Opaque page cursors: ``base64url("<kind>:<key>")`` where the key is an id, never patient data.

A page continues after the row the cursor names (its sort key is looked up again), so a URL
carries no names, and a cursor from one list is refused by another.
"""

from __future__ import annotations

import base64
import binascii
import uuid

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
