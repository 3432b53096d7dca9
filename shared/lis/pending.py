"""The writes of one LIS message, sent with its final status update: one round trip, not one each.

On the consumer's fast path (`shared.lis.ingest`) a message is applied without a savepoint: should
anything go wrong the whole transaction is rolled back and the delivery runs again on the careful
path (today's, with savepoints). So the rows a message writes after its last read — the order, its
results, the outbox events, the audit row, the patient's demographic stamps — need not be sent one
statement at a time: they are collected here and attached as data-modifying CTEs to the statement
that gives the message its final status (``ingest._finish``). Outbox rows and the audit row stay in
the writer's transaction: it is the same statement.

A read of something a pending write touches must see it, so the code that reads in the middle of a
message (an order's lookup, existing results, child-order links) calls `flush` first; on the single
order of an ORU that never happens. An insert that must write every row (a new order, new results:
``ON CONFLICT DO NOTHING`` lost a race) is checked when the statement returns, and raises
`ConcurrentChange` exactly as the immediate insert would.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared.auth import Principal
from shared.db import UnitOfWork
from shared.events.catalog import CATALOG, EventData, dataschema_for
from shared.events.outbox import _publish_after_commit, event_source
from shared.lis.errors import ConcurrentChange
from shared.log import current_request_id
from shared.models import AuditEntry, OutboxEvent
from shared.models.base import utcnow
from shared import direct_sql
from shared.telemetry.tracecontext import current_traceparent, current_tracestate

_OUTBOX = OutboxEvent.__table__
# Rows as JSON (UUIDs and datetimes as their str): one encoder, built once; no cycle check (the rows
# are fresh dicts of values and lists: ~20 % of the encoding of a message's eight results).
_rows_json = json.JSONEncoder(default=str, check_circular=False).encode
_AUDIT = AuditEntry.__table__


Build = Callable[[str], Any]  # a statement template from the prefix of its bind parameters' names


@dataclass(frozen=True)
class _Write:
    statement: Any  # a statement built with its values, or None for a template
    key: tuple[Any, ...] | None  # a template's shape (hashable); with `build` and `params`
    build: Build | None
    params: dict[str, Any]
    expect: int | None  # rows it must return (its RETURNING), else ConcurrentChange(reason)
    reason: str


class Pending:
    """Statements (INSERT/UPDATE … RETURNING where checked) waiting for the message's last statement.

    A write is a statement built with its values (`add`) or a *template* (`template`, `insert_rows`):
    a statement of bind parameters, built once per shape, and the values of those parameters. When
    every write of the final statement is a template, the whole statement (its CTEs, its checks) is
    built once per shape and kept (`_composed`): SQLAlchemy then reuses its cache key and compiled
    SQL, and the message pays for binding its values only.
    """

    def __init__(self) -> None:
        self._writes: list[_Write] = []
        self._outbox: list[dict[str, Any]] = []
        self._audit: list[dict[str, Any]] = []

    def __bool__(self) -> bool:
        return bool(self._writes or self._outbox or self._audit)

    def add(self, statement: Any, *, expect: int | None = None, reason: str = "") -> None:
        """Queue a data-modifying statement; with `expect`, it must return that many rows (else
        `ConcurrentChange(reason)`): give it a RETURNING."""
        self._writes.append(_Write(statement, None, None, {}, expect, reason))

    def template(self, key: tuple[Any, ...], build: Build, params: dict[str, Any], *, expect: int | None = None,
                 reason: str = "") -> None:
        """Queue `build(prefix)` — a statement whose bind parameters are named ``prefix + name`` —
        with `params` by name; `key` names its shape (the same key, the same statement)."""
        self._writes.append(_Write(None, key, build, params, expect, reason))

    def insert_rows(self, table: sa.Table, rows: list[dict[str, Any]], *, conflict: list[str] | None = None,
                    reason: str = "") -> None:
        """Queue ``INSERT INTO table SELECT … FROM jsonb_populate_recordset(NULL::table, :rows)``: every
        row in one JSON parameter, so the SQL is the same whatever the number of rows (a multi-row
        VALUES list is compiled anew each time). With `reason`, the insert skips conflicting rows
        (on `conflict`, else any constraint) and must write them all, else `ConcurrentChange(reason)`."""
        columns = tuple(rows[0])
        key = ("rows", table.name, columns, tuple(conflict or ()), bool(reason))
        self.template(key, functools.partial(_insert_rows, table, columns, conflict, bool(reason)),
                      {"rows": _rows_json(rows)}, expect=len(rows) if reason else None, reason=reason)

    def emit(self, uow: UnitOfWork, event_type: str, subject: uuid.UUID | str | None, data: EventData) -> uuid.UUID:
        """`shared.events.outbox.emit`, sent with the message's last statement."""
        model = CATALOG[event_type][0]
        if not isinstance(data, model):
            raise TypeError(f"{event_type} carries {model.__name__}, not {type(data).__name__}")
        event_id = uuid.uuid4()
        now = utcnow()
        self._outbox.append({
            "id": event_id, "source": event_source(), "type": event_type,
            "subject": str(subject) if subject is not None else None, "time": now,
            "dataschema": dataschema_for(event_type), "data": data.model_dump(mode="json"),
            "traceparent": current_traceparent(), "tracestate": current_tracestate(), "created_at": now, "attempts": 0,
        })
        if not uow.outbox_ids:
            uow.after_commit(lambda: _publish_after_commit(uow.outbox_ids))
        uow.outbox_ids.append(event_id)
        return event_id

    def audit(self, principal: Principal, action: str, patient_ids: list[uuid.UUID], details: dict[str, Any]) -> None:
        """`shared.audit.record` (outcome success), sent with the message's last statement."""
        self._audit.append({
            "at": utcnow(), "principal": principal.name, "principal_id": principal.key_id, "action": action,
            "patient_ids": list(dict.fromkeys(patient_ids)), "request_id": current_request_id(), "outcome": "success",
            "details": details,
        })

    def attach(self, key: tuple[Any, ...], build: Build, params: dict[str, Any], *, returning: bool
               ) -> tuple[Any, dict[str, Any], list[tuple[str, int, str]]]:
        """The statement `build` makes (a template, see `template`; `returning`: an INSERT/UPDATE
        whose RETURNING carries the checks, else a SELECT whose columns do) with every pending write
        as a CTE; its parameters; and the checks to make of its answer (column, rows, reason).
        Empties the queue."""
        if self._outbox:
            self.insert_rows(_OUTBOX, self._outbox)
        if self._audit:
            self.insert_rows(_AUDIT, self._audit)
        writes, self._writes, self._outbox, self._audit = self._writes, [], [], []
        values = {f"m_{name}": value for name, value in params.items()}
        for n, write in enumerate(writes):
            values.update({f"w{n}_{name}": value for name, value in write.params.items()})
        checks = [(f"w{n}_rows", w.expect, w.reason) for n, w in enumerate(writes) if w.expect is not None]
        if all(w.key is not None for w in writes):
            shape = (key, returning, tuple((w.key, w.expect is not None) for w in writes))
            statement = _composed(shape, build, tuple(w.build for w in writes))  # type: ignore[arg-type]
        else:
            statement = _compose(build, returning, writes)
        return statement, values, checks

    def flush(self, uow: UnitOfWork) -> None:
        """Send what is pending now (before a read that must see it)."""
        if not self:
            return
        statement, values, checks = self.attach(("flush",), _flushed, {}, returning=False)
        rows = direct_sql.execute(uow, statement, values)  # the fast path's: straight on the driver
        check(rows[0] if rows else None, checks)


