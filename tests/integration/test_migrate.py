import threading

import sqlalchemy as sa

from shared.db import make_engine
from shared.migrate import migrate, pending_revisions
from tests.support.database import admin_url, create_database, drop_database


def test_migrate_twice_is_a_noop_and_concurrent_runs_serialise():
    admin = admin_url()
    url = create_database(admin, prefix="pmmig")
    try:
        engines = [make_engine(url, pool_size=2) for _ in range(3)]
        results: list[list[str]] = []
        errors: list[BaseException] = []

        def run(engine):
            try:
                results.append(migrate(engine))
            except BaseException as exc:  # noqa: BLE001 — surfaced by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(e,)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        applied = [r for r in results if r]
        assert len(applied) == 1, "exactly one concurrent run applies the migrations"
        assert migrate(engines[0]) == []
        assert pending_revisions(engines[0]) == []
        with engines[0].connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert {"patients", "patient_identifiers", "api_keys", "audit_log", "outbox", "processed_events"} <= tables
        for e in engines:
            e.dispose()
    finally:
        drop_database(admin, url)


def test_migrate_reports_every_revision_that_ran_not_the_heads():
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    from shared.migrate import alembic_config  # noqa: PLC0415

    script = ScriptDirectory.from_config(alembic_config())
    every = {rev.revision for rev in script.walk_revisions()}
    assert len(every) > len(script.get_heads()), "the graph has revisions below its heads (the case the count got wrong)"
    admin = admin_url()
    url = create_database(admin, prefix="pmmig")
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:  # a database part-way: the spine only
            from alembic import command  # noqa: PLC0415

            command.upgrade(alembic_config(conn), "0001_spine")
        ran = migrate(engine)
        assert set(ran) == every - {"0001_spine"} and len(ran) == len(every) - 1
        assert ran.index("0003_lis") < ran.index("0007_lis_topic_key"), "oldest first"
        assert migrate(engine) == []
    finally:
        engine.dispose()
        drop_database(admin, url)
