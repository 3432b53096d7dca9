"""The SQLAlchemy side of the database: the engine, the ORM sessions and the unit of work.

Loaded on first use (``shared.db`` names it lazily): the hot paths of the api never import it. The
engine opens no connections of its own: it borrows pg8000 connections from the process's driver pool
(``shared.db.pool``) and gives them back (:class:`BorrowingPool`), so the pool's size, LIFO order,
recycling and connection settings hold for the ORM too, and a connection SQLAlchemy invalidates is
closed by the driver pool, never lent again. A pooled connection that saw an error the server did not
send is invalidated by ``_discard_out_of_step_connection``; a real disconnect invalidates the whole
driver pool (``BorrowingPool._invalidate``).
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from shared.db.pool import DriverPool, current_pool, get_pool, open_connection, resolve_database_url
from shared.db.transient import _sqlstate
from shared.log import get_logger
from shared.settings import get_settings

log = get_logger(__name__)

_lock = threading.Lock()
_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None


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


class BorrowingPool(NullPool):
    """SQLAlchemy's pool over the driver pool: a checkout borrows a pg8000 connection from it (through
    the creator), a checkin gives it back (SQLAlchemy has rolled it back), and an invalidated
    connection (SQLAlchemy closes those with ``terminate``) is discarded there instead. A disconnect
    that invalidates SQLAlchemy's pool invalidates the driver pool's idle connections too."""

    def __init__(self, creator: Any, *, driver: Callable[[], DriverPool | None], **kwargs: Any) -> None:
        self._driver = driver
        super().__init__(creator, **kwargs)

    def status(self) -> str:
        return "BorrowingPool"

    def _close_connection(self, connection: Any, *, terminate: bool = False) -> None:
        owner = getattr(connection, "_pool", None)
        if owner is None:  # not lent by a driver pool (never happens): close it as SQLAlchemy would
            super()._close_connection(connection, terminate=terminate)
            return
        owner.release(connection, discard=terminate)

    def _invalidate(self, connection: Any, exception: BaseException | None = None, _checkin: bool = True) -> None:
        driver = self._driver()
        if driver is not None:
            driver.invalidate()
        super()._invalidate(connection, exception, _checkin)

    def recreate(self) -> BorrowingPool:
        return self.__class__(self._creator, driver=self._driver, recycle=self._recycle, echo=self.echo,
                              logging_name=self._orig_logging_name, reset_on_return=self._reset_on_return,
                              pre_ping=self._pre_ping, _dispatch=self.dispatch, dialect=self._dialect)

    def dispose(self) -> None:
        driver = self._driver()
        if driver is not None:
            driver.dispose()


def make_engine(url: str, *, pool_size: int | None = None, driver: DriverPool | None = None) -> Engine:
    """An engine on ``url`` whose connections come from ``driver`` (the process's pool for
    ``get_engine``), or from a driver pool of its own of ``pool_size`` (default: the settings')."""
    _cache_pg8000_query_conversion()
    if driver is None:
        settings = get_settings()
        timeout_ms = settings.db_statement_timeout_ms
        own = DriverPool(lambda: open_connection(url, timeout_ms), size=pool_size or settings.pool_size(),
                         timeout=settings.db_pool_timeout_seconds)
        return _engine_over(url, own.acquire, lambda: own)
    return _engine_over(url, driver.acquire, lambda: driver)


def _engine_over(url: str, borrow: Callable[[], Any], driver: Callable[[], DriverPool | None]) -> Engine:
    """An engine whose connections are borrowed with ``borrow`` from the pool ``driver`` returns (None: none
    open yet, nothing to invalidate or dispose)."""
    # No pre-ping: it costs a round trip on every checkout. A connection that died with the server
    # fails its request with a disconnect error, which answers 503 (Retry-After) and invalidates the
    # whole pool, so the next requests get fresh connections (tests/fault/test_database_outage.py
    # restarts and freezes the server under load). A connection left out of step by a driver-side
    # error is discarded by the handle_error hook. Size, LIFO, recycling, connect timeout and the
    # connection settings are the driver pool's.
    pool = BorrowingPool(borrow, driver=driver, pre_ping=False)
    engine = sa.create_engine(url, pool=pool)  # create_engine gives the pool its dialect
    event.listen(engine, "handle_error", _discard_out_of_step_connection)
    engine.dialect.do_commit = _commit  # type: ignore[method-assign]
    return engine


def _commit(dbapi_conn: Any) -> None:
    """``COMMIT`` as a simple query, one round trip: pg8000's ``commit()`` sends it as an unnamed
    extended-protocol statement, three (Parse, Describe + Bind, Execute). The same answer either way,
    errors included (a failed transaction's COMMIT raises "in failed transaction block")."""
    dbapi_conn.execute_simple("commit")


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
                _engine = _engine_over(resolve_database_url(), lambda: get_pool().acquire(), current_pool)
                _session_factory = sessionmaker(bind=_engine, expire_on_commit=False, autoflush=True)
    return _engine


def dispose_engine() -> None:
    """Drop the process's engine (``shared.db.dispose_engine`` drops its pool too)."""
    global _engine, _session_factory
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine = None
        _session_factory = None


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
