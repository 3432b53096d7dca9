"""Redelivery and reordering: the LIS feed delivered three times, shuffled, several at a time, ends in
the same state as one clean in-order delivery — every message stored once, applied once."""

from __future__ import annotations

import pytest

from tests.fault.conftest import LIS_FEED_SIZE, LIS_NAMESPACE
from tests.fault.lis_support import (
    Pusher,
    assert_applied_exactly_once,
    feed,
    phi_values,
    shuffled_redeliveries,
    stored_messages,
)

pytestmark = [pytest.mark.fault, pytest.mark.e2e]


@pytest.mark.timeout(240)
def test_feed_delivered_three_times_shuffled_ends_like_one_in_order_delivery(fresh_database, fault_run, lis_reference):
    messages = feed(LIS_FEED_SIZE, LIS_NAMESPACE)
    fault_run.remember_phi(*phi_values(messages))
    lis = fault_run.start("lis_consumer", {"DATABASE_URL": fresh_database, "THREADS": "4", "DB_POOL_SIZE": "4"})
    pusher = Pusher(url=lambda: lis.url, concurrency=4)

    assert pusher.deliver(shuffled_redeliveries(messages, 3, seed=9)) == []

    # Every delivery was answered 200 at once: redeliveries are acknowledged as duplicates, never retried.
    assert pusher.statuses() == {200: 3 * LIS_FEED_SIZE}
    assert_applied_exactly_once(fresh_database, LIS_NAMESPACE, messages, lis_reference)
    assert {r.delivery_count for r in stored_messages(fresh_database, LIS_NAMESPACE)} == {3}
