"""SQL text run straight on the ORM unit of work's pg8000 connection (issue 15).

The LIS fast path's statements are fixed texts (``shared.lis.sql``), sent on the driver pool's unit of
work (``shared.db.driver_uow``) or, for a message that needs the ORM, on the ORM's: `execute_text`
sends them there on the session's connection, inside its transaction, as ``shared.db.wire`` sends them
on the driver pool (prepared per connection, or pipelined), instead of ``session.execute`` and its
≈ 100 µs of Python per statement (the session's and the connection's bookkeeping, the statement's
cache key and parameters, its execution context, its result).

What SQLAlchemy's execute would do beside that is kept:

* errors: a server error raises the ``sqlalchemy.exc.DBAPIError`` subclass SQLAlchemy raises (its
  ``orig`` holding the SQLSTATE, so ``is_transient_db_error`` and the SQLSTATE retries read it
  alike); anything else (pg8000 failing mid-exchange, a value it cannot encode) invalidates the
  connection as ``shared.db``'s ``handle_error`` hook would have (a disconnect also the pool's older
  connections, as SQLAlchemy does), and the error says the connection was invalidated;
* autoflush: ORM objects waiting in the session are flushed first, in order;
* ``before_cursor_execute`` listeners (statement counting in tests) see the statement, when any are
  registered.

Values go to pg8000 as they are (no SQLAlchemy bind processors: a JSON value is sent as its text and
cast in the SQL). Rows are tuples readable by column name (attribute or ``_mapping``), as SQLAlchemy's are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.db import UnitOfWork, wire
from shared.log import get_logger

log = get_logger(__name__)


def execute_text(uow: UnitOfWork, sql: str, params: Sequence[Any], *, pipelined: bool = False) -> list[Any]:
    """SQL text (``%s`` placeholders) in the unit of work's transaction, prepared on its connection (or
    `pipelined`): ORM objects waiting are flushed first, listeners see it, errors are SQLAlchemy's.
    Rows as ``shared.db.driver_uow`` gives them."""
    session = uow.session
    if not session._is_clean():
        session.flush()
    conn = session.connection()
    args = tuple(params)
    if conn._has_events or conn.engine._has_events:
        for listener in conn.dispatch.before_cursor_execute:
            sql, args = listener(conn, None, sql, args, None, False)
    driver = conn.connection.driver_connection
    try:
        result = wire.execute(driver, sql, args, prepared=not pipelined, pipelined=pipelined)
    except BaseException as exc:
        raise _failed(conn, driver, sql, args, exc) from None
    return wire.rows_of(result)


def _failed(conn: Any, driver: Any, sql: str, args: tuple[Any, ...], exc: BaseException) -> BaseException:
    """The error SQLAlchemy's execute would raise for `exc`, the connection invalidated unless the
    server sent it (see ``shared.db._discard_out_of_step_connection``)."""
    from sqlalchemy import exc as sa_exc  # noqa: PLC0415

    dialect = conn.dialect
    dbapi_error = dialect.loaded_dbapi.Error
    args0 = exc.args[0] if exc.args else None
    from_server = isinstance(exc, dbapi_error) and isinstance(args0, dict) and args0.get("C") is not None
    if not from_server and not conn.invalidated:
        if isinstance(exc, dbapi_error) and dialect.is_disconnect(exc, driver, None):
            conn.engine.pool._invalidate(conn._dbapi_connection, exc)  # as SQLAlchemy does on a disconnect
        conn.invalidate(exc)
        log.warning("database connection discarded after a client-side error",
                    extra={"fields": {"error_type": type(exc).__name__}})
    if not isinstance(exc, dbapi_error):
        return exc
    return sa_exc.DBAPIError.instance(sql, args, exc, dbapi_error, hide_parameters=conn.engine.hide_parameters,
                                      connection_invalidated=not from_server, dialect=dialect)