def _flushed(_prefix: str) -> Any:
    return sa.select(sa.literal_column("1").label("flushed"))


def _insert_rows(table: sa.Table, columns: tuple[str, ...], conflict: list[str] | None, checked: bool,
                 prefix: str) -> Any:
    rows = sa.cast(sa.bindparam(f"{prefix}rows", type_=sa.Text), JSONB)
    source = sa.func.jsonb_populate_recordset(sa.literal_column(f"NULL::{table.name}"), rows).alias("r")
    select = sa.select(*(sa.literal_column(f'r."{c}"') for c in columns)).select_from(source)
    insert = pg_insert(table).from_select(list(columns), select)
    if not checked:
        return insert
    insert = insert.on_conflict_do_nothing(index_elements=conflict) if conflict else insert.on_conflict_do_nothing()
    return insert.returning(table.c[columns[0]])


def _compose(build: Build, returning: bool, writes: list[_Write]) -> Any:
    statement = build("m_")
    counted = []
    for n, write in enumerate(writes):
        inner = write.statement if write.build is None else write.build(f"w{n}_")
        cte = inner.cte(f"w{n}")
        statement = statement.add_cte(cte)
        if write.expect is not None:
            counted.append(sa.select(sa.func.count()).select_from(cte).scalar_subquery().label(f"w{n}_rows"))
    if counted:
        statement = statement.returning(*counted) if returning else statement.add_columns(*counted)
    return statement


_SHAPES: dict[tuple[Any, ...], Any] = {}
_MAX_SHAPES = 256


def _composed(shape: tuple[Any, ...], build: Build, builds: tuple[Build, ...]) -> Any:
    """`_compose` for statements made of templates only, kept per shape (`builds` follow the shape,
    so the same shape builds the same statement)."""
    statement = _SHAPES.get(shape)
    if statement is None:
        returning, expects = shape[1], [expect for _, expect in shape[2]]
        writes = [_Write(None, None, b, {}, 1 if e else None, "") for b, e in zip(builds, expects, strict=True)]
        statement = _compose(build, returning, writes)
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.clear()
        _SHAPES[shape] = statement
    return statement


class Deferred:
    """A stand-in unit of work for a registry helper that only writes (``index_names``,
    ``versions.record_new_patient``): the statements it builds join `pending`."""

    def __init__(self, pending: Pending) -> None:
        self.session = self
        self._pending = pending

    def execute(self, statement: Any, params: Any = None) -> None:
        if params is not None:
            raise TypeError("a deferred statement carries its own values")
        self._pending.add(statement)


def check(row: Any, checks: list[tuple[str, int, str]]) -> None:
    """Raise `ConcurrentChange` when a checked write did not write every row."""
    for column, expect, reason in checks:
        if row is None or row._mapping[column] != expect:
            raise ConcurrentChange(reason)
