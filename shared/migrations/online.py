"""Online migrations: the patterns a migration uses on a table that already holds data under load.

docs/architecture.md ("Online migrations") gives the rules; `shared.migrations.rules` checks every
revision after ``BASELINE`` for the statements that break them. In short:

- an index is built ``CONCURRENTLY``, outside the migration's transaction, and checked valid
  afterwards (a failed concurrent build leaves an invalid index behind): `create_index`;
- a column is added nullable (`add_column`), filled in batches of short transactions
  (`backfill`), and made NOT NULL later through a validated check constraint;
- a constraint is added ``NOT VALID`` (`add_check`, `add_foreign_key`) — only new rows are
  checked, under a brief lock — then validated (`validate`), which scans without blocking writes;
- a statement that needs a table lock at all (ADD CONSTRAINT, CREATE TRIGGER…) runs with a short
  ``lock_timeout`` and is retried (`ddl`), so it never queues registrations behind a long
  transaction for more than that.

Each revision runs in its own transaction (``transaction_per_migration`` in env.py), so no lock
outlives the revision that took it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

# Every revision up to and including these was written before the online rules; the rules apply
# to every revision after them (tests/integration/test_online_migrations.py applies those under load).
BASELINE = frozenset({
    "0001_spine", "0002_registry", "0003_lis", "0004_events", "0005_notifications", "0006_jobs",
    "0007_lis_topic_key", "0008_dead_letter_key_name", "0009_console", "0010_critical_alerts",
    "0010_lis_fidelity", "0011_version_field_sources", "0012_fhir_lab_search", "0013_order_lis_link",
    "0014_results_by_observation",
})
LOCK_TIMEOUT_MS = 300
LOCK_ATTEMPTS = 50
BATCH_ROWS = 5000
LOCK_NOT_AVAILABLE = "55P03"


@contextmanager
def outside_transaction() -> Iterator[sa.Connection]:
    """The revision's connection in autocommit, its transaction so far committed.

    Alembic's ``autocommit_block`` commits, then reads the isolation level before switching to
    AUTOCOMMIT; with pg8000 that read opens a new server-side transaction, which the switch does
    not end. The COMMIT here ends it, so each statement inside is its own transaction (a stray
    COMMIT outside one is only a warning)."""
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        bind.exec_driver_sql("COMMIT")
        yield bind


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    args = getattr(orig, "args", None)
    if args and isinstance(args[0], dict):  # pg8000: the server's error fields
        return args[0].get("C")
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def ddl(statement: str, *, lock_timeout_ms: int = LOCK_TIMEOUT_MS, attempts: int = LOCK_ATTEMPTS) -> None:
    """Run one statement in its own transaction with a short ``lock_timeout``, retried while the
    lock is not available: writers queue behind it for at most ``lock_timeout_ms`` at a time."""
    with outside_transaction() as bind:
        try:
            for attempt in range(attempts):
                bind.exec_driver_sql(f"SET lock_timeout = {int(lock_timeout_ms)}")
                try:
                    bind.exec_driver_sql(statement)
                    return
                except sa.exc.DBAPIError as exc:
                    if _sqlstate(exc) != LOCK_NOT_AVAILABLE or attempt == attempts - 1:
                        raise
                time.sleep(min(0.05 * (attempt + 1), 1.0))
        finally:
            bind.exec_driver_sql("RESET lock_timeout")


def create_trigger(name: str, table: str, definition: str) -> None:
    """``CREATE TRIGGER name definition`` (what follows the name: timing, events, ``ON table``, …)
    unless ``table`` has it already, under `ddl`'s short lock_timeout."""
    ddl(f"""DO $do$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{name}' AND tgrelid = '{table}'::regclass) THEN
        CREATE TRIGGER {name} {definition};
    END IF;
END $do$""")


def _index_valid(name: str) -> bool | None:
    """True / False for an existing index, None when there is none."""
    return op.get_bind().execute(
        sa.text("SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(:name)"), {"name": name}
    ).scalar()


def create_index(name: str, table: str, columns: str, *, unique: bool = False, where: str | None = None,
                 include: str | None = None) -> None:
    """``CREATE INDEX CONCURRENTLY`` outside the transaction, then a check that the index is valid.

    ``columns`` is the SQL list inside the parentheses (``include``: the INCLUDE list). An invalid index left by an earlier failed
    build is dropped and built again; an index still invalid after the build fails the migration.
    """
    with outside_transaction() as bind:
        if _index_valid(name) is False:
            bind.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        predicate = f" WHERE {where}" if where else ""
        covering = f" INCLUDE ({include})" if include else ""
        bind.exec_driver_sql(f"CREATE {'UNIQUE ' if unique else ''}INDEX CONCURRENTLY IF NOT EXISTS {name} "
                             f"ON {table} ({columns}){covering}{predicate}")
        if _index_valid(name) is not True:
            raise RuntimeError(f"index {name} is not valid after CREATE INDEX CONCURRENTLY; drop it and migrate again")


def drop_index(name: str) -> None:
    with outside_transaction() as bind:
        bind.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def add_column(table: str, column: sa.Column) -> None:  # type: ignore[type-arg]
    """A new column on an existing table: nullable (a NOT NULL comes later, after `backfill`)."""
    if not column.nullable and column.server_default is None:
        raise ValueError(f"{table}.{column.name}: add it nullable, backfill it, then constrain it")
    op.add_column(table, column)


def backfill(table: str, assignments: str, pending: str, *, batch_rows: int = BATCH_ROWS) -> int:
    """``UPDATE table SET assignments`` on the rows matching ``pending`` (which must stop matching
    once a row is done), ``batch_rows`` at a time, each batch its own short transaction. Returns
    how many rows it changed."""
    total = 0
    with outside_transaction() as bind:
        while True:
            changed = bind.exec_driver_sql(
                f"UPDATE {table} SET {assignments} WHERE ctid = ANY (ARRAY("
                f"SELECT ctid FROM {table} WHERE {pending} LIMIT {int(batch_rows)} FOR UPDATE SKIP LOCKED))"
            ).rowcount
            total += changed
            if not changed:
                remaining = bind.exec_driver_sql(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {pending})").scalar()
                if not remaining:
                    return total
                time.sleep(0.05)  # rows locked by a writer: wait for it
    return total


def add_check(table: str, name: str, condition: str) -> None:
    """``ADD CONSTRAINT … CHECK … NOT VALID`` (new and updated rows only), under a short lock."""
    ddl(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID")


def add_foreign_key(table: str, name: str, columns: str, referred: str, referred_columns: str) -> None:
    ddl(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({columns}) REFERENCES {referred} ({referred_columns}) NOT VALID")


def validate(table: str, name: str) -> None:
    """``VALIDATE CONSTRAINT``: scans existing rows under SHARE UPDATE EXCLUSIVE (writes go on)."""
    ddl(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")
