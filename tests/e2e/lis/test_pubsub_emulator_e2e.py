"""Through the real Pub/Sub emulator: its push subscription delivers to a real lis_consumer process.

Messages published while the database is unreachable (the function's login does not exist yet) are
answered 503, stay in Pub/Sub, and are applied once when the database is back — the same process, no
restart; a message without data is stored and acknowledged.
"""

import time
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.support import lis_db
from tests.support.database import admin_url
from tests.support.hl7_tag import tag
from tests.support.lis_samples import by_file, check
from tests.support.processes import start_function
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


@pytest.fixture()
def late_role(database_url):
    """A database login that does not exist yet (connecting fails like an outage) until `grant()` creates it."""
    role = f"lis_late_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    url = make_url(database_url).set(username=role).render_as_string(hide_password=False)

    def grant() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN SUPERUSER'))

    yield url, grant
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
    admin.dispose()


def test_published_during_an_outage_applied_once_after_it(late_role, tmp_path):
    url, grant = late_role
    topic = f"lis-{uuid.uuid4().hex[:8]}"
    proc = start_function("lis_consumer", {"DATABASE_URL": url}, tmp_path)
    try:
        with running_emulator(tmp_path) as emulator:
            emulator.create_topic(topic)
            endpoint = f"{proc.url}/{emulator.topic_path(topic)}"
            emulator.create_push_subscription(f"{topic}-push", topic, endpoint, minimum_backoff="1s", maximum_backoff="2s")
            runs = [uuid.uuid4().hex[:8] for _ in SAMPLES]
            ids = [emulator.publish(topic, tag(sample.raw, run), {"origin": "test"}, ordering_key=run)
                   for sample, run in zip(SAMPLES, runs, strict=True)]
            no_data = emulator.publish(topic, b"", {"only": "attributes"})
            _wait(lambda: "lis delivery deferred for redelivery" in proc.logs())  # refused while the database is out
            grant()  # the database is back; the same process, the redeliveries get through
            for sample, run, message_id in zip(SAMPLES, runs, ids, strict=True):
                source = f"//pubsub.googleapis.com/{emulator.topic_path(topic)}"
                rows = _wait(lambda m=message_id: lis_db.messages(pubsub_message_id=m, ce_source=source))
                check(sample, rows, run)  # one row per message, applied once (results at version 1)
                assert rows[0].subscription.endswith(f"{topic}-push")
                assert rows[0].ce_source == f"//pubsub.googleapis.com/{emulator.topic_path(topic)}"
            [empty] = _wait(lambda: lis_db.messages(pubsub_message_id=no_data, ce_source=source))
            assert (empty.status, empty.error_code, empty.attributes) == ("quarantined", "no_data", {"only": "attributes"})
    finally:
        proc.stop()
