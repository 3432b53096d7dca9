"""API keys, principals and scopes.

Tokens are ``pmk_`` + 32 random bytes (URL-safe base64); only their SHA-256 is stored (a token
has 256 bits of entropy, so a fast hash is the right tool — no password stretching needed).
Verified keys are cached in-process for ``API_KEY_CACHE_SECONDS``; a revocation therefore takes
effect within that many seconds on every instance. A lookup that fails (the database is down, a
connection broke) is a 503 with Retry-After and is not cached: only a lookup that ran can say
"no such key" (401).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.db import driver_connection, wire
from shared.errors import Conflict, NotFound, ServiceUnavailable, Unauthorized, ValidationFailed
from shared.log import get_logger
from shared.settings import get_settings

if TYPE_CHECKING:
    from shared.db import UnitOfWork
    from shared.models import ApiKey

log = get_logger(__name__)
SCOPES = frozenset({"patients:read", "patients:write", "lis:read", "lis:admin", "audit:read", "metrics:read", "admin"})
TOKEN_PREFIX = "pmk_"


@dataclass(frozen=True)
class Principal:
    key_id: uuid.UUID | None
    name: str
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


SYSTEM_LIS = Principal(key_id=None, name="system:lis-consumer", scopes=frozenset())
SYSTEM_JOBS = Principal(key_id=None, name="system:jobs", scopes=frozenset())
SYSTEM_NOTIFY = Principal(key_id=None, name="system:notify", scopes=frozenset())
SYSTEM_CLI = Principal(key_id=None, name="system:cli", scopes=frozenset({"admin"}))


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def create_api_key(uow: UnitOfWork, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.models import ApiKey  # noqa: PLC0415

    name = name.strip()
    problems = []
    if not name or len(name) > 100 or not name.isprintable():
        problems.append({"field": "name", "message": "1-100 printable characters"})
    unknown = sorted(set(scopes) - SCOPES)
    if unknown or not scopes:
        problems.append({"field": "scopes", "message": f"choose from {', '.join(sorted(SCOPES))}"})
    if problems:
        raise ValidationFailed(problems)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, token_hash=hash_token(token), token_prefix=token[:10], scopes=sorted(set(scopes)))
    exists = uow.session.scalar(sa.select(ApiKey.id).where(ApiKey.name == name))
    if exists:
        raise Conflict("An API key with this name exists")
    uow.session.add(key)
    uow.flush()
    return key, token


def list_api_keys(uow: UnitOfWork) -> list[ApiKey]:
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.models import ApiKey  # noqa: PLC0415

    return list(uow.session.scalars(sa.select(ApiKey).order_by(ApiKey.created_at)))


def revoke_api_key(uow: UnitOfWork, name: str) -> ApiKey:
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.models import ApiKey  # noqa: PLC0415
    from shared.models.base import utcnow  # noqa: PLC0415

    key = uow.session.scalar(sa.select(ApiKey).where(ApiKey.name == name))
    if key is None:
        raise NotFound("No API key with this name")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


class _KeyCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[bytes, tuple[float, Principal | None]] = {}

    def get(self, digest: bytes, ttl: float) -> tuple[bool, Principal | None]:
        if ttl <= 0:
            return False, None
        with self._lock:
            entry = self._entries.get(digest)
        if entry and time.monotonic() - entry[0] < ttl:
            return True, entry[1]
        return False, None

    def put(self, digest: bytes, principal: Principal | None) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[digest] = (time.monotonic(), principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_cache = _KeyCache()


def clear_key_cache() -> None:
    _cache.clear()


_LOOKUP = "SELECT id, name, scopes, revoked_at FROM api_keys WHERE token_hash = %s"


def _lookup(digest: bytes) -> Any | None:
    """The key's row (``id``, ``name``, ``scopes``, ``revoked_at``), in one prepared statement on a
    pooled connection in the driver's autocommit mode: a read-only lookup needs no transaction, so no
    BEGIN/COMMIT round trips, and no SQLAlchemy."""
    with driver_connection() as con:
        found = wire.rows_of(wire.execute(con, _LOOKUP, (digest,), prepared=True))
    return found[0] if found else None


def authenticate(authorization: str | None) -> Principal:
    """The principal behind an ``Authorization: Bearer <token>`` header, or :class:`Unauthorized`."""
    if not authorization:
        raise Unauthorized("Send Authorization: Bearer <API key>")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthorized("Malformed bearer token")
    digest = hash_token(token)
    ttl = get_settings().api_key_cache_seconds
    hit, principal = _cache.get(digest, ttl)
    if not hit:
        try:
            row = _lookup(digest)
        except Exception as exc:  # noqa: BLE001 — the key may well be valid: never a 401, never cached
            log.warning("api key lookup failed", extra={"fields": {"error_type": type(exc).__name__}})
            raise ServiceUnavailable("Authentication is unavailable; retry shortly") from None
        principal = None
        if row is not None and row.revoked_at is None:
            principal = Principal(key_id=row.id, name=row.name, scopes=frozenset(row.scopes))
        _cache.put(digest, principal)
    if principal is None:
        raise Unauthorized("Unknown or revoked API key")
    return principal
