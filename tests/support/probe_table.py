"""A small pool and a throwaway table of ``(id uuid, tag text)`` for tests of ``shared.db.wire``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from shared.db import wire
from shared.db.pool import DriverPool, open_connection


@contextmanager
def probe_pool(database_url: str, table: str, *, size: int = 3) -> Iterator[DriverPool]:
    """A pool of ``size`` connections with ``table`` created for the block and dropped after it (not
    the models' schema: test_models_match_migrations)."""
    pool = DriverPool(lambda: open_connection(database_url, 15000), size=size, timeout=5)
    with pool.connection() as con:
        wire.simple(con, f"CREATE TABLE IF NOT EXISTS {table} (id uuid PRIMARY KEY, tag text NOT NULL)")
    try:
        yield pool
    finally:
        with pool.connection() as con:
            wire.simple(con, f"DROP TABLE {table}")
        pool.dispose()
