"""Statements on a pg8000 connection, below SQLAlchemy: prepared per connection, pipelined, unnamed or
simple; used by the hot paths on the driver pool (``shared.db.pool``) and, through the engine's
``do_execute`` hook, by SQLAlchemy connections (``shared.services.patient_sql``).

Texts use SQLAlchemy's pg8000 placeholders (``%s``), converted to ``$n`` once per text. Every failure
that PostgreSQL did not send marks the connection out of step (``_pool_out_of_step``): pg8000 may have
written part of an exchange (its ``execute_unnamed`` sends PARSE and DESCRIBE before it converts the
values) and left the server's answers unread, so the next statement would read them as its own; the
pool closes such a connection instead of lending it again; after a disconnect (or a FATAL error: the
server ended the session) the pool closes its idle connections too. A server's error leaves the stream in
step and is raised as pg8000's cursor raises it (``IntegrityError`` for 23505, ``InterfaceError`` for
28000, else ``ProgrammingError``), its fields as a dict (the SQLSTATE under ``"C"``).

Each exchange is composed here, message by message, and written at once with one Sync at its end and
no Flush before it (`_send`). pg8000's ``send_PARSE``, ``send_BIND`` and ``send_EXECUTE`` each add a
Flush, which makes PostgreSQL write out what it has answered so far: a prepared read came back in three
packets (BindComplete; the row and CommandComplete; ReadyForQuery) and its thread woke for each. Without
them the server answers the exchange in one write, at the Sync (docs/performance.md, "Eleventh round").
"""

from __future__ import annotations

import functools
import struct
from typing import Any

# Statements prepared per connection at most: fixed texts only (the read, the registration, the key
# lookup, the LIS fast path's), whose generic plan is their custom plan. A guard, not a need: past it, texts run unnamed.
MAX_PREPARED = 48
# Statements prepared per connection at most among ``shaped`` texts: one text per query shape (a search's), a
# family whose members the clients choose. Counted apart, so they never take the fixed texts' places; past
# it, a new shape's text runs pipelined (planned for its values, as before it was prepared).
MAX_PREPARED_SHAPED = 32
_BEGIN = "begin transaction"
# A prepared statement the server no longer has (DISCARD ALL), or whose result type a schema change
# altered: prepare the text again. Other errors (a constraint, a lost race, a lock timeout) leave it
# prepared: dropping it there would leave the server's statement behind, unnamed to us.
_STALE = frozenset({"26000", "0A000"})


@functools.lru_cache(maxsize=1024)
def dollar_params(sql: str) -> str:
    """``%s`` placeholders as pg8000's ``$1, $2…`` (the conversion pg8000 does on every execution)."""
    import pg8000.dbapi as dbapi  # noqa: PLC0415

    convert = getattr(dbapi.convert_paramstyle, "original", dbapi.convert_paramstyle)
    return convert("format", sql, ())[0]  # type: ignore[no-any-return]


def execute(con: Any, sql: str, params: Any = (), *, prepared: bool = False, pipelined: bool = False,
            shaped: bool = False) -> Any:
    """Run ``sql`` (``%s`` placeholders) with ``params``; pg8000's result context (``.rows``, ``.row_count``).

    ``prepared``: a named statement prepared on this connection the first time (kept with the
    connection; a discarded connection takes its statements along), then one Bind/Execute/Sync round
    trip. ``shaped``: prepared as well, among at most ``MAX_PREPARED_SHAPED`` such texts (one per query
    shape). ``pipelined``: unnamed, Parse to Sync in one round trip, planned for its values. Otherwise
    pg8000's unnamed extended protocol (three round trips). Outside autocommit, when no transaction is
    open, the ``BEGIN`` pg8000's cursor would send in an exchange of its own rides in the same write,
    ahead of a prepared or pipelined statement."""
    try:
        begin = not con._in_transaction and not con.autocommit
        if pipelined:
            return _pipelined(con, dollar_params(sql), params, begin)
        if prepared or shaped:
            return _prepared(con, sql, params, begin, shaped)
        if begin:
            con.execute_simple("begin transaction")
        return con.execute_unnamed(dollar_params(sql), vals=tuple(params))
    except BaseException as exc:
        raise _failed(con, exc, sql) from None


