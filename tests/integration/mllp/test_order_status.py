"""The LIS's answer written back to the order placed here (real PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from shared.db import unit_of_work
from shared.mllp.order_message import OutboundOrder, PatientIdentity, render_order
from shared.mllp.order_status import placer_of, record_outcome
from shared.mllp.sender import Answer, Outcome
from shared.models import LabOrder, Patient

pytestmark = pytest.mark.integration


def _order() -> tuple[uuid.UUID, bytes]:
    patient_id, order_id, placer = uuid.uuid4(), uuid.uuid4(), f"PM{uuid.uuid4().int % 10**12}"
    with unit_of_work() as uow:
        uow.session.add(Patient(id=patient_id, mrn=f"T{uuid.uuid4().hex[:10]}", family="Doe", family_norm="doe",
                                first_given_norm="", birth_date=date(1980, 1, 2)))
        uow.flush()
        uow.session.add(LabOrder(id=order_id, patient_id=patient_id, placer_namespace="patient-mgt", placer_number=placer,
                                 status="requested", source="api"))
    message = render_order(OutboundOrder("new", "C1", placer, "patient-mgt", PatientIdentity((("X", "S", None),), "Doe")))
    return order_id, message


def _row(order_id: uuid.UUID) -> LabOrder:
    with unit_of_work() as uow:
        row = uow.session.get(LabOrder, order_id)
        uow.session.expunge(row)
        return row


def test_an_ack_marks_sent_and_an_orr_with_a_filler_number_marks_accepted(database_url):
    order_id, message = _order()
    assert placer_of(message) == (_row(order_id).placer_number, "patient-mgt")
    assert record_outcome(message, Outcome(True, 1, Answer("AA", "C1"))) == "sent"
    sent = _row(order_id)
    assert sent.sent_to_lis_at is not None and sent.lis_accepted_at is None and sent.version == 2
    filler = f"F-{uuid.uuid4().hex[:8]}"
    assert record_outcome(message, Outcome(True, 1, Answer("AA", "C1", "OK", filler))) == "accepted"
    accepted = _row(order_id)
    assert accepted.sent_to_lis_at == sent.sent_to_lis_at  # the first acknowledgement's time is kept
    assert accepted.lis_accepted_at is not None and accepted.filler_number == filler and accepted.version == 3


def test_a_filler_number_held_by_another_order_is_not_taken(database_url):
    first_id, first = _order()
    second_id, second = _order()
    filler = f"F-{uuid.uuid4().hex[:8]}"
    assert record_outcome(first, Outcome(True, 1, Answer("AA", "C1", "OK", filler))) == "accepted"
    assert record_outcome(second, Outcome(True, 1, Answer("AA", "C1", "OK", filler))) == "filler_number_conflict"
    assert _row(first_id).filler_number == filler and _row(second_id).filler_number is None
    assert _row(second_id).lis_accepted_at is not None


def test_nothing_written_when_not_delivered_or_unknown(database_url):
    order_id, message = _order()
    assert record_outcome(message, Outcome(False, 3, Answer("AE", "C1"))) == "not_delivered"
    assert _row(order_id).sent_to_lis_at is None and _row(order_id).version == 1
    other = render_order(OutboundOrder("new", "C2", "PM-none", "patient-mgt", PatientIdentity((("X", "S", None),), "Doe")))
    assert record_outcome(other, Outcome(True, 1, Answer("AA"))) == "unknown_order"


def test_the_acceptance_and_its_filler_number_are_written_in_one_transaction(database_url):
    """A reader that sees the order accepted sees its filler number too (the e2e re-drive test read the
    acceptance between two commits once)."""
    from sqlalchemy import event  # noqa: PLC0415

    from shared.db import get_engine  # noqa: PLC0415

    order_id, message = _order()
    commits: list[object] = []
    listener = lambda conn: commits.append(conn)  # noqa: E731
    event.listen(get_engine(), "commit", listener)
    try:
        filler = f"F-{uuid.uuid4().hex[:8]}"
        assert record_outcome(message, Outcome(True, 1, Answer("AA", "C1", "OK", filler))) == "accepted"
    finally:
        event.remove(get_engine(), "commit", listener)
    assert len(commits) == 1
    row = _row(order_id)
    assert row.filler_number == filler and row.lis_accepted_at is not None and row.version == 2
