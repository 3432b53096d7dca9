"""The LIS consumer's boundary: store every message, dedupe it, apply it, answer.

One delivery (a Pub/Sub message or a CloudEvent) is one transaction:

1. Each HL7 message in it is inserted into ``lis_messages`` keyed by (Pub/Sub messageId, part) or
   (CloudEvent source, id, part). The insert waits for a concurrent copy of the same delivery and
   then conflicts: a redelivery bumps ``delivery_count`` and is answered 2xx (duplicate) — unless
   the stored row is ``failed`` (a bug, or left incomplete): then it is processed again, so
   ``failed`` is never a state only an operator can leave.
2. The message is applied inside a savepoint, after claiming its (MSH-4, MSH-10, content digest)
   in ``lis_control_ids`` (`shared.lis.claims`) — the same content claimed before makes it a
   ``duplicate`` of that message; other content under a reused MSH-10 is applied with the warning
   ``control_id_reused:<earlier message id>``.
3. The row gets its final status: processed, duplicate, ignored, quarantined (content that can
   never succeed, with a reason) or failed (our bug: the savepoint is rolled back, the row is kept
   with the exception type so it shows in ``/lis/status`` and can be replayed after a fix).
   Rows are inserted as ``failed``/``incomplete`` and only then finalised, so a row can never be
   committed looking done when it was not.

The delivery is acknowledged (2xx) only after that commit. Transient database faults roll it all
back and raise `TransientFault` (→ 503, the platform redelivers); deadlocks, serialisation
failures and lost unique-key races are retried here first, a few times. Should our own code fail
outside the savepoint, the raw bytes and delivery keys alone are stored as ``failed``
(``store_error:<type>``) rather than answering 5xx to a message that would fail the same way forever.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from shared.db import is_transient_db_error, unit_of_work, wire
from shared.db.driver_uow import DriverUnitOfWork, NeedsOrm, driver_unit_of_work, run, run_together
from shared.ids import uuid4
from shared.instants import utcnow
from shared.lis import claims, sql
from shared.lis import orders as lis_orders
from shared.hl7.model import Message
from shared.lis.apply import ORDER_TYPES, RESULT_TYPES, MessageContext, apply_message
from shared.lis.content import Part, read_parts, sniff
from shared.lis.envelope import Delivery
from shared.lis.errors import ConcurrentChange, Quarantine
from shared.lis.ordering import make_stamp
from shared.lis.patients import identifier_keys
from shared.lis.pending import Pending, check
from shared.lis.values import Warnings, safe_text
from shared.log import get_logger
from shared.prepared import PREPARED
from shared.telemetry.outcomes import record_lis_outcomes

if TYPE_CHECKING:
    import sqlalchemy as sa

    from shared.db import UnitOfWork

log = get_logger("patient_mgt.lis")
MAX_ATTEMPTS = 4
_RETRY_IN_PROCESS = {"40001", "40P01", "23505"}
T = TypeVar("T")
FUTURE_TOLERANCE = timedelta(days=1)
_PATIENT_FIRST = frozenset({"ADT", *ORDER_TYPES, *RESULT_TYPES})  # message types applied patient first


class TransientFault(Exception):
    """Nothing was committed and a retry could succeed: answer 5xx."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PartOutcome:
    message_id: uuid.UUID | None
    status: str
    reason: str | None = None
    patient_id: uuid.UUID | None = None


@dataclass(frozen=True)
class RowMeta:
    """What processing needs to know about a stored row."""

    id: uuid.UUID
    received_at: datetime
    publish_time: datetime | None
    fast: bool = False  # applied on the fast path (see `process_part`)
    locked: bool = False  # this transaction holds the claim's advisory lock already
    ahead: Ahead | None = None  # the fast path's reads sent with the row's insert
    commits: bool = False  # the final status is the transaction's last statement: its COMMIT rides with it