def simple(con: Any, sql: str) -> Any:
    """``sql`` in the simple protocol, one Query message (no parameters: it may carry several
    statements, ``BEGIN`` or ``COMMIT`` among them); the last statement's result context."""
    try:
        return con.execute_simple(sql)
    except BaseException as exc:
        raise _failed(con, exc, None) from None


_KEPT = ("_patient_sql_prepared", "_patient_sql_shaped")  # the connection's statements: fixed texts, shaped texts


def _kept(con: Any, sql: str, shaped: bool = False) -> Any:
    """``sql``'s statement prepared on ``con`` (prepared now the first time: one round trip), or None
    when the connection keeps its cap of such texts already (the caller sends it unnamed)."""
    statements: dict[str, Any] = con.__dict__.setdefault(_KEPT[shaped], {})
    entry = statements.get(sql)
    if entry is None and len(statements) < (MAX_PREPARED_SHAPED if shaped else MAX_PREPARED):
        entry = statements[sql] = con.prepare_statement(dollar_params(sql), ())
    return entry


def _prepared(con: Any, sql: str, params: Any, begin: bool, shaped: bool) -> Any:
    entry = _kept(con, sql, shaped)
    if entry is None:  # run unprepared, one round trip
        return _pipelined(con, dollar_params(sql), params, begin)
    import pg8000.core as core  # noqa: PLC0415

    name, columns, input_funcs = entry
    values = _encoded(con, params)
    _send(con, b"".join((_BEGIN_MESSAGES if begin else b"", _bind(name, values), _EXECUTE, _SYNC)))
    result = core.Context(columns=columns, input_funcs=input_funcs, statement=sql)
    con.handle_messages(result)
    return result


def _encoded(con: Any, params: Any) -> list[bytes | None]:
    """Each parameter as the bytes its Bind carries (pg8000's text of it, in the connection's encoding;
    None for NULL), all of them made before anything is written (so an unencodable value leaves the
    connection in step)."""
    import pg8000.core as core  # noqa: PLC0415

    encoding = con._client_encoding
    return [None if value is None else value.encode(encoding) for value in core.make_params(con.py_types, params)]


# -- messages (PostgreSQL's frontend protocol, version 3) ---------------------------------------------

_I32 = struct.Struct("!i").pack
_I16 = struct.Struct("!h").pack
_NO_FORMATS = _I16(0)  # "every parameter (or result column) in text"
_EXECUTE = b"E" + _I32(9) + b"\x00" + _I32(0)  # the unnamed portal, every row
_SYNC = b"S" + _I32(4)
_DESCRIBE_PORTAL = b"D" + _I32(6) + b"P\x00"  # the unnamed portal's columns
_UNNAMED = b"\x00"  # the unnamed statement's name, with its NUL


def _message(code: bytes, body: bytes) -> bytes:
    return code + _I32(len(body) + 4) + body


def _parse(text: bytes) -> bytes:
    """Parse of the unnamed statement ``text`` (encoded; ``$n`` placeholders, whose types the server infers)."""
    return _message(b"P", b"\x00" + text + b"\x00" + _NO_FORMATS)


def _bind(name: bytes, values: list[bytes | None]) -> bytes:
    """Bind of statement ``name`` to the unnamed portal, values in text. ``name`` ends with its NUL, as
    pg8000's prepared statements' names do (``_UNNAMED`` for the unnamed statement)."""
    body = [b"\x00", name, _NO_FORMATS, _I16(len(values))]
    for value in values:
        if value is None:
            body.append(_I32(-1))
        else:
            body += (_I32(len(value)), value)
    body.append(_NO_FORMATS)
    return _message(b"B", b"".join(body))


def _control(statement: str) -> bytes:
    """A transaction-control statement as an unnamed Parse/Bind/Execute with no Sync: the exchange it
    rides in ends with the Sync, whose ReadyForQuery tells pg8000 whether a transaction is open."""
    return _parse(statement.encode("ascii")) + _bind(_UNNAMED, []) + _EXECUTE


