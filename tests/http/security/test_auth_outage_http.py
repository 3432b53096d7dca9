"""Authentication never turns an infrastructure fault into 401: while the key lookup cannot run,
the answer is 503 with Retry-After, and nothing about the key is cached."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from tests.conftest import auth
from tests.support.database import refusing_connections


def test_a_failed_key_lookup_is_503_and_not_cached(client, database_url, make_token, key_cache_on):
    token = make_token("patients:read")  # valid, never looked up yet
    unknown = "pmk_" + "x" * 43
    with refusing_connections(database_url):
        for header in (auth(token), auth(unknown)):
            resp = client.get("/patients?family=Nobody", headers=header)
            assert resp.status_code == 503, resp.get_data(as_text=True)
            assert resp.mimetype == "application/problem+json"
            assert int(resp.headers["Retry-After"]) > 0
            assert "WWW-Authenticate" not in resp.headers
    # The database is back: the valid key works at once (no "unknown key" was cached), the unknown one is 401.
    assert client.get("/patients?family=Nobody", headers=auth(token)).status_code == 200
    assert client.get("/patients?family=Nobody", headers=auth(unknown)).status_code == 401


@contextmanager
def key_table_unreadable(url: str) -> Iterator[None]:
    """The key lookup fails with an error the server sends (the table is briefly gone, as during a
    botched migration): not a connection fault, yet no answer about the key either."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")

    def rename(old: str, new: str) -> None:
        with engine.connect() as conn:
            conn.execute(sa.text(f"ALTER TABLE {old} RENAME TO {new}"))

    rename("api_keys", "api_keys_away")
    try:
        yield
    finally:
        rename("api_keys_away", "api_keys")
        engine.dispose()


def test_a_key_lookup_failing_for_any_reason_is_503_and_not_cached(client, database_url, make_token, key_cache_on):
    token = make_token("patients:read")
    with key_table_unreadable(database_url):
        resp = client.get("/patients?family=Nobody", headers=auth(token))
        assert resp.status_code == 503, resp.get_data(as_text=True)
        assert int(resp.headers["Retry-After"]) > 0
    assert client.get("/patients?family=Nobody", headers=auth(token)).status_code == 200