@dataclass(frozen=True)
class Ahead:
    """What the fast path reads in the same write as the message row's insert, whose RETURNING takes
    the claim's advisory lock (so each statement after it, with its own snapshot, runs under it): the
    claim (with the patient rows of the message's identifiers, locked) and the lookup of its group's
    first order (locked). One round trip instead of three; `_process_fast` reads their answers."""

    identifiers: list[tuple[str, str]] | None
    claim: list[Any]  # the answer of `claims.claim_statement`
    order: tuple[Any, list[Any]] | None  # (the order's keys, the answer of `orders.find_text`)


def delivery_parts(delivery: Delivery) -> list[Part]:
    if delivery.problem:
        fmt = delivery.declared_format or (sniff(delivery.payload) if delivery.payload else "unknown")
        return [Part(raw=delivery.payload, content_format=fmt, quarantine=delivery.problem, warnings=delivery.warnings)]
    parts = read_parts(delivery.payload, delivery.declared_format)
    if not delivery.warnings:
        return parts
    return [replace(part, warnings=delivery.warnings + part.warnings) for part in parts]


class Careful(Exception):
    """The fast path declines this delivery: roll it back and run it on the careful path."""


_ON_THE_ORM = object()  # the fast path on the driver pool declined (`NeedsOrm`): run it on the ORM's


def _messages() -> sa.Table:
    from shared.models import LisMessage  # noqa: PLC0415 — the careful path's (SQLAlchemy)

    return LisMessage.__table__  # type: ignore[return-value]


def ingest(delivery: Delivery) -> list[PartOutcome]:
    """Store and apply a delivery; returns one outcome per message in it. Raises TransientFault.

    First on the fast path — no savepoints, the message's writes sent with its final statement
    (`shared.lis.pending`) — which only commits a delivery every message of which was stored,
    claimed and applied (or was a duplicate). Anything else (a quarantine, a lost race, a failure)
    rolls it back whole, and the delivery runs again on the careful path: savepoints, retries,
    the row kept with its reason. So every outcome is the careful path's. The fast path runs first
    as SQL text on the driver pool (no SQLAlchemy); a step that needs the ORM (`NeedsOrm`) rolls
    that attempt back whole and the same fast path runs on the ORM's unit of work.
    """
    parts = delivery_parts(delivery)
    try:
        outcomes = _fast(delivery, parts, driver=True)
        if outcomes is _ON_THE_ORM:
            outcomes = _fast(delivery, parts, driver=False)
        if outcomes is None or outcomes is _ON_THE_ORM:
            outcomes = with_retries(
                lambda uow, final: [_store_and_process(uow, delivery, i, len(parts), part, final)
                                    for i, part in enumerate(parts)]
            )
    except TransientFault:
        raise
    except Exception as exc:  # noqa: BLE001 — our bug outside the savepoint: keep the bytes rather than loop on 5xx
        log.error("lis delivery could not be stored normally", exc_info=True)
        outcomes = with_retries(lambda uow, final: _store_failed(uow, delivery, parts, type(exc).__name__))
    for outcome in outcomes:
        log.info("lis message", extra={"fields": {
            "lis_message_id": str(outcome.message_id) if outcome.message_id else None, "status": outcome.status,
            "reason": outcome.reason, "transport": delivery.transport}})
    record_lis_outcomes(outcomes)
    return outcomes


