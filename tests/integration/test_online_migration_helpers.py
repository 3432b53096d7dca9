"""shared.migrations.online against real PostgreSQL: a concurrent index is checked valid (an invalid
leftover is rebuilt, a build that cannot succeed fails the migration), backfills go in batches,
constraints arrive NOT VALID and are validated, a column cannot arrive NOT NULL without a default."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from shared.migrations import online
from tests.support.database import admin_url, create_database, drop_database


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    admin = admin_url()
    created = create_database(admin, prefix="pmonlinehelpers")
    yield created
    drop_database(admin, created)


@contextmanager
def operations(url: str) -> Iterator[sa.Connection]:
    """``op`` bound to a connection in a migration transaction, as env.py runs a revision."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"transaction_per_migration": True})
        with Operations.context(context), context.begin_transaction(_per_migration=True):
            yield conn
    engine.dispose()


def scalar(url: str, sql: str):
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        value = conn.exec_driver_sql(sql).scalar()
    engine.dispose()
    return value


def _table(url: str, name: str, rows: int) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE TABLE {name} (id int PRIMARY KEY, v int, w int)")
        conn.exec_driver_sql(f"INSERT INTO {name} SELECT g, g % 10, NULL FROM generate_series(1, {rows}) g")
    engine.dispose()


def test_an_index_is_built_concurrently_and_checked_valid(url):
    _table(url, "t_index", 20_000)
    with operations(url):
        online.create_index("ix_t_index_v", "t_index", "v")
    assert scalar(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_t_index_v'::regclass") is True
    # A second run finds it and does nothing.
    with operations(url):
        online.create_index("ix_t_index_v", "t_index", "v")


def test_an_invalid_leftover_is_rebuilt_and_a_build_that_cannot_succeed_fails(url):
    _table(url, "t_unique", 1000)  # v repeats: a unique index on it cannot be built
    with pytest.raises(sa.exc.DBAPIError):
        with operations(url):
            online.create_index("ux_t_unique_v", "t_unique", "v", unique=True)
    # The failed concurrent build left an invalid index behind.
    assert scalar(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ux_t_unique_v'::regclass") is False
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE t_unique SET v = id")
    engine.dispose()
    with operations(url):
        online.create_index("ux_t_unique_v", "t_unique", "v", unique=True)
    assert scalar(url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ux_t_unique_v'::regclass") is True


def test_backfill_in_batches_then_a_not_valid_check_validated(url):
    _table(url, "t_fill", 12_345)
    with operations(url):
        changed = online.backfill("t_fill", "w = v * 2", "w IS NULL", batch_rows=1000)
        online.add_check("t_fill", "ck_t_fill_w", "w IS NOT NULL")
    assert changed == 12_345
    assert scalar(url, "SELECT count(*) FROM t_fill WHERE w IS DISTINCT FROM v * 2") == 0
    assert scalar(url, "SELECT convalidated FROM pg_constraint WHERE conname = 'ck_t_fill_w'") is False
    with operations(url):
        online.validate("t_fill", "ck_t_fill_w")
    assert scalar(url, "SELECT convalidated FROM pg_constraint WHERE conname = 'ck_t_fill_w'") is True


def test_a_not_null_column_without_default_is_refused(url):
    _table(url, "t_col", 10)
    with pytest.raises(ValueError, match="nullable"):
        with operations(url):
            online.add_column("t_col", sa.Column("x", sa.Text(), nullable=False))
    with operations(url):
        online.add_column("t_col", sa.Column("x", sa.Text(), nullable=True))
    assert scalar(url, "SELECT count(*) FROM information_schema.columns WHERE table_name = 't_col' AND column_name = 'x'") == 1


def test_ddl_waits_in_short_slices_behind_a_long_transaction(url):
    _table(url, "t_lock", 10)
    engine = sa.create_engine(url)
    holder = engine.connect()
    holder.exec_driver_sql("SELECT * FROM t_lock")  # ACCESS SHARE, held until the transaction ends
    import threading  # noqa: PLC0415

    released = threading.Timer(1.0, holder.rollback)
    released.start()
    try:
        with operations(url):
            online.add_check("t_lock", "ck_t_lock_v", "v >= 0")  # needs ACCESS EXCLUSIVE: retried until released
    finally:
        released.join()
        holder.close()
        engine.dispose()
    assert scalar(url, "SELECT count(*) FROM pg_constraint WHERE conname = 'ck_t_lock_v'") == 1
