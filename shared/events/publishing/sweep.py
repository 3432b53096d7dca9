"""The outbox sweep: publish what the immediate publish missed (the ``outbox-sweep`` job).

Oldest first, per subject in order, in batches claimed with ``FOR UPDATE SKIP LOCKED`` so
concurrent sweepers (two job pods, a sweep and an immediate publish) never send a row twice in
the same round. Within one run, a subject whose oldest unpublished event fails is not retried and
its later events wait (the next run tries again). The run stops at its time budget, when nothing
is left, or when a batch makes no progress (the sink is down). Every statement runs on the process's
driver pool (``relay.publish_batch``, ``_unpublished``): a sweep loads no SQLAlchemy.
"""

from __future__ import annotations

import time

from shared.db import driver_connection, wire
from shared.events.publishing import Publisher, publisher_from_settings
from shared.events.publishing.relay import publish_batch
from shared.log import get_logger

log = get_logger("patient_mgt.events.sweep")

BATCH_SIZE = 100


def sweep_outbox(
    budget_seconds: float,
    *,
    publisher: Publisher | None = None,
    batch_size: int = BATCH_SIZE,
    timeout: float | None = None,
) -> dict[str, int]:
    """Publish unpublished outbox rows for at most ``budget_seconds``.

    Returns counts: ``published``, ``failed`` (sink refused/timed out), ``deferred`` (left for the
    next run: behind a failed or locked older event of their subject, or out of time),
    ``remaining`` (unpublished rows after the run) and ``sink_configured`` (0 or 1).
    """
    from shared.settings import get_settings  # noqa: PLC0415

    started = time.monotonic()
    deadline = started + budget_seconds
    publisher = publisher or publisher_from_settings()
    counts = {"published": 0, "failed": 0, "deferred": 0, "remaining": 0, "sink_configured": int(publisher is not None)}
    if publisher is None:
        counts["remaining"] = _unpublished()
        log.warning("outbox sweep: no event sink configured (K_SINK or EVENT_SINK); nothing published",
                    extra={"fields": {"remaining": counts["remaining"]}})
        return counts
    per_event_timeout = timeout if timeout is not None else max(get_settings().publish_timeout_seconds, 1.0)
    failed_ids: set = set()
    blocked: set[str] = set()
    errors: dict[str, int] = {}
    while time.monotonic() < deadline:
        batch = publish_batch(publisher, limit=batch_size, timeout=per_event_timeout, deadline=deadline,
                              exclude_ids=failed_ids, exclude_subjects=blocked)
        counts["published"] += batch.published
        counts["failed"] += batch.failed
        progress = batch.published or len(batch.failed_ids - failed_ids) or len(batch.blocked_subjects - blocked)
        failed_ids |= batch.failed_ids
        blocked |= batch.blocked_subjects
        for code, n in batch.errors.items():
            errors[code] = errors.get(code, 0) + n
        if batch.claimed == 0 or (batch.published == 0 and batch.failed > 0) or not progress:
            break  # nothing left, or the sink refuses everything: the next run tries again
    counts["remaining"] = _unpublished()
    counts["deferred"] = max(0, counts["remaining"] - counts["failed"])
    fields = {**counts, "errors": errors, "blocked_subjects": len(blocked), "duration_ms": round((time.monotonic() - started) * 1000, 1)}
    if counts["failed"]:
        log.warning("outbox sweep finished with failures", extra={"fields": fields})
    else:
        log.info("outbox sweep finished", extra={"fields": fields})
    return counts


def _unpublished() -> int:
    """The outbox rows not yet published (one statement on the driver pool, in autocommit)."""
    with driver_connection() as con:
        return int(wire.rows(con, "SELECT count(*) FROM outbox WHERE published_at IS NULL", pipelined=True)[0][0])
