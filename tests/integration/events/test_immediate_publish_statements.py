"""The immediate publish after a commit costs at most two statements (claim with the subject-order
check; record the outcomes) in two round trips on the process's one engine, whatever the outcome,
and keeps the relay's guarantees against a concurrent publisher's lock.

Counted in pg8000 by ``bench.anatomy`` (what issue 15's statement budgets are measured with):
statements apart from transaction control, and every wait for the server's answer."""

from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa

from shared.db import get_engine, unit_of_work
from shared.events import catalog
from shared.events.publishing import PublishError
from shared.events.publishing.envelope import from_outbox_row, to_http_binary
from shared.events.publishing.relay import publish_committed
from shared.events.publishing.sweep import sweep_outbox
from shared.models import OutboxEvent
from tests.integration.events.helpers import emit_events, outbox_rows
from tests.support.sink import http_sink
from tests.support.statements import counting

pytestmark = pytest.mark.integration

REG, UPD = catalog.PATIENT_REGISTERED, catalog.PATIENT_UPDATED


def unpublished(*pairs: tuple[str, uuid.UUID]) -> list[uuid.UUID]:
    """Commit events while no sink is configured: they wait unpublished."""
    return emit_events(*pairs)


def test_publishing_a_commits_events_takes_two_statements(use_sink):
    subject, other = uuid.uuid4(), uuid.uuid4()
    ids = unpublished((REG, subject), (UPD, subject), (REG, other))
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        with counting() as statements:
            result = publish_committed(ids)
    assert result is not None and result.published == 3
    assert statements == {"statements": 2, "round_trips": 2, "on_the_pool": 2}
    assert sink.ids() == [str(i) for i in ids]
    assert all(r.published_at is not None and r.attempts == 1 for r in outbox_rows(ids).values())


def test_failed_and_accepted_outcomes_are_recorded_in_the_same_two_statements(use_sink):
    refused, fine = uuid.uuid4(), uuid.uuid4()
    first, later, other = unpublished((REG, refused), (UPD, refused), (REG, fine))
    with http_sink(lambda r: 503 if r.header("ce-id") == str(first) else 202) as sink:
        use_sink(k_sink=sink.url)
        with counting() as statements:
            result = publish_committed([first, later, other])
    assert statements == {"statements": 2, "round_trips": 2, "on_the_pool": 2}
    assert (result.published, result.failed, result.deferred) == (1, 1, 1)
    assert sink.ids() == [str(first), str(other)]  # the refused patient's update did not overtake
    rows = outbox_rows([first, later, other])
    assert (rows[first].published_at, rows[first].attempts, rows[first].last_error) == (None, 1, "http_503")
    assert (rows[later].published_at, rows[later].attempts, rows[later].last_error) == (None, 0, None)
    assert rows[other].published_at is not None and rows[other].last_error is None


def test_rows_already_published_cost_one_statement_and_a_commit_and_are_not_sent_again(use_sink):
    ids = unpublished((REG, uuid.uuid4()))
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        publish_committed(ids)
        with counting() as statements:
            result = publish_committed(ids)
    assert statements == {"statements": 1, "round_trips": 2, "on_the_pool": 2}
    assert result.claimed == 0 and sink.ids() == [str(ids[0])]


def test_a_row_held_by_another_publisher_is_skipped_and_its_subjects_later_row_waits(use_sink):
    subject, other = uuid.uuid4(), uuid.uuid4()
    held, later, free = unpublished((REG, subject), (UPD, subject), (REG, other))
    with get_engine().connect(), get_engine().connect():
        pass  # two pooled connections: the publish below does not count a new connection's setup
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        with unit_of_work() as uow:  # another publisher's claim, open while the immediate publish runs
            uow.session.execute(sa.select(OutboxEvent.id).where(OutboxEvent.id == held).with_for_update())
            with counting() as statements:
                result = publish_committed([held, later, free])
    assert statements == {"statements": 2, "round_trips": 2, "on_the_pool": 2}
    assert (result.claimed, result.published, result.deferred) == (2, 1, 1)
    assert sink.ids() == [str(free)]  # neither the held row (not sent twice) nor the one behind it
    rows = outbox_rows([held, later, free])
    assert rows[held].published_at is None and rows[later].published_at is None and rows[later].attempts == 0
    assert rows[free].published_at is not None


def test_a_row_behind_an_older_unpublished_row_of_its_subject_costs_one_statement_and_a_commit(use_sink):
    subject = uuid.uuid4()
    [older] = unpublished((REG, subject))
    [newer] = unpublished((UPD, subject))
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        with counting() as statements:
            result = publish_committed([newer])
    assert statements == {"statements": 1, "round_trips": 2, "on_the_pool": 2}
    assert (result.claimed, result.deferred, sink.requests) == (1, 1, [])
    assert outbox_rows([older, newer])[newer].attempts == 0