def _fast(delivery: Delivery, parts: list[Part], *, driver: bool) -> Any:
    """The delivery applied on the fast path and committed, or None: take the careful path.

    `driver`: as SQL text on the driver pool's unit of work (``shared.db.driver_uow``: no SQLAlchemy),
    which returns `_ON_THE_ORM` when a step needs the ORM's (a patient's demographics changed, a merge
    to follow, identifiers to claim one by one, a probable duplicate to flag…); otherwise on the ORM's
    unit of work, the same statements through its session's connection."""
    if driver:
        boundary: Callable[[], Any] = driver_unit_of_work
    else:
        from shared.db import get_engine  # noqa: PLC0415
        from shared.prepared import install  # noqa: PLC0415

        install(get_engine())  # the session's own statements in one round trip each (shared.prepared)
        boundary = unit_of_work
    try:
        with boundary() as uow:
            return [_store_and_process(uow, delivery, i, len(parts), part, final=False, fast=True,
                                       commits=driver and i == len(parts) - 1)
                    for i, part in enumerate(parts)]
    except NeedsOrm:
        return _ON_THE_ORM
    except (Careful, ConcurrentChange):
        return None
    except Exception as exc:
        if is_transient_db_error(exc) and _sqlstate(exc) not in _RETRY_IN_PROCESS:
            raise TransientFault("database_unavailable") from None
        if _sqlstate(exc) is None:
            log.warning("lis fast path declined", extra={"fields": {"error_type": type(exc).__name__}})
        return None


def with_retries(work: Callable[[UnitOfWork, bool], T]) -> T:
    """Run `work(uow, final_attempt)` in a unit of work; retry lost races, deadlocks and
    serialisation failures a few times; a database that is unreachable raises TransientFault."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        final = attempt == MAX_ATTEMPTS
        try:
            with unit_of_work() as uow:
                return work(uow, final)
        except ConcurrentChange:
            _backoff(attempt)
            continue
        except Exception as exc:
            if _sqlstate(exc) in _RETRY_IN_PROCESS and not final:
                _backoff(attempt)
                continue
            if is_transient_db_error(exc) or _sqlstate(exc) in _RETRY_IN_PROCESS:
                raise TransientFault("database_unavailable") from None
            raise
    raise TransientFault("contention")


def _backoff(attempt: int) -> None:
    time.sleep(0.01 * attempt)


def header_columns(part: Part) -> dict[str, object]:
    if part.message is not None:
        h = part.message.header
        kind = "^".join(p for p in (h.message_type, h.trigger_event) if p)
        return {"sending_application": _cut(h.sending_application, 200), "sending_facility": _cut(h.sending_facility, 200),
                "control_id": _cut(h.control_id, None), "message_type": _cut(kind, 40), "message_time": h.message_datetime}
    p = part.peek
    return {"sending_application": p.sending_application, "sending_facility": p.sending_facility,
            "control_id": p.control_id, "message_type": (p.message_type or "")[:40] or None, "message_time": None}


def _cut(value: str | None, limit: int | None) -> str | None:
    if not value:
        return None
    value = safe_text(value)
    return value[:limit] if limit else value


def _clean_key(value: str | None) -> str:
    """MSH-4 / MSH-10 as stored keys: no NUL, valid UTF-8 (PostgreSQL text and JSONB refuse both)."""
    return _cut(value, None) or ""


_ROW_COLUMNS = sql.ROW_COLUMNS


@functools.cache
def _insert_row(pubsub: bool, lock: bool) -> sa.Insert:
    """The new row's INSERT (built once: SQLAlchemy keeps its cache key and compiled SQL); with
    `lock`, its RETURNING also takes the claim's advisory lock (`claims.lock_clause`)."""
    import sqlalchemy as sa  # noqa: PLC0415 — the careful path's
    from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

    t = _messages()
    key = [t.c.ce_source, t.c.pubsub_message_id, t.c.part] if pubsub else [t.c.ce_source, t.c.ce_id, t.c.part]
    where = sa.text("pubsub_message_id IS NOT NULL") if pubsub else sa.text("pubsub_message_id IS NULL")
    returning: list[Any] = [t.c.id]
    if lock:
        returning.append(claims.lock_clause(sa.bindparam("lock_facility", type_=sa.Text),
                                            sa.bindparam("lock_control_id", type_=sa.Text)))
    return (pg_insert(t).values({name: sa.bindparam(name, type_=t.c[name].type) for name in _ROW_COLUMNS})
            .on_conflict_do_nothing(index_elements=key, index_where=where).returning(*returning))


