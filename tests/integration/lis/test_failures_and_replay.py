"""Nothing vanishes: a bug stores the message as failed (replayable), an outage stores nothing and
asks for redelivery, and replay is idempotent."""

import threading

import pytest

from shared.auth import SYSTEM_CLI
from shared.errors import Conflict
from shared.lis import ingest as ingest_module
from shared.lis import operator
from shared.lis.ingest import TransientFault
from tests.support import lis_db
from tests.support.lis_ingest import Feed, deliver, hl7, one


def _oru(f: Feed) -> bytes:
    return hl7(f.msh("ORU^R01", "20260101110000"), f.pid("MRN1"), f"ORC|RE|{f.id('ORD1')}",
               f"OBR|1|{f.id('ORD1')}||2823-3^K^LN", "OBX|1|NM|2823-3^K^LN||4.2|mmol/L|||||F")


def test_a_bug_while_applying_is_stored_as_failed_and_replayed_after_the_fix(database_url, monkeypatch):
    f = Feed()
    real = ingest_module.apply_message

    def broken(*args, **kwargs):
        real(*args, **kwargs)  # the writes happen, then the "bug" strikes: all of them must roll back
        raise RuntimeError("a bug quoting DOE^JANE")

    # Fault injection at our own seam: there is no real bug to trigger on purpose.
    monkeypatch.setattr(ingest_module, "apply_message", broken)
    failed = one(_oru(f))
    assert (failed.status, failed.reason, failed.patient_id) == ("failed", "apply_error:RuntimeError", None)
    row = lis_db.message(failed.message_id)
    assert row.raw and row.processed_at is not None and "DOE" not in (row.error_code or "")
    assert lis_db.patient_id_by_identifier(f.facility, f.id("MRN1")) is None  # savepoint rolled back
    # Resent by the LIS meanwhile (new messageId): not a duplicate of a message that had no effect.
    monkeypatch.setattr(ingest_module, "apply_message", real)
    outcome, replayed = operator.replay(SYSTEM_CLI, failed.message_id)
    assert replayed and outcome.status == "processed"
    assert lis_db.patient_id_by_identifier(f.facility, f.id("MRN1")) == outcome.patient_id
    again, replayed_again = operator.replay(SYSTEM_CLI, failed.message_id)
    assert (again, replayed_again) == (None, False)
    row = lis_db.message(failed.message_id)
    assert (row.status, row.attempts, row.error_code) == ("processed", 2, None)


def test_replaying_a_failed_message_after_its_copy_was_applied_makes_it_a_duplicate(database_url, monkeypatch):
    f = Feed()
    real = ingest_module.apply_message
    raw = _oru(f)
    monkeypatch.setattr(ingest_module, "apply_message", lambda *a, **k: (_ for _ in ()).throw(KeyError("x")))
    failed = one(raw)
    monkeypatch.setattr(ingest_module, "apply_message", real)
    resent = one(raw)  # the LIS sends it again (new Pub/Sub message): applied, the failure had no effect
    assert resent.status == "processed"
    outcome, replayed = operator.replay(SYSTEM_CLI, failed.message_id)
    assert replayed and (outcome.status, outcome.reason) == ("duplicate", "same_control_id")
    assert lis_db.message(failed.message_id).duplicate_of == resent.message_id


def test_concurrent_replays_apply_once(database_url, monkeypatch):
    f = Feed()
    real = ingest_module.apply_message
    monkeypatch.setattr(ingest_module, "apply_message", lambda *a, **k: (_ for _ in ()).throw(ValueError("x")))
    failed = one(_oru(f))
    monkeypatch.setattr(ingest_module, "apply_message", real)
    results = []
    barrier = threading.Barrier(4)

    def run():
        barrier.wait()
        results.append(operator.replay(SYSTEM_CLI, failed.message_id))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(replayed for _, replayed in results) == [False, False, False, True]
    order = lis_db.order_by_number(placer=f.id("ORD1"))
    assert len(lis_db.results(order["id"])) == 1


def test_quarantined_envelopes_cannot_be_replayed_and_processed_ones_are_left_alone(database_url):
    f = Feed()
    body_without_data = {"message": {"messageId": "nodata-" + f.tag}, "subscription": "s"}
    from shared.lis.envelope import from_push_body  # noqa: PLC0415

    [empty] = ingest_module.ingest(from_push_body(body_without_data, "/"))
    assert (empty.status, empty.reason) == ("quarantined", "no_data")
    with pytest.raises(Conflict):
        operator.replay(SYSTEM_CLI, empty.message_id)
    ok = one(_oru(f))
    assert operator.replay(SYSTEM_CLI, ok.message_id) == (None, False)


def test_an_unreachable_database_asks_for_redelivery_and_stores_nothing(database_down):
    f = Feed()
    with pytest.raises(TransientFault):
        deliver(_oru(f), "down-" + f.tag)


def test_after_the_outage_the_redelivery_is_processed(database_url):
    f = Feed()
    message_id = "after-outage-" + f.tag
    assert lis_db.messages(pubsub_message_id=message_id) == []
    [outcome] = deliver(_oru(f), message_id)
    assert outcome.status == "processed"


