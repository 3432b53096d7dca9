"""Apply the Alembic migrations under shared/migrations, safely twice and concurrently.

A PostgreSQL advisory lock serialises concurrent runs (several pods starting, a Job and a
developer): the second waits (trying again and again, see `_lock`), then finds nothing to do.
"""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Arbitrary but fixed: "patient-mgt migrate" in a 64-bit key.
ADVISORY_LOCK_KEY = 0x50A7_1E47_4D16


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def pending_revisions(engine: sa.Engine) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    heads = set(script.get_heads())
    if heads <= current:
        return []
    return [rev.revision for rev in script.walk_revisions() if rev.revision not in current]


def _with_ancestors(script: ScriptDirectory, heads: set[str]) -> set[str]:
    """The revisions a database at ``heads`` has run: each head and everything below it."""
    if not heads:
        return set()
    return {rev.revision for rev in script.iterate_revisions(tuple(heads), "base")}


def _lock(conn: sa.Connection) -> None:
    """Take the advisory lock, waiting between short tries rather than inside one statement.

    A run blocked in ``pg_advisory_lock`` holds that statement's snapshot for as long as it waits,
    and ``CREATE INDEX CONCURRENTLY`` in the running migration waits for every older snapshot to end
    (shared.migrations.online.create_index): the two would wait for each other (deadlock detected).
    Each try here is its own transaction, over at once."""
    delay = 0.05
    while True:
        taken = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}).scalar()
        conn.commit()
        if taken:
            return
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def migrate(engine: sa.Engine) -> list[str]:
    """Upgrade to every head. Returns every revision that ran, oldest first (empty when up to date).

    Counted from the revision graph, not from the heads: the branches that start at the spine
    (0002 … 0006) and the revisions chained after them all ran, though only the tips are heads.
    """
    with engine.connect() as conn:
        _lock(conn)
        try:
            before = set(MigrationContext.configure(conn).get_current_heads())
            conn.commit()
            cfg = alembic_config(conn)
            command.upgrade(cfg, "heads")
            conn.commit()
            after = set(MigrationContext.configure(conn).get_current_heads())
            conn.commit()
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
            conn.commit()
    script = ScriptDirectory.from_config(alembic_config())
    ran = _with_ancestors(script, after) - _with_ancestors(script, before)
    return [rev.revision for rev in reversed(list(script.walk_revisions())) if rev.revision in ran]
