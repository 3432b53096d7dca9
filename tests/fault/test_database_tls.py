"""The read timeout of the services' connections holds over TLS as over plain text.

A pooled connection keeps a client-side bound on every wait for the server (``shared.db.pool``,
``_read_timeout``): a hung server gives 503s within seconds. Plain connections get it from the
kernel (``shared.sockets``); over TLS the kernel's bound would not end a wait (CPython's TLS read
retries it), so TLS connections keep Python's. A server that offers TLS is needed to see the
difference: the shared one on 127.0.0.1:5432 may not, so this test runs a private cluster with
``ssl = on``, from the machine's PostgreSQL binaries (pgserver's are built without TLS)."""

from __future__ import annotations

import threading

import pytest

from shared import sockets
from shared.db import pool as pool_module
from shared.db import wire
from shared.db.pool import open_connection
from tests.fault.private_pg import PrivatePostgres, system_bin_dir

pytestmark = [pytest.mark.integration, pytest.mark.fault]


@pytest.fixture(scope="module")
def tls_pg():
    binaries = system_bin_dir()
    if binaries is None:  # outside the project: the machine's PostgreSQL (CI's machine has it)
        pytest.skip("no PostgreSQL built with TLS on this machine (/usr/lib/postgresql/*/bin)")
    pg = PrivatePostgres(binaries).init()
    pg.enable_tls()
    pg.start()
    try:
        yield pg
    finally:
        pg.destroy()


def _outcome(con, sql: str) -> list:
    """Run ``sql`` in a thread; what it returned or raised, or ``"still waiting"`` after 10 s."""
    outcome: list = ["still waiting"]

    def run() -> None:
        try:
            outcome[0] = wire.rows(con, sql, ())
        except BaseException as exc:  # noqa: BLE001 — the outcome is the assertion's
            outcome[0] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    return outcome[0]


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
def test_a_statement_longer_than_the_read_timeout_is_cut_client_side(tls_pg, monkeypatch, tls):
    monkeypatch.setattr(pool_module, "CONNECT_TIMEOUT_SECONDS", 0.5)
    if not tls:  # as after the server declined TLS once: plain text from then on
        monkeypatch.setattr(pool_module, "_REFUSES_TLS", {("127.0.0.1", tls_pg.port, None)})
    con = open_connection(tls_pg.url("postgres"), 15000)
    try:
        assert wire.rows(con, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == [[tls]]
        # the bound: Python's over TLS, the kernel's (in its clock's ticks) over plain text
        receive, send = sockets.bounds(con._usock)
        if tls:
            assert con._usock.gettimeout() == 0.5 and (receive, send) == (0.0, 0.0)
        else:
            assert con._usock.gettimeout() is None and receive == send and 0.5 <= receive < 0.511
        assert wire.rows(con, "SELECT repeat('x', 100000)")[0][0] == "x" * 100000  # more than one read
        outcome = _outcome(con, "SELECT 1 FROM pg_sleep(0.8)")
        assert isinstance(outcome, TimeoutError), outcome
        assert con._pool_out_of_step
    finally:
        try:
            con.close()
        except Exception:  # noqa: BLE001, S110 — out of step after the timeout; closing is best effort
            pass
