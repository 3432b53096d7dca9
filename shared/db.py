"""One engine per process and the unit of work.

The pool holds up to one connection per request thread (``Settings.pool_size``), opened on demand:
a process starts with one, opened by ``warm_up`` in the background as its worker starts
(``shared.serve``), so the first request neither connects nor configures the ORM mappers when it
arrives after that, and the pool grows only as concurrent requests need more. Services receive a
:class:`UnitOfWork` and never commit; the boundary (an HTTP handler or a CloudEvent consumer)
opens it with ``with unit_of_work() as uow:`` which commits on success and rolls back on any
error. Work that must wait for the commit (publishing outbox events) registers an
``after_commit`` callback.

A pooled connection that saw an error the server did not send is discarded, never reused
(`_discard_out_of_step_connection`): pg8000 can fail after it sent part of a statement, and the
next statement on that connection would read the previous one's answers.
"""

from __future__ import annotations

import functools
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.orm import Session, sessionmaker

from shared.errors import ServiceUnavailable
from shared.log import get_logger
from shared.settings import get_settings

log = get_logger(__name__)

_lock = threading.Lock()
_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None


def resolve_database_url() -> str:
    """DATABASE_URL, or the embedded PostgreSQL under DATA_DIR when it is unset."""
    settings = get_settings()
    if settings.database_url:
        return settings.database_url
    from shared.devtools.embedded_pg import start_embedded  # noqa: PLC0415

    return start_embedded(settings.data_dir)


def _cache_pg8000_query_conversion() -> None:
    """Convert each SQL text from ``%s`` to ``$n`` placeholders once, not on every execution.

    pg8000 rewrites the placeholders of every statement character by character in Python
    (``pg8000.dbapi.convert_paramstyle``, ~0.2 ms a statement). For the ``format`` style SQLAlchemy
    uses, the rewritten text depends on the SQL text alone and the arguments pass through
    unchanged, so caching by text is exact. Other styles keep the original function.
    """
    import pg8000.dbapi as dbapi  # noqa: PLC0415
    import pg8000.legacy as legacy  # noqa: PLC0415

    original = dbapi.convert_paramstyle
    if getattr(original, "cached_by_patient_mgt", False):
        return

    @functools.lru_cache(maxsize=4096)
    def format_query(query: str) -> str:
        return original("format", query, ())[0]

    def convert_paramstyle(style: str, query: str, args: Any) -> tuple[str, Any]:
        if style == "format":
            return format_query(query), args
        return original(style, query, args)

    convert_paramstyle.cached_by_patient_mgt = True  # type: ignore[attr-defined]
    convert_paramstyle.original = original  # type: ignore[attr-defined]
    dbapi.convert_paramstyle = convert_paramstyle
    # SQLAlchemy's pg8000 dialect uses the legacy cursor, which imported the function by name.
    legacy.convert_paramstyle = convert_paramstyle


def make_engine(url: str, *, pool_size: int | None = None) -> Engine:
    _cache_pg8000_query_conversion()
    settings = get_settings()
    size = pool_size or settings.pool_size()
    engine = sa.create_engine(
        url,
        pool_size=size,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout_seconds,
        # No pre-ping: it costs a round trip on every checkout. A connection that died with the
        # server fails its request with a disconnect error, which answers 503 (Retry-After) and makes
        # SQLAlchemy invalidate the whole pool, so the next requests get fresh connections
        # (tests/fault/test_database_outage.py restarts and freezes the server under load). A
        # connection left out of step by a driver-side error is discarded by the handle_error hook.
        pool_pre_ping=False,
        pool_recycle=1800,
        # Last in, first out: a request takes the connection used last — its statements already
        # prepared (shared.services.patient_sql prepares per connection), and the pool's other
        # connections stay idle instead of being cycled, so a discarded one is reopened only when
        # concurrency needs it.
        pool_use_lifo=True,
        # pg8000: fail fast when the server is down instead of waiting on the OS timeout.
        connect_args={"timeout": 5},
    )
    statement_timeout = settings.db_statement_timeout_ms

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        _no_delay(dbapi_conn)
        cur = dbapi_conn.cursor()
        cur.execute("SET TIME ZONE 'UTC'")
        if statement_timeout:
            cur.execute(f"SET statement_timeout = {int(statement_timeout)}")
        cur.close()
        # pg8000 starts a transaction on the first statement; leave the connection clean.
        dbapi_conn.commit()

    event.listen(engine, "handle_error", _discard_out_of_step_connection)
    engine.dialect.do_commit = _commit  # type: ignore[method-assign]
    return engine