def _store_and_process(uow: UnitOfWork, delivery: Delivery, index: int, count: int, part: Part, final: bool,
                       fast: bool = False, commits: bool = False) -> PartOutcome:
    received = utcnow()
    row_id = uuid4()
    values = {
        "id": row_id, "received_at": received, "transport": delivery.transport, "ce_source": delivery.ce_source,
        "ce_id": delivery.ce_id, "ce_type": delivery.ce_type, "pubsub_message_id": delivery.pubsub_message_id,
        "publish_time": delivery.publish_time, "ordering_key": delivery.ordering_key,
        "subscription": delivery.subscription, "attributes": delivery.attributes, "part": index, "parts": count,
        "content_format": part.content_format, "raw": part.raw, "raw_sha256": hashlib.sha256(part.raw).hexdigest(),
        "raw_size": len(part.raw), "status": "failed", "error_code": "incomplete", "warnings": [], "delivery_count": 1,
        "attempts": 1, **header_columns(part),
    }
    lock = fast and part.message is not None and not part.quarantine and not part.crash
    if lock:
        # The claim's advisory lock, taken by the new row's RETURNING (as the claim would right
        # after it): one round trip fewer. A redelivery takes none (it returns no row).
        assert part.message is not None
        header = part.message.header
        values.update(lock_facility=_clean_key(header.sending_facility), lock_control_id=_clean_key(header.control_id))
    pubsub = bool(delivery.pubsub_message_id)
    ahead: Ahead | None = None
    if fast:  # SQL text (shared.lis.sql), on either unit of work
        params = [values[c] for c in sql.ROW_COLUMNS]
        params[sql.ROW_COLUMNS.index("attributes")] = json.dumps(delivery.attributes)  # None as JSON null, as the ORM writes it
        statements: list[tuple[str, Any]] = [(sql.insert_row(pubsub, lock), params)]
        if lock:
            params.append(f"lis-control-id:{values['lock_facility']}\x1f{values['lock_control_id']}")
            identifiers, keys, reads = _reads_ahead(part, row_id, values["lock_facility"], values["lock_control_id"])
            statements += reads
        answers = run_together(uow, statements)
        inserted = next(iter(answers[0]), None)
        if lock and inserted is not None:
            ahead = Ahead(identifiers, answers[1], (keys, answers[2]) if keys is not None else None)
    else:
        inserted = uow.session.execute(_insert_row(pubsub, lock), values, execution_options=PREPARED).first()
    if inserted is None:
        # The update locks the row: a concurrent copy waits here, then reads the status the first
        # one committed (READ COMMITTED re-reads the row), so only one of them processes it.
        if fast:
            seen = next(iter(run(uow, sql.redelivered(pubsub), _key_values(delivery, index))), None)
        else:
            seen = _redelivered(uow, delivery, index)
        if seen is None or seen.status != "failed":
            return PartOutcome(seen.id if seen else None, "duplicate", "redelivery")
        # Failed (a bug, or a row left incomplete) is never final: the redelivery runs it again.
        if isinstance(uow, DriverUnitOfWork):
            raise NeedsOrm("a failed row runs again")
        import sqlalchemy as sa  # noqa: PLC0415

        t = _messages()
        published = seen.publish_time or delivery.publish_time
        uow.session.execute(sa.update(t).where(t.c.id == seen.id).values(publish_time=published, **header_columns(part)))
        return process_part(uow, RowMeta(seen.id, seen.received_at, published, fast=fast), part, final=final)
    return process_part(uow, RowMeta(row_id, received, delivery.publish_time, fast=fast, locked=lock, ahead=ahead,
                                     commits=commits), part, final=final)


