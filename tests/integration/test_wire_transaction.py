"""``wire.transaction``: statements as one implicit transaction in one round trip (the registration's
shape: a lock, then a statement whose snapshot must come after it). All commit or none; the first
error is raised with the connection still in step; a statement sees what committed while the one
before it waited for its lock; a value the driver cannot send fails before anything is sent.

``wire.pipeline``: the same exchange inside the connection's transaction (the LIS fast path's first
write: the message row, whose RETURNING takes the claim's lock, then the claim and the order lookup),
which it opens when none is and leaves open."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from shared.db import wire
from shared.db.pool import DriverPool
from tests.support.probe_table import probe_pool

INSERT = "INSERT INTO wire_tx_probe (id, tag) VALUES (%s::uuid, %s) RETURNING tag"
LOCK = "SELECT pg_advisory_xact_lock(%s::bigint)"
COUNT = "SELECT count(*) FROM wire_tx_probe WHERE tag = %s"


@pytest.fixture()
def pool(database_url: str):
    with probe_pool(database_url, "wire_tx_probe") as p:  # dropped after each test
        yield p


def _count(pool: DriverPool, tag: str) -> int:
    with pool.connection() as con:
        return wire.rows(con, COUNT, (tag,))[0][0]


def _backends_waiting_on_advisory_locks(pool: DriverPool) -> int:
    with pool.connection() as con:
        return wire.rows(con, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", ())[0][0]


def test_the_statements_commit_together_in_one_round_trip(pool, monkeypatch):
    import pg8000.core

    tag = uuid.uuid4().hex
    with pool.connection() as con:
        wire.transaction(con, [(INSERT, (uuid.uuid4(), "warm")), (COUNT, ("warm",))])  # prepares both texts
        flushes = []
        flush = pg8000.core._flush
        monkeypatch.setattr(pg8000.core, "_flush", lambda sock: flushes.append(1) or flush(sock))
        first, second = wire.transaction(con, [(INSERT, (uuid.uuid4(), tag)), (INSERT, (uuid.uuid4(), tag))])
        monkeypatch.undo()
        assert (first.rows, second.rows) == ([[tag]], [[tag]]) and len(flushes) == 1
        assert not con._in_transaction  # the Sync committed
    assert _count(pool, tag) == 2


def _in_a_pipeline(con, statements):  # noqa: ANN001, ANN202
    """`wire.pipeline`, then the caller's end of the transaction it leaves open: a rollback."""
    try:
        return wire.pipeline(con, statements)
    finally:
        wire.simple(con, "ROLLBACK")


def _committing(con, statements):  # noqa: ANN001, ANN202
    """`wire.pipeline` with its COMMIT; after a failure, the caller's rollback of the aborted transaction."""
    try:
        return wire.pipeline(con, statements, commit=True)
    except Exception:
        wire.simple(con, "ROLLBACK")
        raise


@pytest.mark.parametrize("send", [wire.transaction, _in_a_pipeline, _committing],
                         ids=["transaction", "pipeline", "pipeline-with-commit"])
def test_a_failing_statement_commits_nothing_and_leaves_the_connection_in_step(pool, send):
    tag, taken = uuid.uuid4().hex, uuid.uuid4()
    with pool.connection() as con:
        wire.transaction(con, [(INSERT, (taken, "first"))])
        with pytest.raises(Exception) as error:  # noqa: PT011 — pg8000's IntegrityError, classed by wire
            send(con, [(INSERT, (uuid.uuid4(), tag)), (INSERT, (taken, tag)), (COUNT, (tag,))])
        assert wire.server_error_fields(error.value)["C"] == "23505"
        assert not con._in_transaction and not con._pool_out_of_step
        assert wire.rows(con, "SELECT %s::text", ("still in step",)) == [["still in step"]]
    assert _count(pool, tag) == 0


