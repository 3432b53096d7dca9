"""A connection that saw an error the server did not send never goes back into the pool.

pg8000 sends part of a statement before it converts the parameters; a value it cannot convert
leaves the server's answers unread on the socket. Reused, that connection answers the next
statement with the previous one's replies (wrong rows or errors). The engine must discard it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from shared.db import make_engine

# Each raises inside pg8000 after PARSE/DESCRIBE were flushed (the server's replies stay unread).
POISON = {
    "year_9999_minus_14h": datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14))),
    "year_1_plus_14h": datetime(1, 1, 1, 0, 0, 0, tzinfo=timezone(timedelta(hours=14))),
    "lone_surrogate": "a\ud800b",
}


@pytest.fixture()
def small_pool(database_url: str):
    engine = make_engine(database_url, pool_size=2)
    yield engine
    engine.dispose()


def _valid_statements(engine: sa.Engine, count: int) -> list[tuple[int, str]]:
    """Run `count` statements that each must return exactly their own input."""
    out = []
    for n in range(count):
        tag = uuid.uuid4().hex
        with engine.begin() as conn:
            row = conn.execute(sa.text("SELECT CAST(:n AS integer) * 2, CAST(:tag AS text)"), {"n": n, "tag": tag}).one()
        assert (row[0], row[1]) == (n * 2, tag), f"statement {n} read another statement's answer"
        out.append((row[0], row[1]))
    return out


@pytest.mark.parametrize("value", POISON.values(), ids=POISON.keys())
def test_the_connection_behind_a_client_side_error_is_discarded(small_pool, value):
    with pytest.raises((OverflowError, UnicodeEncodeError)):
        with small_pool.begin() as conn:
            conn.execute(sa.text("SELECT CAST(:v AS text)"), {"v": value})
    assert len(_valid_statements(small_pool, 50)) == 50


def test_a_client_side_error_mid_transaction_leaves_the_pool_sound(small_pool):
    """The same through the ORM session of a unit of work: rolled back, the pool serves correctly."""
    from sqlalchemy.orm import Session  # noqa: PLC0415

    for value in POISON.values():
        with pytest.raises((OverflowError, UnicodeEncodeError)):
            with Session(small_pool) as session, session.begin():
                session.execute(sa.text("SELECT 1"))
                session.execute(sa.text("SELECT CAST(:v AS text)"), {"v": value})
    assert len(_valid_statements(small_pool, 50)) == 50


def test_a_server_error_keeps_the_connection(small_pool):
    """Errors PostgreSQL sent leave the stream in step: the connection is reused, not reopened."""
    with small_pool.connect() as conn:
        before = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with pytest.raises(sa_exc.ProgrammingError):
            conn.execute(sa.text("SELECT CAST(:v AS text)"), {"v": "nul\x00byte"})  # 22021, sent by the server
        conn.rollback()
        assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() == before
        assert not conn.invalidated


def test_a_real_disconnect_still_answers_as_transient(small_pool, database_url):
    """A connection killed under us is a disconnect (503 upstream) and the next checkout works."""
    from shared.db import is_transient_db_error  # noqa: PLC0415

    with small_pool.connect() as conn:
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        killer = sa.create_engine(database_url)
        with killer.begin() as k:
            # wait=5000: return once the backend has exited (the signal alone races our next statement)
            assert k.execute(sa.text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid}).scalar_one()
        killer.dispose()
        with pytest.raises(sa_exc.DBAPIError) as raised:
            conn.execute(sa.text("SELECT 1"))
        assert raised.value.connection_invalidated and is_transient_db_error(raised.value)
    assert len(_valid_statements(small_pool, 5)) == 5


def test_a_database_not_accepting_connections_is_transient_and_a_statement_55000_is_not(database_url):
    """SQLSTATE 55000 at connect (ALLOW_CONNECTIONS false, as during maintenance) is the server
    refusing the session for now: transient (the api answers 503 + Retry-After, a consumer is
    redelivered). The same code from a statement (currval before nextval) is our bug: permanent."""
    from shared.db import is_transient_db_error  # noqa: PLC0415

    server = sa.engine.make_url(database_url)
    name = f"noconn_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
    refused = make_engine(server.set(database=name).render_as_string(hide_password=False), pool_size=1)
    try:
        with pytest.raises(sa_exc.DBAPIError) as raised:
            refused.connect()
        assert raised.value.orig.args[0]["C"] == "55000" and is_transient_db_error(raised.value)
    finally:
        refused.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}"'))
        admin.dispose()
    engine = make_engine(database_url, pool_size=1)
    try:
        with pytest.raises(sa_exc.DBAPIError) as raised, engine.connect() as conn:
            conn.execute(sa.text("CREATE TEMP SEQUENCE never_called"))
            conn.execute(sa.text("SELECT currval('never_called')"))
        assert raised.value.orig.args[0]["C"] == "55000" and not is_transient_db_error(raised.value)
    finally:
        engine.dispose()


def test_a_tcp_connection_sends_without_delay(database_url: str):
    """TCP_NODELAY on every pooled TCP connection: without it, a statement larger than pg8000's write
    buffer waited ~40 ms for the server's delayed ACK."""
    import socket  # noqa: PLC0415

    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            sock = conn.connection.dbapi_connection._usock
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                pytest.fail(f"the test database is reached over {sock.family!r}, not TCP")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_the_pool_hands_out_the_connection_used_last(database_url: str):
    """LIFO: one request after another on the same connection (its prepared statements), even when the
    pool holds others; FIFO reopened a discarded slot under a request that needed no second connection."""
    engine = make_engine(database_url, pool_size=3)
    try:
        with engine.connect() as a, engine.connect() as b:
            pids = {a.execute(sa.text("SELECT pg_backend_pid()")).scalar(), b.execute(sa.text("SELECT pg_backend_pid()")).scalar()}
        with engine.connect() as first:
            used = first.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        for _ in range(3):
            with engine.connect() as again:
                assert again.execute(sa.text("SELECT pg_backend_pid()")).scalar() == used
        assert used in pids
    finally:
        engine.dispose()
