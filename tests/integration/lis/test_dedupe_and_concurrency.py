"""Idempotence: by Pub/Sub messageId and by (MSH-4, MSH-10); copies at the same moment have one effect."""

import uuid
from collections import Counter
from collections.abc import Callable

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import LabOrder, LabResult, LisMessage, OutboxEvent, Patient, PatientIdentifier
from tests.support import lis_db
from tests.support.concurrency import at_once
from tests.support.lis_ingest import Feed, deliver, hl7, one


def _oru(f: Feed, mrn: str = "MRN1", order: str = "ORD1", value: str = "4.2", control: str | None = None) -> bytes:
    return hl7(f.msh("ORU^R01", "20260101110000", control=control), f.pid(mrn), f"ORC|RE|{f.id(order)}",
               f"OBR|1|{f.id(order)}||2823-3^K^LN", f"OBX|1|NM|2823-3^K^LN||{value}|mmol/L|||||F")


def _at_once(n: int, work: Callable[[int], object]) -> list[object]:
    results = at_once(n, work, timeout=120)
    assert not [r for r in results if isinstance(r, BaseException)], results
    return results


def _counts(f: Feed) -> dict[str, int]:
    with unit_of_work() as uow:
        patients = uow.session.scalars(sa.select(PatientIdentifier.patient_id).where(PatientIdentifier.system == f.facility)).all()
        orders = uow.session.scalars(sa.select(LabOrder.id).where(LabOrder.placer_number.startswith("ORD"),
                                                                   LabOrder.placer_number.endswith(f.tag))).all()
        results = uow.session.scalar(sa.select(sa.func.count()).select_from(LabResult).where(LabResult.order_id.in_(orders or [uuid.uuid4()])))
        events = uow.session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent).where(
            OutboxEvent.subject.in_([str(p) for p in set(patients)] or ["-"])))
    return {"patients": len(set(patients)), "orders": len(orders), "results": results, "events": events}


def test_the_same_pubsub_message_twice_is_one_row_and_one_effect(database_url):
    f = Feed()
    raw = _oru(f)
    first = one(raw, "pubsub-1-" + f.tag)
    effects = _counts(f)
    second = one(raw, "pubsub-1-" + f.tag)
    assert (second.status, second.reason, second.message_id) == ("duplicate", "redelivery", first.message_id)
    [row] = lis_db.messages(pubsub_message_id="pubsub-1-" + f.tag)
    assert (row.status, row.delivery_count) == ("processed", 2)
    assert _counts(f) == effects == {"patients": 1, "orders": 1, "results": 1, "events": 3}


def test_the_same_hl7_message_republished_is_a_duplicate_of_the_first(database_url):
    f = Feed()
    raw = _oru(f)
    first = one(raw)
    effects = _counts(f)
    again = one(raw)
    assert (again.status, again.reason) == ("duplicate", "same_control_id")
    row = lis_db.message(again.message_id)
    assert row.duplicate_of == first.message_id and row.raw == raw
    assert _counts(f) == effects


def test_copies_delivered_at_the_same_moment_have_one_effect(database_url):
    f = Feed()
    raw = _oru(f)
    same_id = "burst-" + f.tag
    outcomes = _at_once(6, lambda i: one(raw, same_id if i % 2 else None))
    statuses = Counter(o.status for o in outcomes)
    assert statuses["processed"] == 1 and statuses["duplicate"] == 5
    assert _counts(f) == {"patients": 1, "orders": 1, "results": 1, "events": 3}
    with unit_of_work() as uow:
        rows = uow.session.execute(sa.select(LisMessage.status, LisMessage.delivery_count, LisMessage.pubsub_message_id)
                                   .where(LisMessage.control_id == f"{f.tag}-1")).all()
    # 3 deliveries of one Pub/Sub message (one row) + 3 copies republished under new ids (a row each).
    assert len(rows) == 4 and sum(r.delivery_count for r in rows) == 6
    assert [r.delivery_count for r in rows if r.pubsub_message_id == same_id] == [3]
    assert sorted(r.status for r in rows) == ["duplicate", "duplicate", "duplicate", "processed"]


def test_different_messages_for_one_new_patient_at_once_make_one_patient(database_url):
    f = Feed()
    outcomes = _at_once(6, lambda i: one(_oru(f, order=f"ORD{i}", value=str(i))))
    assert [o.status for o in outcomes] == ["processed"] * 6
    assert len({o.patient_id for o in outcomes}) == 1
    c = _counts(f)
    assert (c["patients"], c["orders"], c["results"]) == (1, 6, 6)
    with unit_of_work() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(Patient).where(Patient.id == outcomes[0].patient_id)) == 1


def test_different_messages_for_one_new_order_at_once_make_one_order(database_url):
    f = Feed()
    outcomes = _at_once(5, lambda i: one(hl7(
        f.msh("ORU^R01", f"2026010111000{i}"), f.pid("MRN1"), f"ORC|RE|{f.id('ORD1')}", f"OBR|1|{f.id('ORD1')}||PANEL^P^L",
        f"OBX|1|NM|T{i}^Test {i}^L||{i}|mmol/L|||||F")))
    assert [o.status for o in outcomes] == ["processed"] * 5
    order = lis_db.order_by_number(placer=f.id("ORD1"))
    assert sorted(r["code"] for r in lis_db.results(order["id"])) == [f"T{i}" for i in range(5)]
    assert _counts(f)["orders"] == 1


def test_a_batch_is_stored_message_by_message(database_url):
    f = Feed()
    batch = b"FHS|^~\\&\rBHS|^~\\&\r" + _oru(f, order="ORD-A") + _oru(f, order="ORD-B") + b"BTS|2\rFTS|1\r"
    message_id = "batch-" + f.tag
    outcomes = deliver(batch, message_id)
    assert [o.status for o in outcomes] == ["processed", "processed"]
    rows = lis_db.messages(pubsub_message_id=message_id)
    assert [(r.part, r.parts) for r in rows] == [(0, 2), (1, 2)]
    assert all(r.raw.startswith(b"MSH") for r in rows)
    again = deliver(batch, message_id)
    assert [o.status for o in again] == ["duplicate", "duplicate"]
    assert _counts(f)["orders"] == 2
