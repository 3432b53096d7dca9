"""Recording the outcomes of the consumers' work: LIS messages, notifications, job runs.

Each helper is called once the outcome is committed (a rolled-back attempt that is retried is
counted once, when it finally commits) and costs one attribute check when metrics are off.
Attribute values are bounded codes (``shared.telemetry.labels``); nothing identifies a patient.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Protocol

from shared.log import get_logger
from shared.telemetry import instruments, labels

log = get_logger("patient_mgt.telemetry")
LIS_STATUSES = ("processed", "duplicate", "ignored", "quarantined", "failed")
NOTIFICATION_STATUSES = ("sending", "sent", "pending", "scheduled", "skipped", "failed")
NOTIFICATION_CHANNELS = ("email", "sms")
NOTIFICATION_KINDS = ("results_ready", "welcome", "reminder")
JOB_STATUSES = ("running", "succeeded", "incomplete", "failed", "retry", "skipped")
# LIS warnings counted as a metric (as GET /lis/status counts them): bounded codes, never their detail.
WATCHED_LIS_WARNINGS = ("control_id_reused",)


class LisOutcome(Protocol):
    message_id: uuid.UUID | None
    status: str


def record_lis_outcomes(outcomes: Iterable[LisOutcome]) -> None:
    """Count each message of a committed delivery by type and outcome (and by watched warning), and
    the lag (processed-at minus MSH-7) of those applied now. The type and lag are read back from their ``lis_messages``
    rows (one query, only when metrics are on), so the ingest keeps no bookkeeping of its own."""
    if not instruments.enabled():
        return
    outcomes = list(outcomes)
    try:
        rows = _lis_rows([o.message_id for o in outcomes if o.message_id is not None])
    except Exception as exc:  # noqa: BLE001 — the delivery is committed; a metric must not fail it
        log.warning("lis metrics not read", extra={"fields": {"error_type": type(exc).__name__}})
        rows = {}
    for outcome in outcomes:
        row = rows.get(outcome.message_id) if outcome.message_id is not None else None
        message_type = labels.hl7_message_type(row["message_type"] if row else None)
        status = labels.name(outcome.status, LIS_STATUSES)
        instruments.LIS_MESSAGES.add(1, {"message_type": message_type, "outcome": status})
        for code in {w.split(":", 1)[0] for w in (row["warnings"] or [])} if row else ():
            if code in WATCHED_LIS_WARNINGS:
                instruments.LIS_WARNINGS.add(1, {"message_type": message_type, "warning": code})
        if status == "processed" and row and row["message_time"] is not None and row["lag_seconds"] is not None:
            instruments.LIS_LAG.record(max(0.0, float(row["lag_seconds"])), {"message_type": message_type})


def _lis_rows(ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    if not ids:
        return {}
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.db import unit_of_work  # noqa: PLC0415
    from shared.models import LisMessage  # noqa: PLC0415

    with unit_of_work() as uow:
        result = uow.session.execute(
            sa.select(LisMessage.id, LisMessage.message_type, LisMessage.message_time, LisMessage.lag_seconds,
                      LisMessage.warnings)
            .where(LisMessage.id.in_(ids))
        ).mappings().all()
    return {row["id"]: row for row in result}


def record_notification(channel: str, status: str, kind: str) -> None:
    """One notification reached ``status`` (sent, skipped, scheduled, pending, failed) on ``channel``."""
    instruments.NOTIFICATIONS.add(1, {
        "channel": labels.name(channel, NOTIFICATION_CHANNELS),
        "status": labels.name(status, NOTIFICATION_STATUSES),
        "kind": labels.name(kind, NOTIFICATION_KINDS),
    })


def record_job_run(job: str, status: str, seconds: float) -> None:
    """One job run finished with ``status`` after ``seconds`` of wall time."""
    attributes = {"job": labels.name(job), "status": labels.name(status, JOB_STATUSES)}
    instruments.JOB_RUNS.add(1, attributes)
    instruments.JOB_DURATION.record(max(0.0, seconds), attributes)
