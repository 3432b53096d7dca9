"""Alembic environment: always run with a connection handed over by shared.migrate."""

from alembic import context

from shared.models import load_all

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=load_all(),  # every table, not only those imported so far
    compare_type=True,
    # One transaction per revision: no lock outlives the revision that took it, and an online
    # revision (shared/migrations/online.py) can step outside it to build an index CONCURRENTLY.
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
