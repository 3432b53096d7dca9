"""The database: one pool of pg8000 connections per process, the unit of work, and what is transient.

Importing this loads no SQLAlchemy. The hot paths (a patient read, an API-key lookup, a registration,
the immediate publish, the readiness probe) borrow pg8000 connections from the process's pool
(``shared.db.pool``) and run their statements through ``shared.db.wire``. Everything that uses the ORM
goes through the SQLAlchemy engine and the unit of work of ``shared.db.orm``, loaded on first use: its
engine borrows its connections from the same pool, so ``DB_POOL_SIZE`` bounds both together.

Services receive a :class:`UnitOfWork` and never commit; the boundary (an HTTP handler or a
CloudEvent consumer) opens it with ``with unit_of_work() as uow:`` which commits on success and rolls
back on any error. Work that must wait for the commit (publishing outbox events) registers an
``after_commit`` callback.

A process starts with one connection, opened by ``warm_up`` in the background as its worker starts
(``shared.serve``); the pool grows only as concurrent requests need more. A pooled connection that
saw an error the server did not send is discarded, never reused (``shared.db.wire``; for the ORM,
``shared.db.orm._discard_out_of_step_connection``): pg8000 can fail after it sent part of a statement,
and the next statement on that connection would read the previous one's answers.
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from shared.db.pool import resolve_database_url
from shared.db.transient import is_transient_db_error
from shared.errors import ServiceUnavailable
from shared.log import get_logger
from shared.mappers import MODEL_IMPORT_LOCK
from shared.settings import get_settings

if TYPE_CHECKING:
    from shared.db.orm import UnitOfWork

__all__ = ["UnitOfWork", "check_ready", "dispose_engine", "driver_autocommit", "driver_connection", "get_engine",
           "is_transient_db_error", "make_engine", "resolve_database_url", "start_warm_up", "unit_of_work", "warm_up"]

log = get_logger(__name__)

# Names of shared.db.orm (SQLAlchemy) that ``from shared.db import …`` reaches, loaded on first access.
_ORM_NAMES = frozenset({"UnitOfWork", "get_engine", "make_engine", "driver_autocommit", "_cache_pg8000_query_conversion",
                        "_discard_out_of_step_connection"})


def __getattr__(name: str) -> Any:
    if name in _ORM_NAMES:
        from shared.db import orm  # noqa: PLC0415

        return getattr(orm, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def unit_of_work() -> AbstractContextManager[UnitOfWork]:
    """A transaction boundary on the ORM (``shared.db.orm.unit_of_work``): committed when the block
    ends, rolled back on any error; ``after_commit`` callbacks run after the commit."""
    from shared.db.orm import unit_of_work as orm_unit_of_work  # noqa: PLC0415

    return orm_unit_of_work()


def driver_connection(*, autocommit: bool = True) -> AbstractContextManager[Any]:
    """A pg8000 connection of the process's pool for the block, to run statements with
    ``shared.db.wire``; in autocommit mode by default (pg8000 sends no BEGIN of its own)."""
    from shared.db.pool import get_pool  # noqa: PLC0415

    return get_pool().connection(autocommit=autocommit)


def dispose_engine() -> None:
    """Drop the process's engine and pool, closing idle connections (tests that switch databases; after fork)."""
    orm = sys.modules.get("shared.db.orm")
    if orm is not None:
        orm.dispose_engine()
    from shared.db.pool import dispose_pool  # noqa: PLC0415

    dispose_pool()


# -- warm-up -----------------------------------------------------------------------------------------

# The ORM (SQLAlchemy, the models, the mappers, the engine) is loaded in the background only once the
# pool has been idle this long: loading it takes the GIL for a while, which a request being served
# would wait for.
ORM_AFTER_IDLE_SECONDS = 1.0


