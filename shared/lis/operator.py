"""The operator's view of the LIS feed: sync status, the stored messages, and replay.

* `status` — counts by status (last 24 h and in total), the messages carrying each warning an
  operator must look at (``WATCHED_WARNINGS``: a reused control id), the last message received, and
  the lag (processed-at − MSH-7, or − publish time when MSH-7 is absent) over the last hour: p50,
  p95, max. Redeliveries and duplicates are left out of the lag (they are old by nature).
* `list_messages` — newest first, filtered by status, type (``ORU`` or ``ORU^R01``), warning (a
  code: ``control_id_reused`` matches ``control_id_reused:<id>`` too, ``not_e164:PID-13`` itself),
  reason, sending facility and a received-at range.
* `replay` — re-run a ``failed`` or ``quarantined`` message from its stored bytes (after a fix,
  or after an operator resolved what quarantined it). Any other status is left as it is, so a
  replay is idempotent: the (MSH-4, MSH-10) claim makes a message that was applied meanwhile a
  duplicate, and a second replay of a processed message does nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.errors import Conflict, NotFound
from shared.lis.content import Part, read_parts
from shared.lis.envelope import ENVELOPE_PROBLEMS
from shared.lis.ingest import PartOutcome, RowMeta, header_columns, process_part, with_retries
from shared.models import LisMessage
from shared.models.base import utcnow
from shared.models.lis import LIS_STATUSES
from shared.services import cursor
from shared.telemetry.outcomes import WATCHED_LIS_WARNINGS

REPLAYABLE = ("failed", "quarantined")
# Warnings /lis/status counts (as the metric does): each means a lab message an operator should look at.
WATCHED_WARNINGS = WATCHED_LIS_WARNINGS
CURSOR_KIND = "lis"
LAG_STATUSES = ("processed", "ignored", "quarantined", "failed")


def status(uow: UnitOfWork, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    day_ago, hour_ago = now - timedelta(hours=24), now - timedelta(hours=1)
    in_day = sa.and_(LisMessage.received_at > day_ago, LisMessage.received_at <= now)
    watched = [(code, _has_warning(code)) for code in WATCHED_WARNINGS]
    counts = uow.session.execute(
        sa.select(
            LisMessage.status,
            sa.func.count().filter(in_day).label("day"),
            sa.func.count().label("total"),
            *(sa.func.count().filter(in_day, has).label(f"{code}_day") for code, has in watched),
            *(sa.func.count().filter(has).label(f"{code}_total") for code, has in watched),
        ).group_by(LisMessage.status)
    ).all()
    lag = uow.session.execute(
        sa.select(
            sa.func.percentile_cont(0.5).within_group(LisMessage.lag_seconds),
            sa.func.percentile_cont(0.95).within_group(LisMessage.lag_seconds),
            sa.func.max(LisMessage.lag_seconds),
            sa.func.count(LisMessage.lag_seconds),
        ).where(LisMessage.processed_at > hour_ago, LisMessage.processed_at <= now,
                LisMessage.status.in_(LAG_STATUSES))
    ).one()
    last = uow.session.execute(sa.select(sa.func.max(LisMessage.received_at)).where(LisMessage.received_at <= now)).scalar()
    by_day = {s: 0 for s in LIS_STATUSES}
    total = {s: 0 for s in LIS_STATUSES}
    warnings = {code: {"last_24h": 0, "total": 0} for code in WATCHED_WARNINGS}
    for row in counts:
        by_day[row.status], total[row.status] = row.day, row.total
        for code in WATCHED_WARNINGS:
            warnings[code]["last_24h"] += row._mapping[f"{code}_day"]
            warnings[code]["total"] += row._mapping[f"{code}_total"]
    return {
        "counts": {"last_24h": by_day, "total": total},
        "warnings": warnings,
        "last_message_at": last,
        "lag_seconds": {"p50": _round(lag[0]), "p95": _round(lag[1]), "max": _round(lag[2]), "messages": lag[3]},
    }


def _has_warning(code: str) -> sa.ColumnElement[bool]:
    """The message carries warning `code`, alone or with its detail (``code:…``)."""
    prefix = code.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ":%"
    items = sa.func.unnest(LisMessage.warnings).table_valued("w").render_derived()
    return sa.exists(sa.select(sa.literal(1)).select_from(items).where(sa.or_(items.c.w == code, items.c.w.like(prefix))))


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


@dataclass(frozen=True)
class MessageFilter:
    status: str | None = None
    type: str | None = None
    since: datetime | None = None
    limit: int = 50
    cursor: str | None = None
    # a warning code the message carries (``not_e164:PID-13``; ``control_id_reused`` also matches
    # ``control_id_reused:<id>``)
    warning: str | None = None
    reason: str | None = None  # the quarantine/ignore reason or failure code (``error_code``), exactly
    facility: str | None = None  # MSH-4, exactly
    until: datetime | None = None  # received before


def list_messages(uow: UnitOfWork, principal: Principal, f: MessageFilter, *, include_raw: bool) -> tuple[list[Any], str | None]:
    stmt = sa.select(LisMessage.__table__).order_by(LisMessage.received_at.desc(), LisMessage.id.desc()).limit(f.limit)
    if f.status:
        stmt = stmt.where(LisMessage.status == f.status)
    if f.type:
        kind = f.type.upper()
        stmt = stmt.where(LisMessage.message_type == kind if "^" in kind else
                          sa.or_(LisMessage.message_type == kind, LisMessage.message_type.startswith(kind + "^")))
    if f.since:
        stmt = stmt.where(LisMessage.received_at >= f.since)
    if f.until:
        stmt = stmt.where(LisMessage.received_at < f.until)
    if f.warning:
        stmt = stmt.where(_has_warning(f.warning))
    if f.reason:
        stmt = stmt.where(LisMessage.error_code == f.reason)
    if f.facility:
        stmt = stmt.where(LisMessage.sending_facility == f.facility)
    if f.cursor:
        after = uow.session.execute(
            sa.select(LisMessage.received_at, LisMessage.id).where(LisMessage.id == cursor.decode_id(CURSOR_KIND, f.cursor))
        ).first()
        if after is None:
            raise cursor.invalid()
        stmt = stmt.where(sa.tuple_(LisMessage.received_at, LisMessage.id) < sa.tuple_(after.received_at, after.id))
    rows = list(uow.session.execute(stmt).all())
    _audit_read(uow, principal, "lis.messages.list", rows, include_raw)
    next_cursor = cursor.encode(CURSOR_KIND, rows[-1].id) if len(rows) == f.limit else None
    return rows, next_cursor


def get_message(uow: UnitOfWork, principal: Principal, message_id: uuid.UUID, *, include_raw: bool) -> Any:
    row = uow.session.execute(sa.select(LisMessage.__table__).where(LisMessage.id == message_id)).first()
    if row is None:
        raise NotFound("No LIS message with this id")
    _audit_read(uow, principal, "lis.message.read", [row], include_raw)
    return row


def _audit_read(uow: UnitOfWork, principal: Principal, action: str, rows: list[Any], include_raw: bool) -> None:
    patients = list(dict.fromkeys(p for r in rows for p in (r.patient_ids or ([r.patient_id] if r.patient_id else []))))
    if patients or include_raw:
        audit.record(uow, principal, action, patients, details={"messages": len(rows), "raw": include_raw})


def replay(principal: Principal, message_id: uuid.UUID) -> tuple[PartOutcome | None, bool]:
    """Re-run a stored message; returns (its outcome, whether it was re-run). Raises TransientFault."""

    def work(uow: UnitOfWork, final: bool) -> tuple[PartOutcome | None, bool]:
        row = uow.session.execute(
            sa.select(LisMessage.__table__).where(LisMessage.id == message_id).with_for_update()
        ).first()
        if row is None:
            raise NotFound("No LIS message with this id")
        if row.status not in REPLAYABLE:
            return None, False
        if row.raw is None:
            raise Conflict("The raw message was purged (LIS_RAW_RETENTION_DAYS); it cannot be replayed")
        if row.error_code in ENVELOPE_PROBLEMS:
            raise Conflict("The delivery carried no usable message data; replaying it cannot change that")
        part = _reparse(row.raw, row.content_format)
        uow.session.execute(sa.update(LisMessage).where(LisMessage.id == row.id).values(
            attempts=LisMessage.attempts + 1, **header_columns(part)))
        outcome = process_part(uow, RowMeta(row.id, row.received_at, row.publish_time), part, final=final)
        audit.record(uow, principal, "lis.message.replay", [outcome.patient_id] if outcome.patient_id else [],
                     details={"lis_message_id": str(row.id), "from": row.status, "to": outcome.status})
        return outcome, True

    return with_retries(work)


def _reparse(raw: bytes, content_format: str) -> Part:
    parts = read_parts(raw, content_format if content_format in ("hl7v2", "json") else None)
    if len(parts) == 1:
        return parts[0]
    # Stored as one message but now read as several (after a parser fix): one row cannot hold them.
    return Part(raw=raw, content_format="hl7v2", quarantine="replay_holds_several_messages")