@pytest.mark.parametrize("send", [wire.transaction, _in_a_pipeline], ids=["transaction", "pipeline"])
def test_a_statement_sees_what_committed_while_the_one_before_it_waited_for_its_lock(pool, send):
    """The registration's guarantee: its statement's snapshot is taken after the birth date's lock,
    so it sees the registration that held the lock and committed meanwhile. And the LIS fast path's:
    the claim, sent in the same write as the row whose RETURNING takes the claim's lock, reads the
    claims after that lock."""
    key, tag = int(uuid.uuid4().int % 2**62), uuid.uuid4().hex
    holder = pool.acquire()
    try:
        wire.simple(holder, "BEGIN")
        wire.rows(holder, LOCK, (key,))
        wire.rows(holder, INSERT, (uuid.uuid4(), tag))
        seen: list[object] = []

        def waiter() -> None:
            with pool.connection() as con:
                seen.append(send(con, [(LOCK, (key,)), (COUNT, (tag,))])[1].rows)

        thread = threading.Thread(target=waiter)
        thread.start()
        deadline = time.monotonic() + 10
        while _backends_waiting_on_advisory_locks(pool) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen == []  # still waiting for the lock
        wire.simple(holder, "COMMIT")
        thread.join(10)
    finally:
        pool.release(holder)
    assert seen == [[[1]]]


def test_inside_an_open_transaction_it_refuses_to_run(pool):
    with pool.connection() as con:
        wire.simple(con, "BEGIN")
        with pytest.raises(RuntimeError, match="one is open"):
            wire.transaction(con, [(COUNT, ("x",))])
        wire.simple(con, "ROLLBACK")


def test_a_value_the_driver_cannot_send_fails_before_anything_is_sent(pool):
    tag = uuid.uuid4().hex
    with pool.connection() as con:
        with pytest.raises(UnicodeEncodeError):
            wire.transaction(con, [(INSERT, (uuid.uuid4(), tag)), (INSERT, (uuid.uuid4(), "a\ud800b"))])
        assert not con._pool_out_of_step
        assert wire.rows(con, "SELECT 1", ()) == [[1]]
    assert _count(pool, tag) == 0


def test_past_the_prepared_statements_cap_the_statements_go_unnamed_in_the_same_exchange(pool, monkeypatch):
    monkeypatch.setattr(wire, "MAX_PREPARED", 0)
    tag = uuid.uuid4().hex
    with pool.connection() as con:
        first, second = wire.transaction(con, [(INSERT, (uuid.uuid4(), tag)), (COUNT, (tag,))])
        assert (first.rows, second.rows) == ([[tag]], [[1]])
        assert con.__dict__.get("_patient_sql_prepared", {}) == {}


def test_a_pipeline_opens_the_transaction_and_leaves_it_open_in_one_round_trip(pool, monkeypatch):
    import pg8000.core

    tag = uuid.uuid4().hex
    with pool.connection() as con:
        wire.pipeline(con, [(INSERT, (uuid.uuid4(), "warm")), (COUNT, ("warm",))])  # prepares both texts
        wire.simple(con, "ROLLBACK")
        flushes = []
        flush = pg8000.core._flush
        monkeypatch.setattr(pg8000.core, "_flush", lambda sock: flushes.append(1) or flush(sock))
        first, second, third = wire.pipeline(
            con, [(INSERT, (uuid.uuid4(), tag)), (INSERT, (uuid.uuid4(), tag)), (COUNT, (tag,))])
        monkeypatch.undo()
        assert (first.rows, second.rows, third.rows) == ([[tag]], [[tag]], [[2]]) and len(flushes) == 1
        assert con._in_transaction  # the BEGIN rode ahead; the Sync committed nothing
        assert _count(pool, tag) == 0  # not visible to another connection yet
        wire.simple(con, "COMMIT")
    assert _count(pool, tag) == 2


def test_a_pipeline_runs_in_the_transaction_already_open(pool):
    tag = uuid.uuid4().hex
    with pool.connection() as con:
        wire.simple(con, "BEGIN")
        wire.rows(con, INSERT, (uuid.uuid4(), tag))
        [count] = wire.pipeline(con, [(COUNT, (tag,))])
        assert count.rows == [[1]] and con._in_transaction
        wire.simple(con, "ROLLBACK")
    assert _count(pool, tag) == 0




def test_a_pipeline_with_its_commit_ends_the_transaction_in_the_same_round_trip(pool, monkeypatch):
    import pg8000.core

    tag = uuid.uuid4().hex
    with pool.connection() as con:
        wire.pipeline(con, [(INSERT, (uuid.uuid4(), "warm"))])  # prepares the text
        wire.simple(con, "ROLLBACK")
        flushes = []
        flush = pg8000.core._flush
        monkeypatch.setattr(pg8000.core, "_flush", lambda sock: flushes.append(1) or flush(sock))
        [first] = wire.pipeline(con, [(INSERT, (uuid.uuid4(), tag))], commit=True)
        monkeypatch.undo()
        assert first.rows == [[tag]] and len(flushes) == 1 and not con._in_transaction
    assert _count(pool, tag) == 1