def _commit(dbapi_conn: Any) -> None:
    """``COMMIT`` as a simple query, one round trip: pg8000's ``commit()`` sends it as an unnamed
    extended-protocol statement, three (Parse, Describe + Bind, Execute). The same answer either way,
    errors included (a failed transaction's COMMIT raises "in failed transaction block")."""
    dbapi_conn.execute_simple("commit")


def _no_delay(dbapi_conn: Any) -> None:
    """Send each statement's last segment at once (TCP_NODELAY). pg8000 writes a message larger than its
    8 KB buffer in pieces; with Nagle's algorithm the last piece waits for the server's delayed ACK
    (~40 ms), which a LIS message's final statement (its results as one JSON parameter) hit about one
    time in five. Unix sockets have no such delay."""
    sock = getattr(dbapi_conn, "_usock", None)
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _discard_out_of_step_connection(ctx: ExceptionContext) -> None:
    """Invalidate the connection behind any error that PostgreSQL did not send.

    PostgreSQL's own errors (an ErrorResponse: pg8000 raises them with the fields as a dict, the
    SQLSTATE under ``"C"``) arrive after the server's ReadyForQuery, so the protocol stream is in
    step and the connection can be reused. Anything else may have struck mid-exchange: pg8000's
    ``execute_unnamed`` sends PARSE+SYNC and DESCRIBE+SYNC *before* it converts the parameters, so
    a value it cannot encode (a datetime whose UTC conversion leaves year 1-9999, a lone surrogate)
    raises with the server's answers still unread; the next statement on that connection would
    read them as its own (wrong rows, or errors) — and without pre-ping it would stay in the pool
    for ``pool_recycle``. So such a connection is marked a disconnect: SQLAlchemy closes it and
    the pool opens a new one. Only this connection; the rest of the pool is sound (a real
    disconnect, which pg8000 reports as a network error, still invalidates the whole pool).

    SQLAlchemy routes every failure of execute, commit and rollback through this hook; a failed
    reset when a connection is returned already makes the pool invalidate it.
    """
    if ctx.connection is None or ctx.is_disconnect or ctx.is_pre_ping:
        return
    if _sqlstate(ctx.original_exception) is not None:
        return
    ctx.is_disconnect = True
    ctx.invalidate_pool_on_disconnect = False
    log.warning("database connection discarded after a client-side error",
                extra={"fields": {"error_type": type(ctx.original_exception).__name__}})


def get_engine() -> Engine:
    global _engine, _session_factory
    if _engine is None:
        with _lock:
            if _engine is None:
                _engine = make_engine(resolve_database_url())
                _session_factory = sessionmaker(bind=_engine, expire_on_commit=False, autoflush=True)
    return _engine


def dispose_engine() -> None:
    """Drop the process engine (tests that switch databases; after fork)."""
    global _engine, _session_factory
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine = None
        _session_factory = None


def warm_up() -> None:
    """Open the pool's first connection and configure the ORM mappers: the work a process's first
    request would otherwise do itself. Never raises: a database that is not up yet is the readiness
    probe's to report, and the first request connects again. Without DATABASE_URL nothing happens:
    the embedded PostgreSQL of a dev process is started by the first request that needs it, not
    behind its back."""
    if not get_settings().database_url:
        return
    try:
        from sqlalchemy.orm import configure_mappers  # noqa: PLC0415

        import shared.models  # noqa: F401, PLC0415  (every mapped class, for configure_mappers)

        with get_engine().connect():
            pass  # returned to the pool open: the next checkout reuses it
        configure_mappers()
    except Exception as exc:  # noqa: BLE001 — best effort, see above
        log.warning("database warm-up failed", extra={"fields": {"error_type": type(exc).__name__}})


