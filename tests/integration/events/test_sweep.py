"""The outbox sweep: oldest first, one patient's events in order, a failing event blocks only its
patient, concurrent sweepers never double-send, and a flaky sink still yields exactly-once effects
at a deduping consumer."""

import threading
import uuid
from collections import Counter, defaultdict

import pytest
import sqlalchemy as sa

from shared.consumer import claim_event
from shared.db import unit_of_work
from shared.events import catalog
from shared.events.outbox import emit
from shared.events.publishing.sweep import sweep_outbox
from shared.models import ProcessedEvent
from tests.integration.events.helpers import emit_events, outbox_rows
from tests.support.event_samples import sample_data
from tests.support.sink import Received, http_sink

pytestmark = pytest.mark.integration

REG, UPD = catalog.PATIENT_REGISTERED, catalog.PATIENT_UPDATED


def test_without_a_sink_the_sweep_publishes_nothing_and_says_so(use_sink):
    [event_id] = emit_events((REG, uuid.uuid4()))
    counts = sweep_outbox(5)
    assert counts["sink_configured"] == 0 and counts["published"] == 0 and counts["remaining"] >= 1
    assert outbox_rows([event_id])[event_id].published_at is None


def test_the_sweep_publishes_what_the_immediate_publish_missed_oldest_first(use_sink):
    a, b = uuid.uuid4(), uuid.uuid4()
    ids = emit_events((REG, a), (REG, b), (UPD, a), (UPD, b), (UPD, a))  # no sink: all left
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        counts = sweep_outbox(30)
    mine = [i for i in sink.ids() if uuid.UUID(i) in set(ids)]
    assert mine == [str(i) for i in ids]
    assert counts["published"] >= len(ids) and counts["failed"] == 0
    assert all(r.published_at is not None for r in outbox_rows(ids).values())


def test_a_failing_event_blocks_its_patients_later_events_but_no_one_elses(use_sink):
    stuck, fine = uuid.uuid4(), uuid.uuid4()
    stuck_first, fine_first, stuck_second, fine_second = emit_events((REG, stuck), (REG, fine), (UPD, stuck), (UPD, fine))
    with http_sink(lambda r: 503 if r.header("ce-id") == str(stuck_first) else 202) as sink:
        use_sink(k_sink=sink.url)
        counts = sweep_outbox(30)
    sent = sink.ids()
    assert sent.count(str(stuck_first)) == 1  # tried once in this run, not hammered
    assert str(stuck_second) not in sent
    assert sent.index(str(fine_first)) < sent.index(str(fine_second))
    rows = outbox_rows([stuck_first, stuck_second, fine_first, fine_second])
    assert rows[stuck_first].published_at is None and rows[stuck_first].last_error == "http_503"
    assert rows[stuck_second].published_at is None and rows[stuck_second].attempts == 0
    assert rows[fine_first].published_at and rows[fine_second].published_at
    assert counts["failed"] >= 1
    # the next run, with the sink healthy, publishes the patient's events in their order
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        sweep_outbox(30)
    sent = sink.ids()
    assert sent.index(str(stuck_first)) < sent.index(str(stuck_second))


def test_a_failing_event_without_a_subject_is_tried_once_per_run_and_holds_no_one_back(use_sink):
    """Rows without a subject are ordered by nothing: one that fails is left out of the run's later
    batches by its id, and the rows after it go."""
    with unit_of_work() as uow:
        lone = emit(uow, REG, None, sample_data(REG, uuid.uuid4()))
        after = emit(uow, REG, None, sample_data(REG, uuid.uuid4()))
    with http_sink(lambda r: 503 if r.header("ce-id") == str(lone) else 202) as sink:
        use_sink(k_sink=sink.url)
        counts = sweep_outbox(30, batch_size=2)
    sent = sink.ids()
    assert sent.count(str(lone)) == 1 and sent.count(str(after)) == 1
    rows = outbox_rows([lone, after])
    assert (rows[lone].published_at, rows[lone].attempts, rows[lone].last_error) == (None, 1, "http_503")
    assert rows[after].published_at is not None
    assert counts["failed"] == 1


def test_concurrent_sweepers_send_every_event_once_and_keep_each_patients_order(use_sink):
    patients = [uuid.uuid4() for _ in range(6)]
    ids = emit_events(*[(REG if n < 6 else UPD, patients[n % 6]) for n in range(36)])
    order = {i: n for n, i in enumerate(ids)}
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        threads = [threading.Thread(target=sweep_outbox, args=(60,), kwargs={"batch_size": 5}) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sweep_outbox(30)  # whatever a sweeper deferred behind another's lock
    mine = [uuid.UUID(i) for i in sink.ids() if uuid.UUID(i) in order]
    assert Counter(mine) == Counter(ids)  # each exactly once: accepted events are never re-sent
    by_patient = defaultdict(list)
    for event_id in mine:
        by_patient[ids.index(event_id) % 6].append(order[event_id])
    assert all(seq == sorted(seq) for seq in by_patient.values())
    assert all(r.published_at is not None and r.attempts == 1 for r in outbox_rows(ids).values())


def test_a_sink_that_fails_for_a_while_still_delivers_each_event_exactly_once_to_a_deduping_consumer(use_sink):
    """The sink first refuses (503), then applies but loses some acknowledgements (500 after applying:
    the publisher re-sends), then works. The consumer dedupes on (source, id) in processed_events."""
    consumer = f"test-dedupe-{uuid.uuid4().hex[:8]}"
    patients = [uuid.uuid4() for _ in range(4)]
    emitted: list[uuid.UUID] = []
    applied: list[str] = []
    calls = Counter()
    lock = threading.Lock()

    def flaky_consumer(r: Received) -> int:
        with lock:
            calls["n"] += 1
            n = calls["n"]
        if n <= 12:
            return 503  # down: nothing applied
        with unit_of_work() as uow:
            first = claim_event(uow, consumer, r.header("ce-source"), r.header("ce-id"), r.header("ce-type"))
        if first:
            with lock:
                applied.append(r.header("ce-id"))
        return 500 if n % 3 == 0 and n < 60 else 202  # applied, but the acknowledgement is lost

    with http_sink(flaky_consumer) as sink:
        use_sink(k_sink=sink.url)
        for round_ in range(5):  # requests while the sink is failing: immediate publishes fail
            emitted += emit_events(*[(REG if round_ == 0 else UPD, p) for p in patients])
        for _ in range(40):
            rows = outbox_rows(emitted)
            if all(r.published_at is not None for r in rows.values()):
                break
            threads = [threading.Thread(target=sweep_outbox, args=(20,)) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    rows = outbox_rows(emitted)
    assert all(r.published_at is not None for r in rows.values()), "every event is eventually published"
    mine = {str(i) for i in emitted}
    applied_mine = [i for i in applied if i in mine]
    assert Counter(applied_mine) == Counter(mine)  # exactly once at the consumer
    delivered = Counter(i for i in sink.ids() if i in mine)
    assert any(n > 1 for n in delivered.values()), "the test must have produced redeliveries to mean anything"
    with unit_of_work() as uow:
        claimed = uow.session.scalar(sa.select(sa.func.count()).select_from(ProcessedEvent).where(ProcessedEvent.consumer == consumer))
    assert claimed == len(emitted)
    # each patient's events took effect in the order they were emitted
    position = {str(i): n for n, i in enumerate(emitted)}
    for p in range(4):
        effects = [position[i] for i in applied_mine if emitted.index(uuid.UUID(i)) % 4 == p]
        assert effects == sorted(effects)
