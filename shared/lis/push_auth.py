"""Pub/Sub push authentication: the ``Authorization: Bearer`` OIDC token of a push subscription.

Enabled by ``PUSH_AUDIENCE``. The token must be an RS256 JWT signed by a key of the JWKS at
``PUSH_CERTS_URL`` (fetched once, cached, refetched for an unknown ``kid``), issued by
``PUSH_ISSUER`` (Google's issuer in either of its two spellings), for ``PUSH_AUDIENCE``, not
expired, and — when ``PUSH_SERVICE_ACCOUNT`` is set — carrying that verified ``email``.

A request without a valid token is not from our subscription: 401, nothing stored. When the
JWKS cannot be fetched the request cannot be judged: 503, so Pub/Sub retries.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    import jwt

_GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
_LEEWAY_SECONDS = 30
_JWKS_LIFESPAN_SECONDS = 3600

_lock = threading.Lock()
_clients: dict[str, jwt.PyJWKClient] = {}


class PushAuthError(Exception):
    """The token is missing or does not verify (401). `reason` is a fixed code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PushAuthUnavailable(Exception):
    """The signing keys could not be fetched (503)."""


def enabled(settings: Settings | None = None) -> bool:
    return bool((settings or get_settings()).push_audience)


def _client(url: str) -> jwt.PyJWKClient:
    import jwt  # noqa: PLC0415 - PyJWT and cryptography (~30 ms) load with the first token to verify, not at cold start

    with _lock:
        client = _clients.get(url)
        if client is None:
            try:
                client = jwt.PyJWKClient(url, cache_keys=True, cache_jwk_set=True, lifespan=_JWKS_LIFESPAN_SECONDS, timeout=5)
            except jwt.PyJWKClientError:
                raise PushAuthUnavailable("jwks_url_unusable") from None  # misconfiguration: retry once fixed
            _clients[url] = client
        return client


def reset_cache() -> None:
    """Forget fetched key sets (tests that rotate keys or change PUSH_CERTS_URL)."""
    with _lock:
        _clients.clear()


def verify(authorization: str | None, settings: Settings | None = None) -> dict[str, Any]:
    """The verified claims of a push request's bearer token; raises PushAuthError / PushAuthUnavailable."""
    settings = settings or get_settings()
    if not authorization:
        raise PushAuthError("missing_token")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 8192:
        raise PushAuthError("malformed_token")
    import jwt  # noqa: PLC0415 - see _client

    try:
        key = _client(settings.push_certs_url).get_signing_key_from_jwt(token)
    except jwt.PyJWKClientConnectionError:
        raise PushAuthUnavailable("jwks_unavailable") from None
    except (jwt.PyJWKClientError, jwt.InvalidTokenError):
        raise PushAuthError("unknown_signing_key") from None
    issuers = _GOOGLE_ISSUERS if settings.push_issuer in _GOOGLE_ISSUERS else (settings.push_issuer,)
    try:
        claims = jwt.decode(
            token, key.key, algorithms=["RS256"], audience=settings.push_audience, issuer=issuers,
            leeway=_LEEWAY_SECONDS, options={"require": ["exp", "iat", "iss", "aud"]},
        )
    except jwt.InvalidTokenError as exc:
        raise PushAuthError(f"invalid_token:{type(exc).__name__}") from None
    expected = settings.push_service_account
    if expected and (claims.get("email") != expected or claims.get("email_verified") is not True):
        raise PushAuthError("wrong_service_account")
    return claims
