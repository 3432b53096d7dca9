"""A unit of work on a pooled pg8000 connection, without SQLAlchemy (issue 15).

The LIS consumer's fast path (``shared.lis.ingest``) runs its statements as SQL text on a connection
of the process's pool (``shared.db.pool``, through ``shared.db.wire``): the BEGIN rides with the first
statement, ``COMMIT`` ends the block as one simple-protocol round trip, any error rolls it back. It
keeps what the ORM's unit of work (``shared.db.orm``) gives a service:

* services take it as their first argument and never commit; ``after_commit`` callbacks (the
  outbox's immediate publish) run once the commit is done, never after a rollback;
* errors: PostgreSQL's own leave the connection in step and are raised as pg8000's cursor raises
  them (the SQLSTATE under ``args[0]["C"]``, read by ``is_transient_db_error`` and the LIS's
  retries alike); anything else marks the connection out of step (``shared.db.wire``) and the pool
  closes it instead of lending it again — a disconnect closes the pool's idle connections too;
* ``session``: there is none. Work that needs the ORM raises :class:`NeedsOrm` on reaching for it,
  before it writes anything of its own, and the caller rolls back and runs it on the ORM's unit of
  work instead.

`run` sends a text on either kind of unit of work (on the ORM's, through ``shared.direct_sql`` on
the session's connection), so code shared by both paths is written once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from shared.db import driver_connection, wire
from shared.db.wire import Row, rows_of


class NeedsOrm(Exception):
    """This work needs the ORM's unit of work (``uow.session``): roll back, run it there."""


class DriverUnitOfWork:
    """A transaction on one pooled pg8000 connection (see the module)."""

    def __init__(self, con: Any) -> None:
        self.con = con
        self._after_commit: list[Callable[[], None]] = []
        # CloudEvent ids this transaction wrote to the outbox (published right after the commit).
        self.outbox_ids: list[uuid.UUID] = []

    @property
    def session(self) -> Any:
        raise NeedsOrm("this step runs on the ORM's unit of work")

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the transaction has committed (never if it rolls back)."""
        self._after_commit.append(callback)

    def rows(self, sql: str, params: Sequence[Any], *, pipelined: bool = False) -> list[Row]:
        """``sql`` (``%s`` placeholders) prepared on this connection (`pipelined`: planned for its
        values, in one round trip), in this transaction; its rows."""
        return rows_of(wire.execute(self.con, sql, params, prepared=not pipelined, pipelined=pipelined))

    def pipeline(self, statements: Sequence[tuple[str, Sequence[Any]]], *, commit: bool = False) -> list[list[Row]]:
        """``statements`` (fixed texts, prepared on this connection) sent in one write and answered in
        one round trip, in order, each with its own snapshot, in this transaction (``wire.pipeline``);
        the rows of each. With `commit` the transaction's ``COMMIT`` rides after them: they must be its
        last statements (the block's end then sends none; ``after_commit`` callbacks run as usual)."""
        return [rows_of(result) for result in wire.pipeline(self.con, statements, commit=commit)]


@contextmanager
def driver_unit_of_work() -> Iterator[DriverUnitOfWork]:
    """A transaction boundary on the driver pool: committed when the block ends, rolled back on any
    error (the pool rolls back what a returned connection left open, and closes one out of step);
    ``after_commit`` callbacks run after the commit."""
    with driver_connection(autocommit=False) as con:  # wire sends the BEGIN with the first statement
        uow = DriverUnitOfWork(con)
        yield uow
        if con._in_transaction:
            wire.simple(con, "COMMIT")
    for callback in uow._after_commit:
        callback()


def run(uow: Any, sql: str, params: Sequence[Any], *, pipelined: bool = False) -> list[Row]:
    """``sql`` (``%s`` placeholders; a fixed text, prepared per connection, or `pipelined`) in the
    transaction of `uow`, a `DriverUnitOfWork` or the ORM's unit of work; its rows (attributes by
    column name)."""
    if isinstance(uow, DriverUnitOfWork):
        return uow.rows(sql, params, pipelined=pipelined)
    from shared import direct_sql  # noqa: PLC0415 — the ORM's unit of work: SQLAlchemy is loaded already

    return direct_sql.execute_text(uow, sql, params, pipelined=pipelined)


def run_together(uow: Any, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
    """`run` of each of ``statements`` in order, their rows: in one round trip on a `DriverUnitOfWork`
    (``wire.pipeline``), one after the other on the ORM's unit of work."""
    if isinstance(uow, DriverUnitOfWork):
        return uow.pipeline(statements)
    return [run(uow, text, params) for text, params in statements]
