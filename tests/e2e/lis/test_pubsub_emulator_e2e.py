"""Through the real Pub/Sub emulator: its push subscription delivers to a real lis_consumer process.

Messages published while the database is down are answered 503, stay in Pub/Sub, and are applied
exactly once when the function comes back; a message without data is stored and acknowledged.
"""

import time
import uuid

import pytest

from tests.support import lis_db
from tests.support.hl7_tag import tag
from tests.support.lis_samples import by_file, check
from tests.support.processes import free_port, start_function
from tests.support.pubsub import running_emulator

pytestmark = pytest.mark.e2e
SAMPLES = [by_file()[name] for name in ("pyhl7__ORU-R01__1.hl7", "aidbox__ADT-A08__1.hl7", "hl7apy__OML-O33__1.hl7",
                                       "pyhl7__ORU-R01__2.hl7")]


def _wait(predicate, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError("not reached before the timeout")


def test_published_during_an_outage_applied_once_after_it(database_url, tmp_path):
    port = free_port()
    topic = f"lis-{uuid.uuid4().hex[:8]}"
    dead = f"postgresql+pg8000://postgres@127.0.0.1:{free_port()}/nowhere"
    down = start_function("lis_consumer", {"DATABASE_URL": dead}, tmp_path, port=port)
    up = None
    try:
        with running_emulator(tmp_path) as emulator:
            emulator.create_topic(topic)
            endpoint = f"http://127.0.0.1:{port}/{emulator.topic_path(topic)}"
            emulator.create_push_subscription(f"{topic}-push", topic, endpoint, minimum_backoff="1s", maximum_backoff="2s")
            runs = [uuid.uuid4().hex[:8] for _ in SAMPLES]
            ids = [emulator.publish(topic, tag(sample.raw, run), {"origin": "test"}, ordering_key=run)
                   for sample, run in zip(SAMPLES, runs, strict=True)]
            no_data = emulator.publish(topic, b"", {"only": "attributes"})
            _wait(lambda: "lis delivery deferred for redelivery" in down.logs())  # refused while down
            down.stop()
            up = start_function("lis_consumer", {"DATABASE_URL": database_url}, tmp_path, port=port)
            for sample, run, message_id in zip(SAMPLES, runs, ids, strict=True):
                rows = _wait(lambda m=message_id: lis_db.messages(pubsub_message_id=m))
                check(sample, rows, run)  # one row per message, applied once (results at version 1)
                assert rows[0].subscription.endswith(f"{topic}-push")
                assert rows[0].ce_source == f"//pubsub.googleapis.com/{emulator.topic_path(topic)}"
            [empty] = _wait(lambda: lis_db.messages(pubsub_message_id=no_data))
            assert (empty.status, empty.error_code, empty.attributes) == ("quarantined", "no_data", {"only": "attributes"})
    finally:
        down.stop()
        if up is not None:
            up.stop()
