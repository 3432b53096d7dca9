"""/lis/status arithmetic: counts by window and lag percentiles over the last hour."""

import hashlib
import uuid
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.lis import operator
from shared.models import LisMessage

# A clock far from any other test's rows, so the windows hold only the rows made here.
NOW = datetime(2101, 6, 1, 12, 0, tzinfo=timezone.utc)


def _row(status: str, received: datetime, processed: datetime | None, lag: float | None) -> dict:
    return dict(id=uuid.uuid4(), received_at=received, processed_at=processed, transport="pubsub", ce_source="t",
                ce_id=uuid.uuid4().hex, pubsub_message_id=uuid.uuid4().hex, part=0, parts=1, content_format="hl7v2",
                raw=b"x", raw_sha256=hashlib.sha256(b"x").hexdigest(), raw_size=1, status=status, warnings=[],
                lag_seconds=lag, delivery_count=1, attempts=1)


def test_status_windows_and_lag_percentiles(database_url):
    rows = [
        _row("processed", NOW - timedelta(minutes=10), NOW - timedelta(minutes=10), 1.0),
        _row("processed", NOW - timedelta(minutes=20), NOW - timedelta(minutes=20), 2.0),
        _row("quarantined", NOW - timedelta(minutes=30), NOW - timedelta(minutes=30), 10.0),
        _row("duplicate", NOW - timedelta(minutes=5), NOW - timedelta(minutes=5), 99999.0),  # not lag
        _row("processed", NOW - timedelta(hours=2), NOW - timedelta(hours=2), 500.0),  # outside the hour
        _row("failed", NOW - timedelta(hours=30), NOW - timedelta(hours=30), 7.0),  # outside the day
    ]
    with unit_of_work() as uow:
        uow.session.execute(sa.insert(LisMessage), rows)
    with unit_of_work() as uow:
        status = operator.status(uow, now=NOW)
    assert status["lag_seconds"] == {"p50": 2.0, "p95": 9.2, "max": 10.0, "messages": 3}
    assert status["last_message_at"] == NOW - timedelta(minutes=5)
    day = status["counts"]["last_24h"]
    assert (day["processed"], day["quarantined"], day["duplicate"], day["failed"]) == (3, 1, 1, 0)
    assert status["counts"]["total"]["failed"] >= 1
