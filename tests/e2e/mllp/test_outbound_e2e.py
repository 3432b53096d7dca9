"""Orders out through the real pieces: a rendered ORM on the outbound topic (Pub/Sub emulator) →
`patient-mgt mllp` → a fake LIS written here (an MLLP server that accepts with an ORR, or refuses
with AE, by the message's control id). Accepted messages are delivered once and acknowledged;
refused ones are retried, then dead-lettered by Pub/Sub where an operator finds them."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from datetime import date

import pytest

from shared.devtools.devrouter import emulator as emulator_mod
from shared.mllp.order_message import OutboundOrder, PatientIdentity, render_order
from tests.support.fake_lis import FakeLis
from tests.support.pubsub import running_emulator

from .conftest import start_adapter

pytestmark = pytest.mark.e2e


@pytest.fixture()
def lis() -> Iterator[FakeLis]:
    fake = FakeLis()
    yield fake
    fake.stop()


def _order(control_id: str) -> bytes:
    patient = PatientIdentity((("LAB-9", "EVTLAB", "MR"),), "Doe", ("Jo",), date(1980, 1, 2), "female")
    return render_order(OutboundOrder("new", control_id, "PM1", "PATIENT-MGT", patient, code="2345-7", code_system="LN"))


def _pull(emulator: emulator_mod.Emulator, subscription: str) -> list[dict]:
    got = emulator._call("POST", f"projects/{emulator.project}/subscriptions/{subscription}:pull",
                         {"maxMessages": 100, "returnImmediately": True}).get("receivedMessages", [])
    return [m["message"] for m in got]


def test_accepted_orders_are_acknowledged_and_refused_ones_dead_lettered(lis: FakeLis, tmp_path):
    with running_emulator(tmp_path) as emulator:
        topic, dead = f"out-{uuid.uuid4().hex[:6]}", f"dead-{uuid.uuid4().hex[:6]}"
        for name in (topic, dead):
            emulator.create_topic(name)
        emulator._call("PUT", f"projects/{emulator.project}/subscriptions/{topic}-mllp", {
            "topic": emulator.topic_path(topic), "ackDeadlineSeconds": 60,
            "retryPolicy": {"minimumBackoff": "1s", "maximumBackoff": "1s"},
            "deadLetterPolicy": {"deadLetterTopic": emulator.topic_path(dead), "maxDeliveryAttempts": 5}})
        emulator._call("PUT", f"projects/{emulator.project}/subscriptions/{dead}-hold", {"topic": emulator.topic_path(dead)})
        adapter = start_adapter({"PUBSUB_EMULATOR_HOST": emulator.host, "GOOGLE_CLOUD_PROJECT": emulator.project,
                                 "MLLP_TOPIC": "unused", "LIS_MLLP_HOST": "127.0.0.1", "LIS_MLLP_PORT": str(lis.port),
                                 "LIS_OUTBOUND_SUBSCRIPTION": f"{topic}-mllp", "LIS_OUTBOUND_ATTEMPTS": "2",
                                 "LIS_OUTBOUND_BACKOFF_SECONDS": "0.1", "LIS_ACK_TIMEOUT_SECONDS": "5"}, tmp_path)
        try:
            accepted, refused = _order(f"OK-{uuid.uuid4().hex[:6]}"), _order(f"REFUSE-{uuid.uuid4().hex[:6]}")
            emulator.publish(topic, accepted)
            emulator.publish(topic, refused)
            deadline, dead_lettered = time.monotonic() + 120, []
            while time.monotonic() < deadline and not dead_lettered:
                dead_lettered = _pull(emulator, f"{dead}-hold")
                time.sleep(0.5)
            assert [base64.b64decode(m["data"]) for m in dead_lettered] == [refused]
            assert lis.received.count(accepted) == 1  # accepted once, acknowledged, never resent
            assert lis.received.count(refused) == 2 * 5  # 2 sends per delivery, 5 deliveries, then dead-lettered
            assert "lis outbound accepted" in adapter.logs() and "REFUSE" not in adapter.logs()
        finally:
            adapter.stop()
