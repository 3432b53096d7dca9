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

import json
import uuid
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
from shared.telemetry.tracecontext import current_traceparent, current_tracestate

_OUTBOX = OutboxEvent.__table__
_AUDIT = AuditEntry.__table__


class Pending:
    """Statements (INSERT/UPDATE … RETURNING where checked) waiting for the message's last statement."""

    def __init__(self) -> None:
        self._writes: list[tuple[Any, int | None, str]] = []  # (statement, rows it must return, reason)
        self._outbox: list[dict[str, Any]] = []
        self._audit: list[dict[str, Any]] = []

    def __bool__(self) -> bool:
        return bool(self._writes or self._outbox or self._audit)

    def add(self, statement: Any, *, expect: int | None = None, reason: str = "") -> None:
        """Queue a data-modifying statement; with `expect`, it must return that many rows (else
        `ConcurrentChange(reason)`): give it a RETURNING."""
        self._writes.append((statement, expect, reason))

    def insert_rows(self, table: sa.Table, rows: list[dict[str, Any]], *, conflict: list[str] | None = None,
                    reason: str = "") -> None:
        """Queue ``INSERT INTO table SELECT … FROM jsonb_populate_recordset(NULL::table, :rows)``: every
        row in one JSON parameter, so the SQL is the same whatever the number of rows and SQLAlchemy
        compiles it once (a multi-row VALUES list is compiled anew each time). With `reason`, the
        insert skips conflicting rows (on `conflict`, else any constraint) and must write them all,
        else `ConcurrentChange(reason)`."""
        columns = list(rows[0])
        source = sa.func.jsonb_populate_recordset(
            sa.literal_column(f"NULL::{table.name}"),
            sa.cast(sa.bindparam(None, json.dumps(rows, default=str), type_=sa.Text), JSONB)).alias("r")
        select = sa.select(*(sa.literal_column(f'r."{c}"') for c in columns)).select_from(source)
        insert = pg_insert(table).from_select(columns, select)
        if not reason:
            self.add(insert)
            return
        insert = insert.on_conflict_do_nothing(index_elements=conflict) if conflict else insert.on_conflict_do_nothing()
        self.add(insert.returning(table.c[columns[0]]), expect=len(rows), reason=reason)

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

    def attach(self, statement: Any) -> tuple[Any, list[tuple[Any, int, str]]]:
        """`statement` carrying every pending write as a CTE, and the checks to make of its answer
        (a column to add to what it returns, expected rows, reason); empties the queue."""
        if self._outbox:
            self.insert_rows(_OUTBOX, self._outbox)
        if self._audit:
            self.insert_rows(_AUDIT, self._audit)
        writes = list(self._writes)
        checks: list[tuple[Any, int, str]] = []
        for n, (write, expect, reason) in enumerate(writes):
            cte = write.cte(f"w{n}")
            statement = statement.add_cte(cte)
            if expect is not None:
                column = sa.select(sa.func.count()).select_from(cte).scalar_subquery().label(f"w{n}_rows")
                checks.append((column, expect, reason))
        self._writes, self._outbox, self._audit = [], [], []
        return statement, checks

    def flush(self, uow: UnitOfWork) -> None:
        """Send what is pending now (before a read that must see it)."""
        if not self:
            return
        statement, checks = self.attach(sa.select(sa.literal(1).label("flushed")))
        if checks:
            statement = statement.add_columns(*(column for column, _, _ in checks))
        check(uow.session.execute(statement).first(), checks)


class Deferred:
    """A stand-in unit of work for a registry helper that only writes (``index_names``,
    ``versions.record`` given its field sources): the statements it builds join `pending`."""

    def __init__(self, pending: Pending) -> None:
        self.session = self
        self._pending = pending

    def execute(self, statement: Any, params: Any = None) -> None:
        if params is not None:
            raise TypeError("a deferred statement carries its own values")
        self._pending.add(statement)


def check(row: Any, checks: list[tuple[Any, int, str]]) -> None:
    """Raise `ConcurrentChange` when a checked write did not write every row."""
    for column, expect, reason in checks:
        if row is None or row._mapping[column.name] != expect:
            raise ConcurrentChange(reason)
