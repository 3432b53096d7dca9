"""Queue depths read from PostgreSQL: the serverless equivalent of "worker queue depth".

Nothing waits in a worker's memory here: work waits in tables. These gauges read them:

- ``patient_mgt.outbox.unpublished`` / ``patient_mgt.outbox.oldest_age`` — events committed but not
  yet accepted by the broker, and how long the oldest has waited (0 when none);
- ``patient_mgt.notifications.due`` — notifications ``scheduled``/``pending`` whose ``send_after``
  has passed (the due job's backlog);
- ``patient_mgt.lis.quarantined`` — LIS messages in quarantine (content that needs an operator);
- ``patient_mgt.dead_letters.pending`` — dead-lettered events not re-driven yet;
- ``patient_mgt.duplicates.open`` — probable-duplicate flags waiting for review (``duplicate_flags``).

One query (each part on a partial or status index; the outbox part reads the unpublished rows
only) answers all six; its result is reused for a
second, so one collection queries once. A failing query yields no observation and a log line,
never a failed scrape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from shared.log import get_logger

if TYPE_CHECKING:
    import sqlalchemy as sa

log = get_logger("patient_mgt.telemetry")
SNAPSHOT_SECONDS = 1.0
QUERY_TIMEOUT_MS = 2000

# (instrument name, unit, description, snapshot key)
GAUGES: tuple[tuple[str, str, str, str], ...] = (
    ("patient_mgt.outbox.unpublished", "{event}", "Outbox events not yet accepted by the event sink.", "outbox_unpublished"),
    ("patient_mgt.outbox.oldest_age", "s", "Age of the oldest unpublished outbox event (0 when none).", "outbox_oldest_age"),
    ("patient_mgt.notifications.due", "{notification}",
     "Notifications scheduled or pending whose send_after has passed.", "notifications_due"),
    ("patient_mgt.lis.quarantined", "{message}", "LIS messages in quarantine.", "lis_quarantined"),
    ("patient_mgt.dead_letters.pending", "{event}", "Dead-lettered events not re-driven.", "dead_letters_pending"),
    ("patient_mgt.duplicates.open", "{flag}", "Probable-duplicate flags waiting for review.", "duplicate_flags_open"),
)

_lock = threading.Lock()
_cached: tuple[float, dict[str, float]] | None = None


def _statement() -> sa.Select[Any]:
    import sqlalchemy as sa  # noqa: PLC0415  (a scrape's, not a request's: the api's hot paths load no SQLAlchemy)

    from shared.models import DeadLetter, DuplicateFlag, LisMessage, Notification, OutboxEvent  # noqa: PLC0415

    def count(model: Any, *where: Any) -> sa.ScalarSelect[Any]:
        return sa.select(sa.func.count()).select_from(model).where(*where).scalar_subquery()

    # min(created_at), not the lowest seq: a long transaction can commit an older row after a newer one.
    oldest = sa.select(sa.func.min(OutboxEvent.created_at)).where(OutboxEvent.published_at.is_(None)).scalar_subquery()
    return sa.select(
        count(OutboxEvent, OutboxEvent.published_at.is_(None)).label("outbox_unpublished"),
        sa.func.coalesce(sa.extract("epoch", sa.func.now() - oldest), 0).label("outbox_oldest_age"),
        count(Notification, Notification.status.in_(("scheduled", "pending")),
              Notification.send_after <= sa.func.now()).label("notifications_due"),
        count(LisMessage, LisMessage.status == "quarantined").label("lis_quarantined"),
        count(DeadLetter, DeadLetter.redriven_at.is_(None)).label("dead_letters_pending"),
        count(DuplicateFlag, DuplicateFlag.status == "open").label("duplicate_flags_open"),
    )


def read_depths() -> dict[str, float]:
    """The six depths, now (one short read-only transaction)."""
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.db import unit_of_work  # noqa: PLC0415

    with unit_of_work() as uow:
        uow.session.execute(sa.text(f"SET LOCAL statement_timeout = {QUERY_TIMEOUT_MS}"))
        row = uow.session.execute(_statement()).mappings().one()
    return {key: max(0.0, float(value or 0)) for key, value in row.items()}


def snapshot() -> dict[str, float] | None:
    """The depths, at most ``SNAPSHOT_SECONDS`` old; None when the database cannot be read."""
    global _cached
    with _lock:
        cached = _cached
        if cached is not None and time.monotonic() - cached[0] < SNAPSHOT_SECONDS:
            return cached[1]
        try:
            depths = read_depths()
        except Exception as exc:  # noqa: BLE001 — a scrape must not fail because the database is down
            log.warning("queue depths not read", extra={"fields": {"error_type": type(exc).__name__}})
            _cached = None
            return None
        _cached = (time.monotonic(), depths)
        return depths


def forget() -> None:
    """Drop the cached snapshot (the next collection queries again)."""
    global _cached
    with _lock:
        _cached = None


def _callback(key: str) -> Callable[[Any], Iterable[Any]]:
    def observe(_options: Any) -> Iterable[Any]:
        from opentelemetry.metrics import Observation  # noqa: PLC0415

        depths = snapshot()
        return [] if depths is None else [Observation(depths[key])]

    return observe


def register(meter: Any) -> list[Any]:
    """Create the observable gauges on ``meter`` (the api's, where ``GET /metrics`` reads them)."""
    return [meter.create_observable_gauge(name, callbacks=[_callback(key)], unit=unit, description=description)
            for name, unit, description, key in GAUGES]
