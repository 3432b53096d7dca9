"""A 200-message feed delivered three times, shuffled and concurrently, ends in the same state as
one in-order delivery of the same feed.

Each message is delivered twice under one Pub/Sub messageId (a redelivery) and once more under a
new one (the LIS published it again), all 600 shuffled and sent by 4 concurrent senders to a real
lis_consumer process; a 5xx is retried, as Pub/Sub would. The same feed under another namespace is
delivered once, in order. The canonical dumps (tests/support/lis_dump.py) must be equal.
"""

import random
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import LisMessage
from tests.support.hl7_gen import stream
from tests.support.lis_delivery import new_id, push
from tests.support.lis_dump import dump

pytestmark = pytest.mark.e2e
SEED = 20261125


def _send(url: str, raw: bytes, message_id: str) -> int:
    headers, body = push(raw, message_id)
    for _attempt in range(20):
        status = requests.post(url, data=body, headers=headers, timeout=60).status_code
        if status < 500:
            return status
    return status


def _statuses(namespace: str) -> Counter:
    with unit_of_work() as uow:
        rows = uow.session.execute(sa.select(LisMessage.status, LisMessage.delivery_count)
                                   .where(LisMessage.sending_facility == f"LAB-{namespace}")).all()
    return Counter({"rows": len(rows), "deliveries": sum(r.delivery_count for r in rows)}) + Counter(r.status for r in rows)


def test_shuffled_triple_delivery_equals_one_in_order_delivery(lis_process):
    ordered_ns, shuffled_ns = f"A{uuid.uuid4().hex[:6].upper()}", f"B{uuid.uuid4().hex[:6].upper()}"
    url = lis_process.url + "/"
    for message in stream(SEED, 200, ordered_ns):
        assert _send(url, message.raw, new_id()) == 200
    deliveries = []
    for message in stream(SEED, 200, shuffled_ns):
        message_id = new_id()
        deliveries += [(message.raw, message_id), (message.raw, message_id), (message.raw, new_id())]
    random.Random(SEED).shuffle(deliveries)
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda d: _send(url, *d), deliveries))
    assert Counter(codes) == {200: 600}

    assert _statuses(ordered_ns) == {"rows": 200, "deliveries": 200, "processed": 200}
    assert _statuses(shuffled_ns) == {"rows": 400, "deliveries": 600, "processed": 200, "duplicate": 200}
    expected, got = dump(ordered_ns), dump(shuffled_ns)
    assert len(expected["patients"]) == 25 and len(expected["orders"]) > 40 and len(expected["results"]) > 200
    assert any(r["previous_versions"] for r in expected["results"].values()), "the feed has corrections"
    assert got["patients"] == expected["patients"]
    assert got["orders"] == expected["orders"]
    assert got["results"] == expected["results"]
