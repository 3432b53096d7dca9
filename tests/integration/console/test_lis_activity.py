"""The overview chart's data: messages received and lag p95 per UTC hour, over 24 hours."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from shared.db import unit_of_work
from shared.lis.operator_views import last_24_hours
from shared.models import LisMessage

pytestmark = pytest.mark.integration
# A day no other test writes to: the window holds only the rows made here.
NOW = datetime(2099, 6, 1, 12, 30, tzinfo=timezone.utc)


def _row(received: datetime, status: str = "processed", lag: float | None = None) -> dict:
    return {"id": uuid.uuid4(), "received_at": received, "processed_at": received, "transport": "pubsub",
            "ce_source": "/tests/activity", "ce_id": str(uuid.uuid4()), "part": 0, "parts": 1, "content_format": "hl7v2",
            "raw": None, "raw_sha256": "0" * 64, "raw_size": 1, "status": status, "warnings": [], "lag_seconds": lag,
            "delivery_count": 1, "attempts": 1}


def test_hours_count_received_messages_and_take_the_lag_p95_of_those_processed(database_url):
    rows = [_row(NOW - timedelta(minutes=5), lag=10.0), _row(NOW - timedelta(minutes=20), lag=20.0),
            _row(NOW - timedelta(minutes=29), "duplicate", lag=9000.0),  # counted, not in the lag
            _row(NOW - timedelta(hours=3, minutes=1), lag=4.0),
            _row(NOW - timedelta(hours=23, minutes=29)),  # 13:01 the day before: the first hour
            _row(NOW - timedelta(hours=24)),  # 12:30 the day before: outside
            _row(NOW + timedelta(minutes=1))]  # after now: outside
    with unit_of_work() as uow:
        uow.session.execute(sa.insert(LisMessage), rows)
    with unit_of_work() as uow:
        uow.session.execute(sa.text("SET LOCAL TIME ZONE 'Asia/Kolkata'"))  # a half-hour offset changes nothing
        hours = last_24_hours(uow, NOW)
    assert len(hours) == 24 and hours[0].start == datetime(2099, 5, 31, 13, tzinfo=timezone.utc)
    assert hours[-1].start == datetime(2099, 6, 1, 12, tzinfo=timezone.utc)
    by_hour = {h.start.hour: h for h in hours}
    assert (by_hour[12].received, by_hour[12].lag_p95) == (3, 19.5)
    assert (by_hour[9].received, by_hour[9].lag_p95) == (1, 4.0)
    assert (by_hour[13].received, by_hour[13].lag_p95) == (1, None)
    assert sum(h.received for h in hours) == 5