def _reads_ahead(part: Part, row_id: uuid.UUID, facility: str, control_id: str
                 ) -> tuple[list[tuple[str, str]] | None, Any, list[tuple[str, Any]]]:
    """The reads to send with the row's insert: (the identifiers the claim looks the patient up by, the
    first order's keys, or None for either, and the statements: the claim, then the order's lookup)."""
    assert part.message is not None
    digest = part.digest or hashlib.sha256(part.raw).hexdigest()
    identifiers = _patient_identifiers(part.message)
    statements = [claims.claim_statement(facility, control_id, digest, row_id, identifiers)]
    keys = _first_order_keys(part.message) if identifiers else None
    if keys is not None:
        statements.append(lis_orders.find_text(keys, lock=True))
    return identifiers, keys, statements


def _first_order_keys(message: Message) -> Any:
    """The keys of the order the message's one patient group writes first (`order_group.apply_orders`
    goes by key), when every order of it carries its numbers (keys of orders without numbers depend on
    the claim); else None."""
    orders = message.groups[0].orders
    if not orders:
        return None
    try:
        keys = [lis_orders.numbered_keys(order) for order in orders]
    except Quarantine:
        return None  # the careful lookup says so, with its reason
    if any(k is None for k in keys):
        return None
    return min(keys, key=lambda k: k.sort_key)


def _redelivered(uow: UnitOfWork, delivery: Delivery, index: int) -> Any:
    """The careful path's `sql.redelivered`: the stored row locked, its counts bumped, its status read."""
    import sqlalchemy as sa  # noqa: PLC0415

    t = _messages()
    key = ([t.c.ce_source, t.c.pubsub_message_id, t.c.part] if delivery.pubsub_message_id
           else [t.c.ce_source, t.c.ce_id, t.c.part])
    where = sa.text("pubsub_message_id IS NOT NULL") if delivery.pubsub_message_id else sa.text("pubsub_message_id IS NULL")
    return uow.session.execute(
        sa.update(t)
        .where(*(c == v for c, v in zip(key, _key_values(delivery, index), strict=True)), where)
        .values(delivery_count=t.c.delivery_count + 1,
                attempts=t.c.attempts + sa.case((t.c.status == "failed", 1), else_=0))
        .returning(t.c.id, t.c.status, t.c.received_at, t.c.publish_time), execution_options=PREPARED
    ).first()


def _store_failed(uow: UnitOfWork, delivery: Delivery, parts: list[Part], error: str) -> list[PartOutcome]:
    """The last resort: the raw bytes and delivery keys only, as ``failed`` (replayable after the fix)."""
    import sqlalchemy as sa  # noqa: PLC0415
    from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

    outcomes = []
    for index, part in enumerate(parts):
        t = _messages()
        key = ["ce_source", "pubsub_message_id", "part"] if delivery.pubsub_message_id else ["ce_source", "ce_id", "part"]
        where = sa.text("pubsub_message_id IS NOT NULL") if delivery.pubsub_message_id else sa.text("pubsub_message_id IS NULL")
        row = uow.session.execute(
            pg_insert(t).values(
                id=uuid4(), received_at=utcnow(), processed_at=utcnow(), transport=delivery.transport,
                ce_source=delivery.ce_source, ce_id=delivery.ce_id, pubsub_message_id=delivery.pubsub_message_id,
                part=index, parts=len(parts), content_format=part.content_format, raw=part.raw,
                raw_sha256=hashlib.sha256(part.raw).hexdigest(), raw_size=len(part.raw), status="failed",
                error_code=f"store_error:{error}"[:200], warnings=[], delivery_count=1, attempts=1,
            ).on_conflict_do_nothing(index_elements=key, index_where=where).returning(t.c.id)
        ).first()
        outcomes.append(PartOutcome(row.id if row else None, "failed", f"store_error:{error}"))
    return outcomes


def _key_values(delivery: Delivery, index: int) -> list[object]:
    if delivery.pubsub_message_id:
        return [delivery.ce_source, delivery.pubsub_message_id, index]
    return [delivery.ce_source, delivery.ce_id, index]


