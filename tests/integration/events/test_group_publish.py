"""Requests publishing at the same moment share one round (``shared.events.publishing.group``):
one claim, one record, one commit for all of them, each request answered with its own rows only,
and each still answered after its rows were published — nothing is left behind for later."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from bench.anatomy import count_statements, stop_counting
from shared.events import catalog
from shared.events.publishing.group import PublishGroup
from shared.events.publishing.relay import BatchResult, publish_committed
from tests.integration.events.helpers import emit_events, outbox_rows
from tests.support.sink import http_sink

pytestmark = pytest.mark.integration

REG, UPD = catalog.PATIENT_REGISTERED, catalog.PATIENT_UPDATED


def test_requests_that_publish_while_a_round_runs_share_the_next_round(use_sink):
    first_subject = uuid.uuid4()
    [first] = emit_events((REG, first_subject))
    waiting = [emit_events((REG, s), (UPD, s)) for s in (uuid.uuid4() for _ in range(4))]
    release = threading.Event()

    def respond(received):  # the first event holds its round until every other request is waiting
        if received.header("ce-id") == str(first):
            release.wait(10)
        return 202

    counter = {"statements": 0, "round_trips": 0}
    results: dict[int, BatchResult | None] = {}
    with http_sink(respond) as sink:
        use_sink(k_sink=sink.url)
        count_statements(counter)
        try:
            leader = threading.Thread(target=lambda: results.__setitem__(-1, publish_committed([first])))
            leader.start()
            while not sink.requests:  # the first round has claimed and is sending
                time.sleep(0.01)
            followers = [threading.Thread(target=lambda i=i, ids=ids: results.__setitem__(i, publish_committed(ids)))
                         for i, ids in enumerate(waiting)]
            for thread in followers:
                thread.start()
            time.sleep(0.3)  # every follower is waiting for the first round
            release.set()
            for thread in [leader, *followers]:
                thread.join(30)
        finally:
            stop_counting()

    # Two rounds of two statements: the first request's, then one for the four that waited.
    assert counter["statements"] == 4
    assert results[-1].published == 1 and results[-1].claimed == 1
    for i, ids in enumerate(waiting):
        assert (results[i].claimed, results[i].published, results[i].failed, results[i].deferred) == (2, 2, 0, 0)
        assert set(results[i].fates) == set(ids)
    every = [first] + [i for ids in waiting for i in ids]
    assert sorted(sink.ids()) == sorted(str(i) for i in every)
    for ids in waiting:  # a patient's update never overtakes its registration
        assert sink.ids().index(str(ids[0])) < sink.ids().index(str(ids[1]))
    rows = outbox_rows(every)
    assert all(r.published_at is not None and r.attempts == 1 for r in rows.values())


def test_a_failure_in_a_shared_round_is_answered_to_the_request_whose_row_failed_only(use_sink):
    refused, fine = uuid.uuid4(), uuid.uuid4()
    [bad] = emit_events((REG, refused))
    [good] = emit_events((REG, fine))
    with http_sink(lambda r: 503 if r.header("ce-id") == str(bad) else 202) as sink:
        use_sink(k_sink=sink.url)
        round_result = publish_committed([bad, good])
    assert (round_result.published, round_result.failed) == (1, 1)
    assert round_result.part([good]).failed == 0 and round_result.part([good]).published == 1
    assert round_result.part([bad]).errors == {"http_503": 1} and round_result.part([bad]).failed_ids == {bad}
    assert round_result.part([bad]).blocked_subjects == {str(refused)}
    assert sink.ids() == [str(bad), str(good)]


def test_a_request_still_waiting_at_its_deadline_leaves_its_rows_to_the_sweep_untouched():
    group = PublishGroup()
    started, release = threading.Event(), threading.Event()
    rounds: list[list[uuid.UUID]] = []

    def run(ids):
        rounds.append(ids)
        started.set()
        release.wait(10)
        return BatchResult()

    mine, theirs = uuid.uuid4(), uuid.uuid4()
    leader = threading.Thread(target=group.publish, args=([theirs], run, time.monotonic() + 30))
    leader.start()
    started.wait(10)
    assert group.publish([mine], run, time.monotonic() + 0.2) is None  # gave up while the round ran
    release.set()
    leader.join(10)
    assert rounds == [[theirs]]  # its rows were never claimed by a later round


def test_an_error_of_a_round_is_raised_in_every_request_of_it():
    group = PublishGroup()
    gate, started = threading.Event(), threading.Event()
    calls: list[list[uuid.UUID]] = []
    errors: list[BaseException] = []

    def run(ids):
        calls.append(ids)
        if len(calls) == 1:
            started.set()
            gate.wait(10)
            return BatchResult()
        raise ConnectionError("database gone")

    def publish(ids):
        try:
            group.publish(ids, run, time.monotonic() + 30)
        except ConnectionError as exc:
            errors.append(exc)

    first = threading.Thread(target=publish, args=([uuid.uuid4()],))
    first.start()
    started.wait(10)
    others = [threading.Thread(target=publish, args=([uuid.uuid4()],)) for _ in range(3)]
    for thread in others:
        thread.start()
    time.sleep(0.2)
    gate.set()
    for thread in [first, *others]:
        thread.join(10)
    assert len(calls) == 2 and len(calls[1]) == 3  # the three that waited ran as one round
    assert len(errors) == 3
