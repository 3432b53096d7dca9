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

Every write is SQL text (``%s`` placeholders, ``shared.lis.sql``) whose text depends on its shape
only — the values travel as parameters, a table's rows as one JSON parameter — so the final statement
is one text per shape, prepared once per connection, and is sent without SQLAlchemy on either unit of
work (``shared.db.driver_uow.run``): the driver pool's, or the ORM's when a step of the message needed
it (tests/integration/lis/test_fast_sql.py holds each text to the SQLAlchemy statement it replaced).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.db.driver_uow import run
from shared.ids import uuid4
from shared.instants import utcnow
from shared.lis import sql
from shared.lis.errors import ConcurrentChange
from shared.log import current_request_id

if TYPE_CHECKING:
    from shared.auth import Principal
    from shared.events.catalog import EventData

# Rows as JSON (UUIDs and datetimes as their str): one encoder, built once; no cycle check (the rows
# are fresh dicts of values and lists: ~20 % of the encoding of a message's eight results).
_rows_json = json.JSONEncoder(default=str, check_circular=False).encode


@dataclass(frozen=True, slots=True)
class _Write:
    sql: str  # a data-modifying statement (``%s`` placeholders), with a RETURNING when checked
    params: tuple[Any, ...]
    expect: int | None  # rows it must return (its RETURNING), else ConcurrentChange(reason)
    reason: str


class Pending:
    """Data-modifying statements (SQL text) waiting for the message's last statement."""

    def __init__(self) -> None:
        self._writes: list[_Write] = []
        self._outbox: list[dict[str, Any]] = []
        self._audit: list[dict[str, Any]] = []

    def __bool__(self) -> bool:
        return bool(self._writes or self._outbox or self._audit)

    def add(self, text: str, params: tuple[Any, ...] = (), *, expect: int | None = None, reason: str = "") -> None:
        """Queue a data-modifying statement (a fixed text, its values as `params`); with `expect`, it
        must return that many rows (else `ConcurrentChange(reason)`): give it a RETURNING."""
        self._writes.append(_Write(text, tuple(params), expect, reason))

    def insert_rows(self, table: str, rows: list[dict[str, Any]], *, conflict: tuple[str, ...] | None = None,
                    reason: str = "") -> None:
        """Queue ``INSERT INTO table SELECT … FROM jsonb_populate_recordset(NULL::table, %s)``: every
        row in one JSON parameter, so the text is the same whatever the number of rows. With `reason`,
        the insert skips conflicting rows (on `conflict`, else any constraint) and must write them
        all, else `ConcurrentChange(reason)`."""
        text = sql.insert_rows(table, tuple(rows[0]), conflict, bool(reason))
        self.add(text, (_rows_json(rows),), expect=len(rows) if reason else None, reason=reason)

    def update_row(self, table: str, row_id: uuid.UUID, values: dict[str, Any], *, bump_version: bool) -> None:
        """Queue the update of one row by id: `values` by column (sent as JSON), with ``version + 1``."""
        text = sql.update_row(table, tuple(values), bump_version)
        self.add(text, (_rows_json({"id": row_id, **values}),))

    def emit(self, uow: Any, event_type: str, subject: uuid.UUID | str | None, data: EventData) -> uuid.UUID:
        """`shared.events.outbox.emit`, sent with the message's last statement."""
        from shared.events.catalog import CATALOG, dataschema_for  # noqa: PLC0415 — pydantic, with the first event
        from shared.events.outbox import _publish_after_commit, event_source  # noqa: PLC0415
        from shared.telemetry.tracecontext import current_traceparent, current_tracestate  # noqa: PLC0415

        model = CATALOG[event_type][0]
        if not isinstance(data, model):
            raise TypeError(f"{event_type} carries {model.__name__}, not {type(data).__name__}")
        event_id = uuid4()
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

    def attach(self, text: str, params: tuple[Any, ...], *, returning: bool, guarded: bool = False
               ) -> tuple[str, tuple[Any, ...], list[tuple[int, int, str]]]:
        """`text` (an UPDATE when `returning`, whose RETURNING then carries the checks; else a
        SELECT whose columns do) with every pending write as a CTE before it; its parameters in
        order; and the checks to make of its answer (column index, rows, reason). Empties the queue.

        `guarded`: a check that fails also fails the statement itself (so a ``COMMIT`` sent in the same
        write commits nothing): its count is cast from ``'<reason>:<rows>'`` to a number, an error
        (22P02) that names the reason and the count only, never a value of the rows — a lost unique
        race's own error would be logged by PostgreSQL with the key's values (identifiers, numbers)."""
        if self._outbox:
            self.insert_rows("outbox", self._outbox)
        if self._audit:
            self.insert_rows("audit_log", self._audit)
        writes, self._writes, self._outbox, self._audit = self._writes, [], [], []
        if not writes:
            return text, params, []
        ctes = ", ".join(f"w{n} AS ({w.sql})" for n, w in enumerate(writes))
        counted = [n for n, w in enumerate(writes) if w.expect is not None]
        statement = f"WITH {ctes} {text}"
        if counted:
            counts = ", ".join(_guarded_count(n, writes[n]) if guarded else f"(SELECT count(*) FROM w{n}) AS w{n}_rows"
                               for n in counted)
            statement += f" RETURNING {counts}" if returning else f", {counts}"
        values = tuple(v for w in writes for v in w.params) + tuple(params)
        checks = [(i, writes[n].expect, writes[n].reason) for i, n in enumerate(counted)]  # type: ignore[misc]
        return statement, values, checks

    def flush(self, uow: Any) -> None:
        """Send what is pending now (before a read that must see it)."""
        if not self:
            return
        statement, values, checks = self.attach(sql.FLUSHED, (), returning=False)
        rows = run(uow, statement, values)
        check(rows[0][1:] if rows else None, checks)


_REASON = re.compile(r"[a-z_]+")


def _guarded_count(n: int, write: _Write) -> str:
    """The count of CTE ``w<n>``'s rows, or an error when it is not the `write`'s expected number
    (`Pending.attach`'s `guarded`). It reads the count at run time, so no plan can fold it away."""
    if not _REASON.fullmatch(write.reason):
        raise ValueError(f"a check's reason is a code, not {write.reason!r}")
    return (f"(SELECT CASE WHEN count(*) = {int(write.expect or 0)} THEN count(*) "
            f"ELSE ('{write.reason}:' || count(*))::bigint END FROM w{n}) AS w{n}_rows")


def check(counts: Any, checks: list[tuple[int, int, str]]) -> None:
    """Raise `ConcurrentChange` when a checked write did not write every row (`counts`: the answer's
    count columns, in the order of `checks`)."""
    for index, expect, reason in checks:
        if counts is None or counts[index] != expect:
            raise ConcurrentChange(reason)
