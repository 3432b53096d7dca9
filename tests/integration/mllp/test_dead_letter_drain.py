"""The adapter's drain of the outbound dead-letter subscription (real PostgreSQL): a message is
acknowledged only once stored, a second copy is a duplicate of the same row, and a message that
cannot be stored is nacked (pulled again), never acknowledged."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from shared.db import unit_of_work
from shared.mllp import dead_letters as drain_mod
from shared.mllp.dead_letters import DeadLetterDrain
from shared.models import DeadLetter
from tests.support.pulled import PulledMessage

pytestmark = pytest.mark.integration

TOPIC = "projects/p/topics/lis-outbound-dead-letter"
SUBSCRIPTION = "projects/p/subscriptions/lis-outbound-dead-letter-hold"


def _rows(message_id: str) -> list[DeadLetter]:
    with unit_of_work() as uow:
        rows = list(uow.session.scalars(sa.select(DeadLetter).where(DeadLetter.event_id == message_id)))
        uow.session.expunge_all()
    return rows


def test_stored_then_acked_and_a_second_copy_is_the_same_row(database_url):
    patient = str(uuid.uuid4())
    message = PulledMessage(b"MSH|^~\\&|PATIENT-MGT\rORC|NW|PM1^patient-mgt\r", patient)
    drain = DeadLetterDrain(SUBSCRIPTION, TOPIC)
    drain.handle(message)
    assert message.answer == "ack"
    [row] = _rows(message.message_id)
    assert (row.origin, row.event_subject, row.delivery_attempts, row.redrive_target) == (
        "pubsub", patient, 10, "projects/p/topics/lis-outbound")
    body = json.loads(row.data)
    assert base64.b64decode(body["message"]["data"]) == message.data and body["message"]["orderingKey"] == patient
    assert row.attributes["time"] == "2026-12-04T10:00:00Z"

    again = PulledMessage(message.data, patient, message_id=message.message_id)
    drain.handle(again)
    assert again.answer == "ack" and len(_rows(message.message_id)) == 1 and _rows(message.message_id)[0].dead_letter_count == 1


def test_not_stored_is_nacked(database_url, monkeypatch):
    def unavailable(*_args):  # noqa: ANN002, ANN202
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(drain_mod, "store", unavailable)
    message = PulledMessage(b"MSH|^~\\&|PATIENT-MGT\r", "not-a-uuid")
    DeadLetterDrain(SUBSCRIPTION, TOPIC).handle(message)
    assert message.answer == "nack" and _rows(message.message_id) == []


def test_an_ordering_key_that_is_not_a_patient_id_is_no_subject():
    attributes, _data = drain_mod.as_delivery(PulledMessage(b"x", "MSH-4 facility"), TOPIC, SUBSCRIPTION)
    assert "subject" not in attributes and attributes["source"] == f"//pubsub.googleapis.com/{TOPIC}"
