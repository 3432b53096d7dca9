"""Statements in one round trip each, through SQLAlchemy (issue 15).

pg8000 sends an unnamed statement in three exchanges with the server (Parse; Describe and Bind;
Execute), and starts a transaction with a ``BEGIN`` of its own exchange. A statement executed with
one of these options goes through SQLAlchemy as usual (its events, its error handling in
``shared.db``, the connection it is given) but reaches the server in one exchange:

* ``PREPARED``: a named statement pg8000 prepares on the connection the first time its text is
  seen (kept with the connection, so a discarded connection takes its statements along), then
  Bind/Execute/Sync — no parsing or planning per execution. For fixed texts whose generic plan is
  as good as a custom one (keys compared by equality).
* ``PIPELINED``: an unnamed statement as Parse, Bind, Describe, Execute and Sync in one write, planned
  at Bind with the values (a custom plan, always): for texts that vary or want their values' plan.

When the connection is in no transaction yet (and not in driver autocommit), the ``BEGIN`` pg8000
would send by itself rides in the same write, ahead of the statement.

`install` adds the ``do_execute`` hook to an engine (once); statements without the options run as
pg8000 runs them.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from shared import pg8000_dates

PREPARED = {"patient_sql_prepared": True}
PIPELINED = {"patient_sql_pipelined": True}
# Statements prepared per connection at most: a guard against an unforeseen variety of texts (each
# holds server memory for the connection's life), not a need; beyond it a text runs unprepared.
MAX_PREPARED = 48
_BEGIN = "begin transaction"
# A prepared statement the server no longer has (DISCARD ALL), or whose result type a schema change
# altered: prepare the text again. Other errors (a constraint, a lock timeout) leave it prepared.
_STALE = frozenset({"26000", "0A000"})
_install_lock = threading.Lock()


def install(engine: Engine) -> None:
    """The engine's ``do_execute`` hook for `PREPARED` and `PIPELINED` (idempotent)."""
    if event.contains(engine, "do_execute", _do_execute):
        return
    with _install_lock:
        if not event.contains(engine, "do_execute", _do_execute):
            event.listen(engine, "do_execute", _do_execute)


def _send_begin(con: Any) -> None:
    """``BEGIN`` as an unnamed Parse/Bind/Execute with no Sync: the statement sent after it (and its
    Sync) completes the exchange, and its ReadyForQuery tells pg8000 the transaction is open."""
    import pg8000.core as core  # noqa: PLC0415

    con.send_PARSE(core.NULL_BYTE, _BEGIN, ())
    con.send_BIND(core.NULL_BYTE, ())
    con.send_EXECUTE()


def _params(con: Any, parameters: Any) -> Any:
    """pg8000's text of each parameter, checked to encode before anything is written (so an
    unencodable value leaves the connection in step)."""
    import pg8000.core as core  # noqa: PLC0415

    params = core.make_params(con.py_types, parameters)
    for value in params:
        if value is not None:
            value.encode(con._client_encoding)
    return params


def _execute_pipelined(con: Any, sql: str, parameters: Any, begin: bool) -> Any:
    """An unnamed statement as Parse, Bind, Describe (portal), Execute and Sync in one round trip:
    pg8000's own ``execute_unnamed`` waits for the server after Parse and after Describe."""
    import pg8000.core as core  # noqa: PLC0415

    params = _params(con, parameters)
    if begin:
        _send_begin(con)
    con.send_PARSE(core.NULL_BYTE, sql, ())
    con.send_BIND(core.NULL_BYTE, params)
    con._send_message(core.DESCRIBE, core.PORTAL + core.NULL_BYTE)
    con.send_EXECUTE()
    core._write(con._sock, core.SYNC_MSG)
    core._flush(con._sock)
    result = core.Context(sql)
    con.handle_messages(result)
    return result


def _do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    """SQLAlchemy's ``do_execute`` hook (see the module's docstring); False: pg8000 as usual.
    Errors leave as pg8000's cursor raises them, through SQLAlchemy's handling (``shared.db``)."""
    options = context.execution_options
    pipelined = options.get("patient_sql_pipelined", False)
    if not (pipelined or options.get("patient_sql_prepared")):
        return False
    result = run(cursor._c, statement, parameters, pipelined=pipelined)
    cursor._context = result
    cursor._row_iter = iter(result.rows or [])
    return True


def run(con: Any, statement: str, parameters: Any, *, pipelined: bool = False) -> Any:
    """`statement` (``%s`` placeholders) with `parameters` on the pg8000 connection `con`, prepared
    (or `pipelined`) in one round trip; pg8000's result context (``rows``, ``columns``). A server
    error raises the class pg8000's own cursor would raise, its fields as a dict (SQLSTATE under "C")."""
    import pg8000.legacy as legacy  # noqa: PLC0415

    prepared: dict[str, Any] | None = con.__dict__.get("_patient_sql_prepared")
    if prepared is None:
        prepared = con.__dict__["_patient_sql_prepared"] = {}
        pg8000_dates.adapt(con)  # before its first statement is prepared (which keeps its readers)
    try:
        begin = not con._in_transaction and not con.autocommit
        if pipelined:
            return _execute_pipelined(con, legacy.convert_paramstyle("format", statement, ())[0], parameters, begin)
        entry = prepared.get(statement)
        if entry is None:
            sql = legacy.convert_paramstyle("format", statement, ())[0]
            if len(prepared) >= MAX_PREPARED:
                return _execute_pipelined(con, sql, parameters, begin)
            entry = prepared[statement] = con.prepare_statement(sql, ())
        name, columns, input_funcs = entry
        params = _params(con, parameters)
        if begin:
            _send_begin(con)
        return con.execute_named(name, params, columns, input_funcs, statement)
    except legacy.DatabaseError as exc:
        msg = exc.args[0] if exc.args else None
        if not isinstance(msg, dict) or msg.get("C") in _STALE:
            prepared.pop(statement, None)  # prepared again next time
        if isinstance(msg, dict):  # the classes pg8000's own cursor raises for a server error
            kind = {"28000": legacy.InterfaceError, "23505": legacy.IntegrityError}.get(msg.get("C"), legacy.ProgrammingError)
            raise kind(msg) from None
        raise