def test_a_bug_outside_the_savepoint_still_keeps_the_message(database_url, monkeypatch):
    f = Feed()
    raw = _oru(f)

    def broken(*args, **kwargs):
        raise TypeError("a bug in the storing code")

    # Fault injection at our own seam: the final status write fails for a reason no retry fixes.
    monkeypatch.setattr(ingest_module, "_finish", broken)
    [outcome] = deliver(raw, "store-bug-" + f.tag)
    assert (outcome.status, outcome.reason) == ("failed", "store_error:TypeError")
    [row] = lis_db.messages(pubsub_message_id="store-bug-" + f.tag)
    assert (row.status, row.raw, row.error_code) == ("failed", raw, "store_error:TypeError")
    assert lis_db.patient_id_by_identifier(f.facility, f.id("MRN1")) is None  # nothing half-applied
    monkeypatch.undo()
    outcome, replayed = operator.replay(SYSTEM_CLI, row.id)
    assert replayed and outcome.status == "processed"


def _result_value(f: Feed) -> str | None:
    order = lis_db.order_by_number(placer=f.id("ORD1"))
    return lis_db.results(order["id"])[0]["value"] if order else None


def test_a_message_left_incomplete_is_applied_when_it_is_redelivered(database_url, monkeypatch):
    """The issue's scenario: the row was committed as failed/incomplete with nothing applied (its
    writes were lost), and Pub/Sub redelivers it — the redelivery applies it, it is no duplicate."""
    f = Feed()
    message_id = "incomplete-" + f.tag
    # Our seam: the row is stored (inserted failed/incomplete), and then nothing else happens.
    monkeypatch.setattr(ingest_module, "process_part",
                        lambda uow, row, part, final=True: ingest_module.PartOutcome(row.id, "failed", "incomplete"))
    deliver(_oru(f), message_id)
    [row] = lis_db.messages(pubsub_message_id=message_id)
    assert (row.status, row.error_code) == ("failed", "incomplete") and _result_value(f) is None
    monkeypatch.undo()
    [outcome] = deliver(_oru(f), message_id)
    assert (outcome.status, outcome.message_id) == ("processed", row.id)
    assert _result_value(f) == "4.2"
    [row] = lis_db.messages(pubsub_message_id=message_id)
    assert (row.status, row.error_code, row.delivery_count, row.attempts) == ("processed", None, 2, 2)
    assert row.message_type == "ORU^R01" and row.processed_at is not None
    # Applied now: a further redelivery is a duplicate again, with no second effect.
    [again] = deliver(_oru(f), message_id)
    assert (again.status, again.reason) == ("duplicate", "redelivery")
    assert lis_db.messages(pubsub_message_id=message_id)[0].attempts == 2


@pytest.mark.parametrize("seam", ["apply_message", "_finish"])
def test_a_failed_message_is_processed_again_when_redelivered(database_url, monkeypatch, seam):
    """Failed by a bug inside the savepoint (apply_error) or outside it (store_error, the raw bytes
    alone): once the bug is gone, the next redelivery applies it — no operator needed."""
    f = Feed()
    message_id = f"failed-{seam}-" + f.tag

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(ingest_module, seam, broken)
    [failed] = deliver(_oru(f), message_id)
    assert failed.status == "failed"
    monkeypatch.undo()
    [outcome] = deliver(_oru(f), message_id)
    assert outcome.status == "processed" and _result_value(f) == "4.2"
    [row] = lis_db.messages(pubsub_message_id=message_id)
    assert (row.status, row.delivery_count, row.attempts) == ("processed", 2, 2)
    assert row.sending_facility == f.facility and row.publish_time is not None


def test_concurrent_redeliveries_of_a_failed_message_apply_it_once(database_url, monkeypatch):
    f = Feed()
    message_id = "failed-race-" + f.tag
    monkeypatch.setattr(ingest_module, "apply_message", lambda *a, **k: (_ for _ in ()).throw(ValueError("x")))
    deliver(_oru(f), message_id)
    monkeypatch.undo()
    barrier = threading.Barrier(4)
    outcomes = []

    def run():
        barrier.wait()
        outcomes.extend(deliver(_oru(f), message_id))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(o.status for o in outcomes) == ["duplicate", "duplicate", "duplicate", "processed"]
    order = lis_db.order_by_number(placer=f.id("ORD1"))
    assert [r["value"] for r in lis_db.results(order["id"])] == ["4.2"]
    [row] = lis_db.messages(pubsub_message_id=message_id)
    assert (row.status, row.delivery_count, row.attempts) == ("processed", 5, 2)


def test_a_quarantined_message_redelivered_stays_a_duplicate(database_url):
    f = Feed()
    message_id = "quarantined-" + f.tag
    raw = hl7(f.msh("ORU^R01", "99991231235959-1400"), f.pid("MRN1"), f"OBR|1|{f.id('ORD1')}||2823-3^K^LN",
              "OBX|1|NM|2823-3^K^LN||4.2|mmol/L|||||F")
    [first] = deliver(raw, message_id)
    assert (first.status, first.reason) == ("quarantined", "out_of_range:MSH-7")
    [again] = deliver(raw, message_id)
    assert (again.status, again.reason, again.message_id) == ("duplicate", "redelivery", first.message_id)
    [row] = lis_db.messages(pubsub_message_id=message_id)
    assert (row.status, row.error_code, row.delivery_count, row.attempts) == ("quarantined", "out_of_range:MSH-7", 2, 1)