def process_part(uow: UnitOfWork, row: RowMeta, part: Part, *, final: bool = True) -> PartOutcome:
    """Apply a stored part and write its final status (used by ingest and by replay).

    ``row.fast``: no savepoint, writes sent with the final status (one group), and anything but an
    applied message or a duplicate raises `Careful` (the caller rolls back and runs it carefully).
    """
    warnings = Warnings(part.warnings)
    if part.quarantine:
        return _finish(uow, row, "quarantined", part.quarantine, warnings, None)
    if part.crash or part.message is None:
        return _finish(uow, row, "failed", f"parser_error:{part.crash or 'no_message'}", warnings, None)
    header = part.message.header
    facility = _clean_key(header.sending_facility)
    control_id = _clean_key(header.control_id)
    when = header.message_datetime
    if when is not None and when > row.received_at + FUTURE_TOLERANCE:
        # A sender clock far ahead would make this message "newer" than every real one to come.
        warnings.add("future_timestamp:MSH-7")
        when = None
    when = when or row.publish_time or row.received_at
    ctx = MessageContext(message_id=row.id, stamp=make_stamp(when, control_id, facility), facility=facility,
                         control_id=control_id)
    digest = part.digest or hashlib.sha256(part.raw).hexdigest()
    if row.fast:
        return _process_fast(uow, row, part, ctx, digest, warnings)
    try:
        with uow.session.begin_nested():
            claimed = claims.claim(uow, facility, control_id, digest, row.id)
            if claimed.duplicate_of is not None and claimed.duplicate_of != row.id:
                return _finish(uow, row, "duplicate", "same_control_id", warnings, None, duplicate_of=claimed.duplicate_of)
            if claimed.reused_from is not None:
                warnings.add(f"control_id_reused:{claimed.reused_from}")
            ctx = replace(ctx, digest=digest, reused_control_id=claimed.reused_from is not None)
            applied = apply_message(uow, ctx, part.message, warnings)
    except Quarantine as q:
        return _finish(uow, row, "quarantined", q.reason, warnings, None)
    except ConcurrentChange:
        raise
    except Exception as exc:
        state = _sqlstate(exc)
        if is_transient_db_error(exc) or (state in _RETRY_IN_PROCESS and not final):
            raise
        log.error("lis message failed", exc_info=True, extra={"fields": {"lis_message_id": str(row.id)}})
        code = f"apply_error:{type(exc).__name__}" + (f":{state}" if state else "")
        return _finish(uow, row, "failed", code, warnings, None)
    return _finish(uow, row, applied.status, applied.reason, warnings, applied.patient_id, patient_ids=applied.patient_ids)


def _process_fast(uow: UnitOfWork, row: RowMeta, part: Part, ctx: MessageContext, digest: str,
                  warnings: Warnings) -> PartOutcome:
    assert part.message is not None
    found = found_order = None
    ahead = row.ahead
    if ahead is not None:
        claimed, rows = claims.claimed(uow, ctx.facility, ctx.control_id, digest, row.id, ahead.claim,
                                       with_patient=ahead.identifiers is not None)
        if ahead.identifiers is not None:
            found = (tuple(ahead.identifiers), rows)
        found_order = ahead.order
    else:
        claimed = claims.claim(uow, ctx.facility, ctx.control_id, digest, row.id, locked=row.locked)
    if claimed.duplicate_of is not None and claimed.duplicate_of != row.id:
        return _finish(uow, row, "duplicate", "same_control_id", warnings, None, duplicate_of=claimed.duplicate_of)
    if claimed.reused_from is not None:
        warnings.add(f"control_id_reused:{claimed.reused_from}")
    pending = Pending() if len(part.message.groups) == 1 else None
    ctx = replace(ctx, digest=digest, reused_control_id=claimed.reused_from is not None, pending=pending, found=found,
                  found_order=found_order)
    try:
        applied = apply_message(uow, ctx, part.message, warnings)
    except (ConcurrentChange, NeedsOrm):
        raise
    except Exception as exc:
        if is_transient_db_error(exc):
            raise
        raise Careful(type(exc).__name__) from exc
    if applied.status != "processed" and applied.status != "ignored":
        raise Careful(applied.status)  # some patient groups quarantined: the careful path records it
    return _finish(uow, row, applied.status, applied.reason, warnings, applied.patient_id,
                   patient_ids=applied.patient_ids, pending=pending)