class RefusingWith:
    """A publisher adapter (our port) that refuses every event with the given error code."""

    name = "refusing"

    def __init__(self, code: str) -> None:
        self.code = code
        self.sent: list[str] = []

    def publish_many(self, events, *, timeout, deadline):  # noqa: ANN001, ANN201
        self.sent += [e.id for e in events]
        return [PublishError(self.code) for _ in events]

    def publish(self, event, timeout):  # noqa: ANN001, ANN201
        raise PublishError(self.code)


def test_an_error_code_is_recorded_as_it_is_whatever_characters_it_holds(use_sink):
    [event_id] = unpublished((REG, uuid.uuid4()))
    code = "pubsub_It's \\ \"odd\"; DROP TABLE outbox; --"
    publisher = RefusingWith(code)
    result = publish_committed([event_id], publisher=publisher)
    assert (result.failed, result.errors, publisher.sent) == (1, {code: 1}, [str(event_id)])
    row = outbox_rows([event_id])[event_id]
    assert (row.published_at, row.attempts, row.last_error) == (None, 1, code)


def test_an_id_that_is_not_a_uuid_fails_the_publish_not_the_caller_and_sends_nothing(use_sink):
    [event_id] = unpublished((REG, uuid.uuid4()))
    publisher = RefusingWith("unused")
    assert publish_committed([event_id, "1'}'::uuid[]); DELETE FROM outbox; --"], publisher=publisher) is None
    assert publisher.sent == [] and outbox_rows([event_id])[event_id].attempts == 0


class Capturing:
    """A publisher adapter (our port) that accepts everything and keeps the HTTP binary form."""

    name = "capturing"

    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, str], bytes]] = []

    def publish_many(self, events, *, timeout, deadline):  # noqa: ANN001, ANN201
        self.sent += [to_http_binary(e) for e in events]
        return [None for _ in events]

    def publish(self, event, timeout):  # noqa: ANN001, ANN201
        self.publish_many([event], timeout=timeout, deadline=0)


def test_each_event_is_sent_as_the_envelope_of_its_orm_row(use_sink):
    subject = uuid.uuid4()
    ids = unpublished(*[(event_type, subject) for event_type in catalog.CATALOG])
    with unit_of_work() as uow:
        rows = {r.id: r for r in uow.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.id.in_(ids)))}
        expected = [to_http_binary(from_outbox_row(rows[i])) for i in ids]
    publisher = Capturing()
    assert publish_committed(ids, publisher=publisher).published == len(ids)
    assert publisher.sent == expected


def test_concurrent_immediate_publishes_and_sweeps_send_every_event_once_in_each_patients_order(use_sink):
    patients = [uuid.uuid4() for _ in range(4)]
    ids = unpublished(*[(REG if n < 4 else UPD, patients[n % 4]) for n in range(24)])
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        threads = [threading.Thread(target=publish_committed, args=(ids[k::2],)) for k in range(2) for _ in range(2)]
        threads += [threading.Thread(target=sweep_outbox, args=(30,), kwargs={"batch_size": 3}) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sweep_outbox(30)  # whatever was deferred behind another publisher's lock
    sent = [uuid.UUID(i) for i in sink.ids() if uuid.UUID(i) in set(ids)]
    assert sorted(sent) == sorted(ids)  # each exactly once
    for p in range(4):
        mine = [ids.index(i) for i in sent if ids.index(i) % 4 == p]
        assert mine == sorted(mine)
    assert all(r.published_at is not None and r.attempts == 1 for r in outbox_rows(ids).values())


class Broken(Capturing):
    def publish_many(self, events, *, timeout, deadline):  # noqa: ANN001, ANN201
        raise RuntimeError("adapter bug")


def test_an_adapter_that_raises_leaves_the_rows_unlocked_and_untouched_and_the_connection_clean(use_sink):
    [event_id] = unpublished((REG, uuid.uuid4()))
    assert publish_committed([event_id], publisher=Broken()) is None  # never raises into the caller
    row = outbox_rows([event_id])[event_id]
    assert (row.published_at, row.attempts, row.last_error) == (None, 0, None)
    with get_engine().connect() as conn:  # the pooled connection is back outside a transaction
        assert conn.connection.driver_connection._in_transaction is False
    publisher = Capturing()
    assert publish_committed([event_id], publisher=publisher).published == 1  # the claim's lock was released
    assert len(publisher.sent) == 1
