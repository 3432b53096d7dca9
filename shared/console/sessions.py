"""Console sessions: an API key pasted once, then a cookie holding a random session id.

* The id is 256 random bits; the table stores its SHA-256 only (``console_sessions.id_hash``).
* The cookie is HttpOnly, SameSite=Strict, Path=/console, Secure unless ``CONSOLE_COOKIE_SECURE``
  is off (plain-HTTP loopback only), and lives ``CONSOLE_SESSION_HOURS`` — as does the row; an
  expired row signs no one in and is deleted at the next sign-in.
* The key behind a session is read at every request: revoking it, or changing its scopes, takes
  effect at once. The principal is the key's, so the audit trail names the key as the API would.
* CSRF: every form carries HMAC-SHA256(session id, "csrf"), checked on every POST. It reveals
  nothing of the id and cannot be made without it. The sign-in form, before any session exists,
  carries a random value that must equal a short-lived cookie (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import Response

from shared import audit
from shared.auth import Principal
from shared.db import unit_of_work
from shared.models import ApiKey, ConsoleSession
from shared.models.base import utcnow
from shared.settings import get_settings

COOKIE = "pm_console"
SIGN_IN_COOKIE = "pm_console_sign_in"
COOKIE_PATH = "/console"
SIGN_IN_COOKIE_SECONDS = 3600


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("ascii")).digest()


def start(principal: Principal) -> str:
    """A new session for the key behind ``principal``; returns the id the cookie carries."""
    assert principal.key_id is not None
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    with unit_of_work() as uow:
        uow.session.execute(sa.delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
        uow.session.execute(sa.insert(ConsoleSession).values(
            id_hash=_hash(session_id), api_key_id=principal.key_id, created_at=now,
            expires_at=now + timedelta(hours=get_settings().console_session_hours)))
        audit.record(uow, principal, "console.sign_in", [])
    return session_id


def principal_for(session_id: str | None) -> Principal | None:
    """The principal of a live session (not expired, its key not revoked), else None."""
    if not session_id or len(session_id) > 100 or not session_id.isascii():
        return None
    with unit_of_work() as uow:
        row = uow.session.execute(
            sa.select(ApiKey.id, ApiKey.name, ApiKey.scopes)
            .join(ConsoleSession, ConsoleSession.api_key_id == ApiKey.id)
            .where(ConsoleSession.id_hash == _hash(session_id), ConsoleSession.expires_at > utcnow(),
                   ApiKey.revoked_at.is_(None))
        ).first()
    return Principal(key_id=row.id, name=row.name, scopes=frozenset(row.scopes)) if row else None


def end(session_id: str, principal: Principal) -> None:
    with unit_of_work() as uow:
        uow.session.execute(sa.delete(ConsoleSession).where(ConsoleSession.id_hash == _hash(session_id)))
        audit.record(uow, principal, "console.sign_out", [])


def csrf_token(session_id: str) -> str:
    return hmac.new(session_id.encode("ascii"), b"csrf", hashlib.sha256).hexdigest()


def tokens_match(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(32)


def _cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, secure=get_settings().console_cookie_secure,
                        httponly=True, samesite="Strict")


def set_session_cookie(response: Response, session_id: str) -> None:
    _cookie(response, COOKIE, session_id, int(get_settings().console_session_hours * 3600))
    response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)


def set_sign_in_cookie(response: Response, token: str) -> None:
    _cookie(response, SIGN_IN_COOKIE, token, SIGN_IN_COOKIE_SECONDS)


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=get_settings().console_cookie_secure,
                           httponly=True, samesite="Strict")
