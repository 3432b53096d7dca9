"""What ``shared.db.wire`` writes: each exchange in one write, ending with its one Sync, and no Flush
before it — a Flush makes PostgreSQL send what it has answered so far, so the thread waiting for the
answer woke once per Flush instead of once per exchange (docs/performance.md, "Eleventh round") —
and the answers read as before."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from shared.db import wire
from tests.support.probe_table import probe_pool

INSERT = "INSERT INTO wire_messages_probe (id, tag) VALUES (%s::uuid, %s) RETURNING tag"
COUNT = "SELECT count(*) FROM wire_messages_probe WHERE tag = %s"


@pytest.fixture()
def pool(database_url: str):
    with probe_pool(database_url, "wire_messages_probe", size=1) as p:
        yield p


def _codes(data: bytes) -> str:
    """The message types of a run of frontend messages."""
    codes, i = [], 0
    while i < len(data):
        codes.append(chr(data[i]))
        i += 1 + int.from_bytes(data[i + 1:i + 5], "big")
    assert i == len(data)
    return "".join(codes)


@contextmanager
def writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The message types of each write to the server while the block runs, one string per flush."""
    import pg8000.core as core  # noqa: PLC0415

    pending: list[bytes] = []
    flushed: list[str] = []
    write, flush = core._write, core._flush

    def written(sock, data):  # noqa: ANN001, ANN202
        pending.append(bytes(data))
        return write(sock, data)

    def flushing(sock):  # noqa: ANN001, ANN202
        flushed.append(_codes(b"".join(pending)))
        pending.clear()
        return flush(sock)

    with monkeypatch.context() as patch:
        patch.setattr(core, "_write", written)
        patch.setattr(core, "_flush", flushing)
        yield flushed
    assert pending == []


def test_a_prepared_statement_is_bind_execute_sync(pool, monkeypatch):
    tag = uuid.uuid4().hex
    with pool.connection(autocommit=True) as con:
        wire.rows(con, COUNT, ("warm",), prepared=True)  # prepared now (pg8000's prepare: its own exchange)
        with writes(monkeypatch) as sent:
            assert wire.rows(con, INSERT, (uuid.uuid4(), tag), prepared=True) == [[tag]]
            assert wire.rows(con, COUNT, (tag,), prepared=True) == [[1]]
        # sent[0] prepared the INSERT (its first use); then its run, then the COUNT's
        assert sent[1:] == ["BES", "BES"]


def test_outside_autocommit_the_begin_rides_ahead_in_the_same_write(pool, monkeypatch):
    tag = uuid.uuid4().hex
    with pool.connection() as con:
        wire.rows(con, COUNT, ("warm",), prepared=True)
        wire.simple(con, "ROLLBACK")
        with writes(monkeypatch) as sent:
            assert wire.rows(con, COUNT, (tag,), prepared=True) == [[0]]
        assert sent == ["PBEBES"] and con._in_transaction
        wire.simple(con, "ROLLBACK")


def test_a_pipelined_statement_is_parse_bind_describe_execute_sync(pool, monkeypatch):
    tag = uuid.uuid4().hex
    with pool.connection(autocommit=True) as con:
        with writes(monkeypatch) as sent:
            result = wire.execute(con, INSERT, (uuid.uuid4(), tag), pipelined=True)
        assert sent == ["PBDES"]
        assert result.rows == [[tag]] and [c["name"] for c in result.columns] == ["tag"]


def test_a_transaction_and_a_committing_pipeline_are_one_write_each(pool, monkeypatch):
    tag = uuid.uuid4().hex
    with pool.connection() as con:
        wire.transaction(con, [(INSERT, (uuid.uuid4(), "warm")), (COUNT, ("warm",))])  # prepares both
        with writes(monkeypatch) as sent:
            first, count = wire.transaction(con, [(INSERT, (uuid.uuid4(), tag)), (COUNT, (tag,))])
            [second] = wire.pipeline(con, [(INSERT, (uuid.uuid4(), tag))], commit=True)
        assert sent == ["BEBES", "PBEBEPBES"]  # the pipeline's BEGIN ahead, its COMMIT after
        assert (first.rows, count.rows, second.rows) == ([[tag]], [[1]], [[tag]]) and not con._in_transaction
        assert wire.rows(con, COUNT, (tag,), prepared=True) == [[2]]


def test_a_server_error_in_a_flushless_exchange_leaves_the_connection_in_step(pool, monkeypatch):
    taken = uuid.uuid4()
    with pool.connection(autocommit=True) as con:
        wire.rows(con, INSERT, (taken, "first"), prepared=True)
        with writes(monkeypatch) as sent, pytest.raises(Exception) as failed:
            wire.rows(con, INSERT, (taken, "again"), prepared=True)
        assert sent == ["BES"] and wire.server_error_fields(failed.value)["C"] == "23505"
        assert not con._pool_out_of_step
        assert wire.rows(con, COUNT, ("first",), prepared=True) == [[1]]
