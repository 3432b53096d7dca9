"""Readiness tells the truth: 503 while the process's pool cannot run a query, 200 again as soon as
it can — nothing cached, every probe a real query through the pool."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.db import get_engine
from tests.support.database import refusing_connections


def test_readiness_fails_while_the_pool_cannot_run_a_query_and_recovers_with_it(client, database_url):
    assert client.get("/readyz").status_code == 200
    with refusing_connections(database_url):
        for _ in range(3):  # the killed pooled connection, then connects the database refuses
            resp = client.get("/readyz")
            assert resp.status_code == 503, resp.get_data(as_text=True)
            assert resp.mimetype == "application/problem+json"
            assert int(resp.headers["Retry-After"]) > 0
    assert client.get("/readyz").get_json() == {"status": "ready"}
    assert client.get("/readyz").status_code == 200


def test_a_connection_out_of_step_fails_readiness_once_and_is_discarded(client):
    """A pooled connection whose protocol stream is out of step (a parameter pg8000 could not
    convert after it had sent part of the statement — here behind SQLAlchemy's back, so no engine
    hook saw it) never answers the probe as if all were well, and does not keep it failing."""
    bad = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14)))
    engine = get_engine()
    engine.dispose()  # an empty pool: the next checkout gets the connection poisoned below
    raw = engine.raw_connection()
    with pytest.raises(OverflowError):
        raw.cursor().execute("SELECT CAST(%s AS timestamptz)", (bad,))
    raw.close()  # back into the pool, out of step
    first = client.get("/readyz")
    assert first.status_code == 503 and int(first.headers["Retry-After"]) > 0
    for _ in range(5):
        assert client.get("/readyz").get_json() == {"status": "ready"}