def start_warm_up() -> threading.Thread:
    """``warm_up`` in a daemon thread, so the process listens at once. Call it in the process that
    serves (after gunicorn's fork: a connection must not be shared with the parent)."""
    thread = threading.Thread(target=warm_up, name="db-warm-up", daemon=True)
    thread.start()
    return thread


READY_STATEMENT_TIMEOUT_MS = 1000


def check_ready() -> None:
    """Run one checked query through the request pool, or raise :class:`ServiceUnavailable`.

    Every function's ``/readyz`` calls this (the api's route in ``shared.api.health``, the CloudEvent functions' in
    ``shared.http.function_app``), so one probe decides readiness everywhere.
    """
    try:
        with get_engine().connect() as conn:
            try:
                # SET LOCAL: the timeout ends with this transaction (rolled back when the connection returns).
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {READY_STATEMENT_TIMEOUT_MS}")
                if conn.execute(sa.text("SELECT 1")).scalar() != 1:
                    raise RuntimeError("wrong answer")
            except Exception:
                conn.invalidate()  # whatever failed here, the next probe starts from a new connection
                raise
    except Exception as exc:  # noqa: BLE001 — any failure to run a query means not ready
        log.warning("readiness check failed", extra={"fields": {"error_type": type(exc).__name__}})
        raise ServiceUnavailable("The database is not reachable", retry_after=2) from None


class UnitOfWork:
    """A transaction boundary: one Session, committed once by whoever opened it."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._after_commit: list[Callable[[], None]] = []
        # CloudEvent ids this transaction wrote to the outbox (published right after the commit).
        self.outbox_ids: list[uuid.UUID] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (never if it rolls back)."""
        self._after_commit.append(callback)

    def flush(self) -> None:
        self.session.flush()

    def execute(self, statement: Any, params: Any = None) -> sa.Result[Any]:
        return self.session.execute(statement, params)


@contextmanager
def driver_autocommit() -> Iterator[sa.Connection]:
    """A pooled connection on which pg8000 sends no BEGIN of its own: each statement commits on its
    own, and one that carries its own ``BEGIN`` opens a transaction that leaving without ``COMMIT``
    (an error) hands to the pool's reset, which rolls it back.

    The driver's flag is switched directly: SQLAlchemy's ``isolation_level`` option would reset the
    connection with three statements on its way back to the pool. The flag is reset before then."""
    with get_engine().connect() as conn:
        driver = conn.connection.driver_connection
        driver.autocommit = True  # type: ignore[union-attr]
        try:
            yield conn
        finally:
            driver.autocommit = False  # type: ignore[union-attr]


@contextmanager
def unit_of_work() -> Iterator[UnitOfWork]:
    get_engine()
    assert _session_factory is not None
    session = _session_factory()
    uow = UnitOfWork(session)
    try:
        yield uow
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    for callback in uow._after_commit:
        callback()


def is_transient_db_error(exc: BaseException) -> bool:
    """True when retrying later could succeed: connection lost, server down, pool exhausted,
    serialization failure, deadlock, statement timeout, lock timeout."""
    from sqlalchemy import exc as sa_exc  # noqa: PLC0415

    if isinstance(exc, sa_exc.TimeoutError):  # pool exhausted
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return True
        code = _sqlstate(exc.orig)
        if code == "55000":  # object_not_in_prerequisite_state: transient only as the server refusing the session
            return _severity(exc.orig) == "FATAL"
        return code is not None and (code.startswith("08") or code in _TRANSIENT_SQLSTATES)
    return isinstance(exc, (ConnectionError, TimeoutError, OSError))


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
