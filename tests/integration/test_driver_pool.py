"""The driver pool (shared.db.pool) that the hot paths use without SQLAlchemy keeps the engine's rules:
a connection behind an error the server did not send is closed, a server's error keeps it, a
disconnect drops the idle connections opened before it, an exhausted pool is a transient error, and
the ORM's engine borrows from the same pool."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from shared.db import is_transient_db_error, wire
from shared.db.orm import make_engine
from shared.db import pool as pool_module
from shared.db.pool import DriverPool, PoolExhausted, connect_args, open_connection
from shared import sockets

POISON = {
    "year_9999_minus_14h": datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14))),
    "lone_surrogate": "a\ud800b",
}


@pytest.fixture()
def pool(database_url: str):
    p = DriverPool(lambda: open_connection(database_url, 15000), size=2, timeout=0.5)
    yield p
    p.dispose()


def _answers_its_own(pool: DriverPool, count: int) -> None:
    for n in range(count):
        tag = uuid.uuid4().hex
        with pool.connection() as con:
            assert wire.rows(con, "SELECT %s::int * 2, %s::text", (n, tag)) == [[n * 2, tag]]


@pytest.mark.parametrize("prepared", [False, True], ids=["unnamed", "prepared"])
@pytest.mark.parametrize("value", POISON.values(), ids=POISON.keys())
def test_a_connection_behind_a_client_side_error_is_closed_not_returned(pool, value, prepared):
    with pytest.raises((OverflowError, UnicodeEncodeError)), pool.connection() as con:
        wire.execute(con, "SELECT CAST(%s AS text)", (value,), prepared=prepared)
    assert pool.idle() == 0
    _answers_its_own(pool, 20)


def test_a_server_error_keeps_the_connection(pool):
    with pool.connection(autocommit=True) as con:
        pid = wire.rows(con, "SELECT pg_backend_pid()")[0][0]
        with pytest.raises(Exception) as raised:  # noqa: PT011 — pg8000's ProgrammingError, as its cursor raises it
            wire.execute(con, "SELECT 1 / %s::int", (0,), prepared=True)
        assert raised.value.args[0]["C"] == "22012" and not is_transient_db_error(raised.value)
    with pool.connection() as con:
        assert wire.rows(con, "SELECT pg_backend_pid()")[0][0] == pid
    assert pool.opened == 1


def test_a_disconnect_is_transient_and_drops_the_idle_connections(pool, database_url):
    with pool.connection() as first, pool.connection() as second:
        victim = wire.rows(first, "SELECT pg_backend_pid()")[0][0]
        wire.rows(second, "SELECT 1")
    assert pool.idle() == 2
    killer = sa.create_engine(database_url)
    with killer.begin() as k:
        assert k.execute(sa.text("SELECT pg_terminate_backend(:p, 5000)"), {"p": victim}).scalar_one()
    killer.dispose()
    with pytest.raises(Exception) as raised, pool.connection() as con:  # noqa: PT011 — whatever pg8000 raises
        assert wire.rows(con, "SELECT pg_backend_pid()")[0][0] == victim  # LIFO: the connection used last
        wire.rows(con, "SELECT 1")
    assert is_transient_db_error(raised.value)
    assert pool.idle() == 0  # the other idle connection, opened before the disconnect, was closed too
    _answers_its_own(pool, 3)


def test_an_exhausted_pool_is_a_transient_error(pool):
    with pool.connection(), pool.connection():
        with pytest.raises(PoolExhausted) as raised:
            pool.acquire()
    assert is_transient_db_error(raised.value)


def test_a_checkout_waiting_on_a_full_pool_gets_the_connection_returned(database_url):
    """A return wakes a waiting checkout at once (it notifies only when one waits), and the waiter
    gets the connection that came back."""
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415

    pool = DriverPool(lambda: open_connection(database_url, 15000), size=1, timeout=10)
    try:
        held = pool.acquire()
        got: list[object] = []
        waiter = threading.Thread(target=lambda: got.append(pool.acquire()))
        waiter.start()
        deadline = time.monotonic() + 5
        while not pool._waiting and time.monotonic() < deadline:
            time.sleep(0.005)
        assert pool._waiting == 1 and got == []  # waiting: the pool is full
        returned = time.monotonic()
        pool.release(held)
        waiter.join(5)
        assert got == [held] and time.monotonic() - returned < 2  # woken by the return, not its timeout
        assert pool._waiting == 0
        pool.release(held)
    finally:
        pool.dispose()


def test_a_transaction_left_open_is_rolled_back_on_return(pool):
    table = f"t_{uuid.uuid4().hex[:10]}"
    with pool.connection(autocommit=True) as con:
        wire.simple(con, f"BEGIN; CREATE TABLE {table} (x int)")
    with pool.connection() as con:
        assert wire.rows(con, "SELECT to_regclass(%s) IS NULL", (table,)) == [[True]]


def test_the_engine_borrows_from_the_driver_pool(database_url):
    pool = DriverPool(lambda: open_connection(database_url, 15000), size=1, timeout=0.3)
    engine = make_engine(database_url, driver=pool)
    try:
        with engine.connect() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            with pytest.raises(PoolExhausted):
                pool.acquire()  # the one connection is lent to the engine: one limit for both
        with pool.connection() as con:
            assert wire.rows(con, "SELECT pg_backend_pid()")[0][0] == pid  # returned to the driver pool, reused
        assert pool.opened == 1
    finally:
        engine.dispose()


def test_connections_use_tls_exactly_when_the_server_offers_it(database_url):
    """As pg8000 without an ``ssl_context``: TLS when the server offers it, plain text when it declines
    (asked once per server and process), from one context that loaded no CA certificates."""
    pool_module._REFUSES_TLS.clear()
    args = connect_args(database_url)
    server = (args.get("host"), args.get("port"), args.get("unix_sock"))
    cons = [open_connection(database_url, 0) for _ in range(2)]
    try:
        offered = wire.rows(cons[0], "SHOW ssl")[0][0] == "on"
        for con in cons:
            assert wire.rows(con, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == [[offered]]
    finally:
        for con in cons:
            con.close()
    assert (server in pool_module._REFUSES_TLS) is (not offered)
    assert pool_module._tls_context().cert_store_stats()["x509_ca"] == 0


def test_only_a_connection_without_a_statement_timeout_waits_past_the_connect_timeout(database_url, monkeypatch):
    """The services' connections keep pg8000's connect timeout as their read timeout (a hung server
    answers 503 within seconds; their statement_timeout bounds the rest). One without a statement
    timeout — the migrate Job's, whose DDL on a large table may run for minutes — waits as long as its
    statement runs, and TCP keepalive (probes after 30 s) finds a dead peer instead."""
    import socket  # noqa: PLC0415

    monkeypatch.setattr(pool_module, "CONNECT_TIMEOUT_SECONDS", 0.5)
    unbounded, bounded = open_connection(database_url, 0), open_connection(database_url, 15000)
    try:
        assert unbounded._usock.gettimeout() is None
        assert wire.rows(unbounded, "SELECT 1 FROM pg_sleep(0.8)", ()) == [[1]]
        assert unbounded._usock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
        # the bound is the kernel's (shared.sockets): a blocking socket, each recv and send cut at 0.5 s
        assert bounded._usock.gettimeout() is None and sockets.bounds(bounded._usock) == (0.5, 0.5)
        assert sockets.bounds(unbounded._usock) == (0.0, 0.0)
        with pytest.raises(TimeoutError):
            wire.rows(bounded, "SELECT 1 FROM pg_sleep(0.8)", ())
        assert bounded._pool_out_of_step
    finally:
        for con in (unbounded, bounded):
            try:
                con.close()
            except Exception:  # noqa: BLE001, S110 — the bounded one is out of step; closing is best effort
                pass