_BEGIN_MESSAGES = _control(_BEGIN)
_COMMIT_MESSAGES = _control("commit")


def _send(con: Any, data: bytes) -> None:
    """Write an exchange and flush it to the server, as pg8000 does (a socket error is its
    ``InterfaceError("network error")``; a closed connection its ``"connection is closed"``)."""
    import pg8000.core as core  # noqa: PLC0415

    sock = con._sock
    if sock is None:
        from pg8000.exceptions import InterfaceError  # noqa: PLC0415

        raise InterfaceError("connection is closed")
    core._write(sock, data)
    core._flush(sock)


def _pipelined(con: Any, sql: str, params: Any, begin: bool = False) -> Any:
    """An unnamed statement as Parse, Bind, Describe (portal), Execute and Sync in one round trip:
    pg8000's own ``execute_unnamed`` waits for the server after Parse and after Describe. The
    server plans an unnamed statement at Bind with the values (a custom plan, always)."""
    import pg8000.core as core  # noqa: PLC0415

    values = _encoded(con, params)
    _send(con, b"".join((_BEGIN_MESSAGES if begin else b"", _unnamed(con, sql, values), _EXECUTE, _SYNC)))
    result = core.Context(sql)
    con.handle_messages(result)
    return result


def _unnamed(con: Any, sql: str, values: list[bytes | None]) -> bytes:
    """Parse and Bind of the unnamed statement ``sql`` (``$n`` placeholders), and a Describe of its portal
    (its columns come with the answer); the caller adds the Execute."""
    return _parse(sql.encode(con._client_encoding)) + _bind(_UNNAMED, values) + _DESCRIBE_PORTAL


def transaction(con: Any, statements: Any) -> list[Any]:
    """``statements`` (pairs of a fixed text with ``%s`` placeholders and its parameters) as one implicit
    transaction in one round trip: each prepared on this connection the first time (as ``prepared``),
    then a Bind and an Execute of each and one Sync in a single write. PostgreSQL runs them in order,
    each with its own snapshot (READ COMMITTED: a statement sees what committed before it started,
    after the locks the ones before it took), and commits at the Sync when all succeeded; when one
    fails, the rest are skipped and nothing is committed. Returns each statement's result context;
    the first error is raised once every answer is read, so the connection stays in step.

    Only outside a transaction (no ``BEGIN`` is sent: the Sync is the commit)."""
    if con._in_transaction:
        raise RuntimeError("wire.transaction runs its statements as a transaction of their own; one is open")
    return _exchange(con, statements, begin=False)


def pipeline(con: Any, statements: Any, *, commit: bool = False) -> list[Any]:
    """``statements`` as `transaction` sends them — prepared, in order, each with its own snapshot, one
    write and one round trip — but inside the connection's transaction: the ``BEGIN`` rides ahead of
    them when none is open (outside autocommit), and the Sync ends the exchange without committing;
    with `commit`, a ``COMMIT`` rides after them and the transaction ends when they all succeeded.
    When one fails the rest are skipped (the ``COMMIT`` too), the transaction is aborted (the caller
    rolls back) and the first error is raised once every answer is read."""
    return _exchange(con, statements, begin=not con._in_transaction and not con.autocommit, commit=commit)


def _exchange(con: Any, statements: Any, *, begin: bool, commit: bool = False) -> list[Any]:
    import pg8000.core as core  # noqa: PLC0415

    messages = [_BEGIN_MESSAGES] if begin else []
    results: list[Any] = []
    for sql, params in statements:
        try:
            entry = _kept(con, sql)
        except BaseException as exc:
            raise _failed(con, exc, sql) from None
        values = _encoded(con, params)  # before anything is written: a failure leaves the stream as it was
        if entry is None:  # past the cap: unnamed, its columns described in the same exchange
            messages.append(_unnamed(con, dollar_params(sql), values))
            results.append(core.Context(sql))
        else:
            messages.append(_bind(entry[0], values))
            results.append(core.Context(columns=entry[1], input_funcs=entry[2], statement=sql))
        messages.append(_EXECUTE)
    if commit:
        messages.append(_COMMIT_MESSAGES)
    messages.append(_SYNC)
    try:
        _send(con, b"".join(messages))
        _read_results(con, [*([core.Context(_BEGIN)] if begin else []), *results,
                            *([core.Context("commit")] if commit else [])])
    except BaseException as exc:
        failed = next((r.statement for r in results if r.error is not None), None)
        raise _failed(con, exc, failed) from None
    return results