def _patient_identifiers(message: Message) -> list[tuple[str, str]] | None:
    """The (system, value) keys the message's one patient group is looked up by, when its patient
    is looked up first (`apply.resolve_patient`): the fast path finds them with the claim."""
    if len(message.groups) != 1 or message.header.message_type not in _PATIENT_FIRST:
        return None
    group = message.groups[0]
    if group.problem is not None or group.patient is None:
        return None
    try:
        keys = identifier_keys(group.patient.identifiers, Warnings())  # its warnings are the lookup's own
    except Quarantine:
        return None
    return [(system, value) for system, value, _ in keys]


def _finish(uow: UnitOfWork, row: RowMeta, status: str, reason: str | None, warnings: Warnings,
            patient_id: uuid.UUID | None, duplicate_of: uuid.UUID | None = None,
            patient_ids: list[uuid.UUID] | None = None, pending: Pending | None = None) -> PartOutcome:
    values = {
        "id": row.id, "status": status, "error_code": reason[:200] if reason else None, "warnings": list(warnings),
        "patient_id": patient_id,
        "patient_ids": patient_ids if patient_ids is not None else ([patient_id] if patient_id else []),
        "duplicate_of": duplicate_of, "processed_at": utcnow(),
    }
    if row.fast:  # SQL text (shared.lis.sql), on either unit of work
        params = (values["processed_at"], status, values["error_code"], values["warnings"], patient_id,
                  values["patient_ids"], duplicate_of, values["processed_at"], row.id)
        # The transaction's last statement on the driver pool: its COMMIT rides in the same write, and a
        # failed check fails the statement itself, so nothing is committed (`Pending.attach`'s guard).
        commits = row.commits and isinstance(uow, DriverUnitOfWork)
        update, args, checks = sql.FINAL_STATUS, params, []
        if pending:
            # The message's writes ride along as CTEs (shared.lis.pending): one statement for all.
            update, args, checks = pending.attach(sql.FINAL_STATUS, params, returning=True, guarded=commits)
        rows = uow.pipeline([(update, args)], commit=True)[0] if commits else run(uow, update, args)
        if checks:
            check(rows[0] if rows else None, checks)
    else:
        uow.session.execute(_final_status("m_"), {f"m_{name}": value for name, value in values.items()},
                            execution_options=PREPARED)
    return PartOutcome(row.id, status, reason, patient_id)


@functools.cache
def _final_status(prefix: str) -> sa.Update:
    """The row's final status (its bind parameters named ``prefix + column``): the careful path's."""
    import sqlalchemy as sa  # noqa: PLC0415

    t = _messages()
    message_time = sa.func.coalesce(t.c.message_time, t.c.publish_time, t.c.received_at)
    processed = sa.bindparam(f"{prefix}processed_at", type_=t.c.processed_at.type)
    return sa.update(t).where(t.c.id == sa.bindparam(f"{prefix}id", type_=t.c.id.type)).values(
        {**{name: sa.bindparam(f"{prefix}{name}", type_=t.c[name].type)
            for name in ("status", "error_code", "warnings", "patient_id", "patient_ids", "duplicate_of")},
         "processed_at": processed, "lag_seconds": sa.extract("epoch", processed - message_time)})


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a server's error: SQLAlchemy's (the ORM's unit of work) or pg8000's (the driver's)."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None and isinstance(exc, sa_exc.DBAPIError):
        exc = exc.orig
    fields = wire.server_error_fields(exc)
    return fields.get("C") if fields else None