def warm_up(*, orm_after_idle: float | None = None) -> None:
    """Open the pool's first connection, then load the ORM: the work a process's first requests would
    otherwise do themselves. With ``orm_after_idle`` the ORM waits until no connection has been lent
    or returned for that many seconds (``start_warm_up``). Never raises: a database that is not up yet
    is the readiness probe's to report, and the first request connects again. Without DATABASE_URL
    nothing happens: the embedded PostgreSQL of a dev process is started by the first request that
    needs it, not behind its back."""
    if not get_settings().database_url:
        return
    try:
        from shared.db.pool import get_pool  # noqa: PLC0415

        pool = get_pool()
        pool.release(pool.acquire())  # returned open: the next checkout reuses it
        if orm_after_idle is not None:
            _wait_until_idle(pool, orm_after_idle)
        _load_orm()
    except Exception as exc:  # noqa: BLE001 — best effort, see above
        log.warning("database warm-up failed", extra={"fields": {"error_type": type(exc).__name__}})


def _wait_until_idle(pool: Any, seconds: float) -> None:
    while True:
        quiet = time.monotonic() - pool.last_active
        if pool.lent == 0 and quiet >= seconds:
            return
        time.sleep(max(seconds - quiet, 0.05))


def _load_orm() -> None:
    """SQLAlchemy, the engine initialised on a pooled connection (SQLAlchemy's first connect asks the
    server for its version and settings), every model loaded and the mappers configured — under
    ``MODEL_IMPORT_LOCK``, so never while a request's thread imports a model module (``shared.models``
    loads them all, under the same lock, before it hands out a class)."""
    from sqlalchemy.orm import configure_mappers  # noqa: PLC0415

    from shared.db.orm import get_engine  # noqa: PLC0415
    from shared.models import load_all  # noqa: PLC0415

    load_all()
    with get_engine().connect():
        pass
    with MODEL_IMPORT_LOCK:
        configure_mappers()


def start_warm_up() -> threading.Thread:
    """``warm_up`` in a daemon thread, so the process listens at once. Call it in the process that
    serves (after gunicorn's fork: a connection must not be shared with the parent).

    The first connection opens at once. The ORM follows at once when the function's own imports
    already loaded SQLAlchemy (a function whose first request uses the ORM; none of the four today);
    otherwise (the api, whose hot routes do without it, jobs, whose outbox-sweep tick does, notify, whose
    welcome does, and lis_consumer, whose ORU runs as SQL text on the pool) only once the process has been
    idle for ``ORM_AFTER_IDLE_SECONDS``, so it never competes with the first request for the GIL, yet is
    ready for a later request that needs it (a change, the console, FHIR; a broker event or another job's
    tick; a LIS message for the careful path). Every model is loaded then (``_load_orm``)."""
    wait = None if "sqlalchemy.orm" in sys.modules else ORM_AFTER_IDLE_SECONDS
    thread = threading.Thread(target=warm_up, kwargs={"orm_after_idle": wait}, name="db-warm-up", daemon=True)
    thread.start()
    return thread


# -- readiness ---------------------------------------------------------------------------------------

READY_STATEMENT_TIMEOUT_MS = 1000


def check_ready() -> None:
    """Run one checked query on a pooled connection, or raise :class:`ServiceUnavailable`.

    Every function's ``/readyz`` calls this (the api's route in ``shared.api.health``, the CloudEvent functions' in
    ``shared.http.function_app``), so one probe decides readiness everywhere.
    """
    try:
        from shared.db import wire  # noqa: PLC0415
        from shared.db.pool import get_pool  # noqa: PLC0415

        with get_pool().connection(autocommit=True) as con:
            try:
                # SET LOCAL: the timeout ends with this transaction (rolled back when the connection returns).
                result = wire.simple(con, f"BEGIN; SET LOCAL statement_timeout = {READY_STATEMENT_TIMEOUT_MS}; SELECT 1")
                if result.rows != [[1]]:
                    raise RuntimeError("wrong answer")
            except Exception:
                con._pool_out_of_step = True  # whatever failed here, the next probe starts from a new connection
                raise
    except Exception as exc:  # noqa: BLE001 — any failure to run a query means not ready
        log.warning("readiness check failed", extra={"fields": {"error_type": type(exc).__name__}})
        raise ServiceUnavailable("The database is not reachable", retry_after=2) from None
