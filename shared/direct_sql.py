"""A fixed SQLAlchemy statement run straight on the unit of work's pg8000 connection (issue 15).

Since the sixth round the LIS fast path sends SQL text instead (``shared.lis.sql``): on the ORM's unit
of work through `execute_text` below, with the same flush, listeners and errors; `execute` (compiled
statements) has no caller in the code any more and is kept with its tests until it is removed.

``session.execute`` costs ~100 µs of Python per statement before and after the driver's ~30 µs:
the session's and the connection's bookkeeping, the statement's cache key and parameters, its
execution context, its result. On the LIS consumer's fast path (four statements an ORU, each a
fixed text prepared per connection) that is a fifth of a message's CPU. `execute` compiles a
statement once (kept per statement object), then per call only orders the values, applies the
types' bind processors (JSON, arrays) and sends it prepared (`_run`), on the connection and inside
the transaction of the unit of work, which still commits or rolls back.

What SQLAlchemy's execute would do beside that is kept:

* errors: a server error raises the ``sqlalchemy.exc.DBAPIError`` subclass SQLAlchemy raises (its
  ``orig`` holding the SQLSTATE, so ``is_transient_db_error`` and the SQLSTATE retries read it
  alike); anything else (pg8000 failing mid-exchange, a value it cannot encode) invalidates the
  connection as ``shared.db``'s ``handle_error`` hook would have (a disconnect also the pool's older
  connections, as SQLAlchemy does), and the error says the connection was invalidated;
* autoflush: while the session holds ORM objects to flush, the statement goes through
  ``session.execute``, which flushes them first;
* ``before_cursor_execute`` listeners (statement counting in tests) see the statement, when any are
  registered.

A statement runs this way from its second execution (one built for a single message goes through
SQLAlchemy, whose compiled cache finds it by shape). Statements whose compiled form needs more (expanding or post-compile parameters, escaped names, a
column default other than a Python value or function, a result type SQLAlchemy converts) are not
taken: they run through ``session.execute`` with `PREPARED`, as before. Rows are tuples readable by
column name (attribute or ``_mapping``), as SQLAlchemy's are.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

from shared.db import UnitOfWork, wire
from shared.db.wire import Row
from shared.log import get_logger
from shared.prepared import PREPARED

log = get_logger(__name__)
_NOT_TAKEN = object()
_MAX_COMPILED = 256


class _Compiled:
    __slots__ = ("sql", "values", "rows")

    def __init__(self, sql: str, values: list[tuple[str, Any, Any, Any]]) -> None:
        self.sql = sql
        self.values = values  # (name, default or _NOT_TAKEN, default function or None, bind processor or None)
        self.rows: dict[tuple[str, ...], type[Row]] = {}


# Per statement object, by id (with a weak reference that tells a later object of the same id from
# it; holding per-message statements alive would make the garbage collector's passes longer): its
# compiled form, or None when `execute` does not take it.
_COMPILED: dict[int, tuple[weakref.ref[Any], _Compiled | None]] = {}
_SEEN: dict[int, weakref.ref[Any]] = {}  # executed once (through SQLAlchemy)


def _run(con: Any, sql: str, params: Sequence[Any]) -> Any:
    """The one call into the low-level execution: `sql` prepared on the pg8000 connection `con`
    (``shared.db.wire``: a failure the server did not send also marks the connection out of step
    for the driver pool)."""
    return wire.execute(con, sql, params, prepared=True)


def execute(uow: UnitOfWork, statement: Any, params: dict[str, Any]) -> list[Any]:
    """`statement` with `params` in the unit of work's transaction; its rows (see the module)."""
    session = uow.session
    # ORM objects waiting to be flushed: session.execute autoflushes them first (in order).
    compiled = _compile(uow, statement) if session._is_clean() else None
    if compiled is None:
        return session.execute(statement, params, execution_options=PREPARED).all()
    values = []
    for name, default, default_fn, process in compiled.values:
        if name in params:
            value = params[name]
        elif default_fn is not None:
            value = default_fn(None)
        elif default is not _NOT_TAKEN:
            value = default
        else:
            raise KeyError(f"A value is required for bind parameter {name!r}")
        values.append(process(value) if process is not None else value)
    conn = session.connection()
    sql, args = compiled.sql, tuple(values)
    if conn._has_events or conn.engine._has_events:
        for listener in conn.dispatch.before_cursor_execute:
            sql, args = listener(conn, None, sql, args, None, False)
    driver = conn.connection.driver_connection
    try:
        result = _run(driver, sql, args)
    except BaseException as exc:
        raise _failed(conn, driver, sql, args, exc) from None
    if not result.columns:
        return []
    names = tuple(column["name"] for column in result.columns)
    row = compiled.rows.get(names)
    if row is None:
        row = compiled.rows[names] = type("Row", (Row,), {"__slots__": (), "_keys": {n: i for i, n in enumerate(names)}})
    return [row(r) for r in result.rows or ()]


def execute_text(uow: UnitOfWork, sql: str, params: Sequence[Any], *, pipelined: bool = False) -> list[Any]:
    """SQL text (``%s`` placeholders) in the unit of work's transaction, sent as `execute` sends a
    compiled statement (prepared, or `pipelined`): ORM objects waiting are flushed first, listeners
    see it, errors are SQLAlchemy's. Rows as ``shared.db.driver_uow`` gives them."""
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


def _compile(uow: UnitOfWork, statement: Any) -> _Compiled | None:
    entry = _COMPILED.get(id(statement))
    if entry is not None and entry[0]() is statement:
        return entry[1]
    # Compiled on its second execution: a statement built for one message only (a new patient's
    # writes) is compiled faster by SQLAlchemy, whose cache keys find its compiled form by shape.
    seen = _SEEN.get(id(statement))
    if seen is None or seen() is not statement:
        if len(_SEEN) >= _MAX_COMPILED:
            _SEEN.clear()
        _SEEN[id(statement)] = weakref.ref(statement)
        return None
    _SEEN.pop(id(statement), None)  # (another request thread may have taken it out already)
    dialect = uow.session.get_bind().dialect
    made = _taken(statement.compile(dialect=dialect), dialect)
    if len(_COMPILED) >= _MAX_COMPILED:
        _COMPILED.clear()
    _COMPILED[id(statement)] = (weakref.ref(statement), made)
    return made


def _taken(compiled: Any, dialect: Any) -> _Compiled | None:
    """The compiled form `execute` can run, or None (see the module)."""
    if (compiled.escaped_bind_names or compiled.literal_execute_params or compiled.post_compile_params
            or compiled.positiontup is None or getattr(compiled, "update_prefetch", None)):
        return None
    if any(rc.type._cached_result_processor(dialect, None) is not None for rc in compiled._result_columns):
        return None
    defaults: dict[str, Callable[[Any], Any]] = {}
    for column in getattr(compiled, "insert_prefetch", None) or ():
        default = column.default
        if default is None or not (default.is_scalar or default.is_callable):
            return None
        defaults[column.key] = default.arg if default.is_callable else (lambda _ctx, v=default.arg: v)
    processors = compiled._bind_processors
    values = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        if bind.callable is not None or bind.expanding:
            return None
        fixed = _NOT_TAKEN if bind.required or name in defaults else bind.value
        values.append((name, fixed, defaults.get(name), processors.get(name)))
    return _Compiled(compiled.string, values)