def _read_results(con: Any, results: list[Any]) -> None:
    """The answers to `transaction`'s exchange up to its ReadyForQuery, each statement's rows and
    CommandComplete into its own context (an error into the one that failed, the rest skipped);
    then the first error, as pg8000's ``handle_messages`` raises it."""
    import pg8000.core as core  # noqa: PLC0415

    handlers = con.message_types
    contexts = iter(results)
    context = next(contexts)
    code = None
    while code != core.READY_FOR_QUERY:
        code, data_len = core.ci_unpack(core._read(con._sock, 5))
        handlers[code](core._read(con._sock, data_len - 4), context)
        if code == core.COMMAND_COMPLETE:
            context = next(contexts, context)
    for result in results:
        if result.error is not None:
            raise result.error


def _failed(con: Any, exc: BaseException, sql: str | None) -> BaseException:
    """The exception to raise for ``exc``, after marking ``con``: a server's error as pg8000's cursor
    classes it (a prepared statement is prepared again next time: dropped, or the schema changed);
    anything else leaves the connection out of step."""
    fields = server_error_fields(exc)
    if fields is None or fields.get("V", fields.get("S")) in ("FATAL", "PANIC"):
        # out of step, or the session is over (the server ends it after a FATAL error)
        con._pool_out_of_step = True
        from shared.db.pool import is_disconnect  # noqa: PLC0415

        if fields is not None or is_disconnect(exc):
            con._pool_disconnected = True  # the pool closes its idle connections too (shared.db.pool)
        return exc
    if sql is not None and fields.get("C") in _STALE:
        for kept in _KEPT:
            con.__dict__.get(kept, {}).pop(sql, None)
    import pg8000.legacy as legacy  # noqa: PLC0415

    kind = {"28000": legacy.InterfaceError, "23505": legacy.IntegrityError}.get(fields.get("C"), legacy.ProgrammingError)
    return exc if type(exc) is kind else kind(fields)


def server_error_fields(exc: BaseException) -> dict[str, str] | None:
    """The fields of an error PostgreSQL sent (pg8000 raises its ErrorResponse as a dict), else None."""
    args = getattr(exc, "args", None)
    if args and isinstance(args[0], dict) and type(exc).__module__.startswith("pg8000"):
        return args[0]
    return None


def rows(con: Any, sql: str, params: Any = (), **how: bool) -> list[Any]:
    """The rows ``execute`` returns (lists, as pg8000 gives them)."""
    return execute(con, sql, params, **how).rows or []


class Row(tuple):
    """A result row: a tuple whose columns are also attributes and ``_mapping`` keys (as SQLAlchemy's rows are)."""

    __slots__ = ()
    _keys: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._keys[name]]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> dict[str, Any]:
        return {name: self[i] for name, i in self._keys.items()}


@functools.lru_cache(maxsize=256)
def row_type(names: tuple[str, ...]) -> type[Row]:
    """The row class of a result's column names: each column an attribute read by position in C, as a
    namedtuple's are (a name that is not an identifier, or that a tuple already has, by ``__getattr__``;
    a repeated name is its last column, as in ``_mapping``)."""
    import operator  # noqa: PLC0415

    keys = {n: i for i, n in enumerate(names)}
    columns = {n: property(operator.itemgetter(i)) for n, i in keys.items() if n.isidentifier() and not hasattr(Row, n)}
    return type("Row", (Row,), {"__slots__": (), "_keys": keys, **columns})


def rows_of(result: Any) -> list[Row]:
    """The rows of a pg8000 result context as `Row`s (none for a statement without columns)."""
    if not result.columns:
        return []
    make = row_type(tuple(column["name"] for column in result.columns))
    return [make(r) for r in result.rows or ()]
