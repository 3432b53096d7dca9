"""0002_registry: the migrated schema is what the models declare, and existing patients become
findable by name (the token backfill)."""

import uuid

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared.db import make_engine
from shared.migrate import alembic_config, migrate
from shared.models import load_all
from tests.support.database import admin_url, create_database, drop_database

REGISTRY_TABLES = {"patients", "patient_identifiers", "patient_name_tokens", "history_entries", "resource_versions",
                   "patient_merges", "lab_orders"}


def _tables_of(diff) -> set[str]:
    names = set()
    for item in diff if isinstance(diff, list) else [diff]:
        for part in item if isinstance(item, tuple) else (item,):
            table = getattr(part, "table", None)
            if table is not None:
                names.add(table.name)
            elif isinstance(part, sa.Table):
                names.add(part.name)
            elif isinstance(part, str) and part in REGISTRY_TABLES:
                names.add(part)
    return names


def test_registry_tables_match_the_models(database_url):
    engine = make_engine(database_url, pool_size=1)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), load_all())
    engine.dispose()
    ours = [d for d in diffs if _tables_of(d) & REGISTRY_TABLES]
    assert ours == []


def test_upgrade_backfills_name_tokens_of_existing_patients():
    admin = admin_url()
    url = create_database(admin, prefix="pmbackfill")
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            command.upgrade(alembic_config(conn), "0001_spine")
            conn.commit()
            pid = uuid.uuid4()
            conn.execute(sa.text(
                "INSERT INTO patients (id, mrn, status, family, given, prefix, suffix, family_norm, first_given_norm, "
                "sex, preferred_language, timezone, comm_email, comm_sms, source, version, created_at, updated_at) "
                "VALUES (:id, '10000001', 'active', 'Muñoz-Pérez', ARRAY['María José'], '{}', '{}', 'munozperez', "
                "'mariajose', 'female', 'es', 'Europe/Madrid', false, false, 'api', 1, now(), now())"), {"id": pid})
            conn.commit()
        applied = migrate(engine)  # the heads reached: 0002_registry, or a revision that follows it
        assert applied and "0001_spine" not in applied
        with engine.connect() as conn:
            tokens = set(conn.execute(sa.text("SELECT kind, token FROM patient_name_tokens WHERE patient_id = :id"),
                                      {"id": pid}).all())
        assert tokens == {("family", "munoz"), ("family", "perez"), ("family", "munozperez"),
                          ("given", "maria"), ("given", "jose"), ("given", "mariajose")}
    finally:
        engine.dispose()
        drop_database(admin, url)
