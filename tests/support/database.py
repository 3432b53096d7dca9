"""A throwaway PostgreSQL database per test session (under pytest-xdist: per worker).

Uses the server on 127.0.0.1:5432 when one answers (CI machines have it), otherwise the embedded
pgserver under .data/test-pg: PostgreSQL only, like production.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]


def _local_server_answers(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def admin_url() -> str:
    explicit = os.environ.get("TEST_ADMIN_DATABASE_URL")
    if explicit:
        return explicit
    if _local_server_answers():
        return "postgresql+pg8000://postgres@127.0.0.1:5432/postgres"
    from shared.devtools.embedded_pg import start_embedded  # noqa: PLC0415

    return start_embedded(ROOT / ".data" / "test-pg")


def create_database(admin: str, prefix: str = "pmtest") -> str:
    # The xdist worker id (gw0, gw1 …) names whose database it is when a run leaves one behind.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{prefix}_{worker}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def drop_database(admin: str, url: str) -> None:
    name = make_url(url).database
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@contextmanager
def refusing_connections(url: str) -> Iterator[None]:
    """The database at ``url`` refuses new connections and its open ones are killed (the pool of
    this process can run no query), until the block ends. The server itself keeps running."""
    name = make_url(url).database
    engine = sa.create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            conn.execute(sa.text("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                                 "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
        yield
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        engine.dispose()
