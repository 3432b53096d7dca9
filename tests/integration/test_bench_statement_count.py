"""bench.anatomy counts statements and round trips in pg8000 itself: what the statement budgets of
issue 15 are measured with, so its counting must be right (against the real server)."""

import pg8000.dbapi
import pg8000.native
from sqlalchemy.engine import make_url

from bench.anatomy import count_statements, stop_counting


def _kwargs(url: str) -> dict:
    u = make_url(url)
    return {"user": u.username or "postgres", "password": u.password, "database": u.database,
            "host": u.host or "127.0.0.1", "port": u.port or 5432}


def test_dbapi_transaction_counts_its_statements_not_begin_and_commit(database_url):
    conn = pg8000.dbapi.connect(**_kwargs(database_url))
    try:
        counter = {"statements": 0, "round_trips": 0}
        count_statements(counter)
        cur = conn.cursor()
        cur.execute("SELECT %s::int + 1", (1,))
        assert [list(r) for r in cur.fetchall()] == [[2]]
        cur.execute("SELECT count(*) FROM patients")
        conn.commit()
        stop_counting()
        # two statements; round trips: begin (simple protocol) 1, the statement with a parameter
        # (unnamed: parse; describe + bind; execute) 3, the one without (simple protocol) 1, commit
        # (sent unnamed) 3
        assert counter == {"statements": 2, "round_trips": 8}
        cur.execute("SELECT 1")  # not counting any more
        assert counter["statements"] == 2
    finally:
        stop_counting()
        conn.close()


def test_prepared_statement_is_one_round_trip_per_execution(database_url):
    conn = pg8000.native.Connection(**_kwargs(database_url))
    try:
        statement = conn.prepare("SELECT :x::int * 2")
        counter = {"statements": 0, "round_trips": 0}
        count_statements(counter)
        assert statement.run(x=21) == [[42]]
        assert statement.run(x=2) == [[4]]
        assert counter == {"statements": 2, "round_trips": 2}
    finally:
        stop_counting()
        conn.close()


def test_a_statement_sent_by_parts_counts_once(database_url):
    """shared.services.patient_sql's pipelined search writes Parse, Bind, Describe, Execute and Sync
    itself: one statement, one round trip (a prepare's Parse is not a statement run)."""
    from pg8000 import core  # noqa: PLC0415

    conn = pg8000.native.Connection(**_kwargs(database_url))
    try:
        statement = conn.prepare("SELECT :x::int * 3")
        counter = {"statements": 0, "round_trips": 0}
        count_statements(counter)
        context = core.Context("SELECT 7")
        conn.send_PARSE(core.NULL_BYTE, "SELECT 7", ())
        conn.send_BIND(core.NULL_BYTE, ())
        conn._send_message(core.DESCRIBE, core.PORTAL + core.NULL_BYTE)
        conn.send_EXECUTE()
        core._write(conn._sock, core.SYNC_MSG)
        core._flush(conn._sock)
        conn.handle_messages(context)
        assert context.rows == [[7]]
        assert statement.run(x=2) == [[6]]
        assert counter == {"statements": 2, "round_trips": 2}
    finally:
        stop_counting()
        conn.close()


def test_statements_sent_as_one_implicit_transaction_count_each_in_one_round_trip(database_url):
    """shared.db.wire.transaction (the registration: the lock, then its statement) binds and executes
    prepared statements and sends one Sync: two statements, one round trip (their first preparation apart)."""
    from shared.db import wire  # noqa: PLC0415

    conn = pg8000.dbapi.connect(**_kwargs(database_url))  # a DB-API connection, as the pool's are
    try:
        statements = [("SELECT pg_advisory_xact_lock(%s::bigint)", (7,)), ("SELECT %s::int * 5", (3,))]
        wire.transaction(conn, statements)  # prepares both
        counter = {"statements": 0, "round_trips": 0}
        count_statements(counter)
        assert wire.transaction(conn, statements)[1].rows == [[15]]
        assert counter == {"statements": 2, "round_trips": 1}
    finally:
        stop_counting()
        conn.close()
