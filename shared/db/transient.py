"""Which database failures are transient: retrying later could succeed (a 503 with Retry-After for
the api, a redelivery for a CloudEvent consumer). Knows SQLAlchemy's wrapped errors (the ORM paths)
and pg8000's own (the driver paths), without importing SQLAlchemy."""

from __future__ import annotations

import sys
from typing import Any


def is_transient_db_error(exc: BaseException) -> bool:
    """True when retrying later could succeed: connection lost, server down, pool exhausted,
    serialization failure, deadlock, statement timeout, lock timeout. Knows SQLAlchemy's wrapped
    errors (the ORM paths) and pg8000's own (the driver paths)."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None:
        if isinstance(exc, sa_exc.TimeoutError):  # SQLAlchemy's pool exhausted
            return True
        if isinstance(exc, sa_exc.DBAPIError):
            if exc.connection_invalidated:
                return True
            if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
                return True
            return _transient_server_error(exc.orig)
    if type(exc).__module__.startswith("pg8000"):
        from pg8000.exceptions import InterfaceError  # noqa: PLC0415

        if isinstance(exc, InterfaceError):  # network error, connection closed, cannot connect
            return True
        return _transient_server_error(exc)
    return isinstance(exc, (ConnectionError, TimeoutError, OSError))  # PoolExhausted is a TimeoutError


def _transient_server_error(orig: Any) -> bool:
    code = _sqlstate(orig)
    if code == "55000":  # object_not_in_prerequisite_state: transient only as the server refusing the session
        return _severity(orig) == "FATAL"
    return code is not None and (code.startswith("08") or code in _TRANSIENT_SQLSTATES)


# Retrying later can succeed: serialization failure, deadlock, out of resources (53xxx: too many
# connections, out of memory), lock not available, object in use (another session holds it),
# statement timeout / cancel, and the server ending sessions: admin shutdown, crash shutdown, cannot
# connect now (starting up, in recovery), idle-session timeout. Not 57P04 (database dropped: no retry
# brings it back) and not 55P02/55P04 (a parameter or enum value used wrongly: our bug). 55000 is
# decided above: FATAL at connect is "database is not currently accepting connections" (ALLOW_CONNECTIONS
# false during maintenance, or while it is being copied); in a statement it is a programming error
# (currval before nextval).
_TRANSIENT_SQLSTATES = {"40001", "40P01", "53000", "53100", "53200", "53300", "53400", "55P03", "55006", "57014",
                        "57P01", "57P02", "57P03", "57P05"}


def _sqlstate(orig: Any) -> str | None:
    args = getattr(orig, "args", None)
    if args and isinstance(args[0], dict):
        return args[0].get("C")
    return None


def _severity(orig: Any) -> str | None:
    """The error's severity, not localised (V; S before PostgreSQL 9.6)."""
    args = getattr(orig, "args", None)
    if args and isinstance(args[0], dict):
        return args[0].get("V") or args[0].get("S")
    return None
