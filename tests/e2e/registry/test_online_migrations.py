"""Every migration after the baseline (``shared.migrations.online.BASELINE``) runs online: applied
to a database holding 200,000 patients while registrations go on through the real api, no
registration waits more than a second on a lock and none fails.

The wait is measured by PostgreSQL, not by a clock in the test: the database's ``lock_timeout`` is
one second for every session but the migration's, so a registration queued behind a lock the
migration holds for longer fails with ``lock_not_available`` (the api answers 503) — a CPU-starved
machine makes registrations slow, never failed. A migration that rewrites the table, builds an
index in its transaction or validates a constraint under an exclusive lock fails the test (see
docs/architecture.md, "Online migrations", for the one tried).
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.orm import Session

from shared.auth import create_api_key
from shared.db import UnitOfWork
from shared.migrate import alembic_config, migrate, pending_revisions
from shared.migrations import online
from tests.support.database import admin_url, create_database, drop_database

pytestmark = pytest.mark.e2e

PATIENTS = 200_000
CHAINS = 500  # pre-existing merge chains (A → B → C), which migration 0015 flattens
CLIENTS = 3
LOCK_TIMEOUT = "1s"

SEED_PATIENTS = f"""
INSERT INTO patients (id, mrn, status, merged_into, family, given, prefix, suffix, family_norm, first_given_norm,
                      birth_date, sex, phone, email, address, preferred_language, timezone, comm_email, comm_sms,
                      source, version, created_at, updated_at)
SELECT gen_random_uuid(), 'S' || g, 'active', NULL, 'Seed' || (g % 5000), ARRAY['Given' || (g % 700)], '{{}}', '{{}}',
       'seed' || (g % 5000), 'given' || (g % 700), DATE '1930-01-01' + (g * 7919) % 32000,
       (ARRAY['male','female','other','unknown'])[1 + g % 4], '+1' || (2000000000 + g), 'seed' || g || '@example.org',
       NULL, 'en', 'UTC', false, false, 'api', 1, now(), now()
FROM generate_series(1, {PATIENTS}) AS g
"""
SEED_IDENTIFIERS = """
INSERT INTO patient_identifiers (id, patient_id, system, value, type, created_at)
SELECT gen_random_uuid(), id, 'urn:patient-mgt:mrn', mrn, 'MR', now() FROM patients
"""
SEED_CHAINS = f"""
WITH ranked AS (SELECT id, row_number() OVER (ORDER BY mrn) AS n FROM patients WHERE mrn LIKE 'S%'),
     links AS (SELECT a.id AS source, b.id AS target FROM ranked a JOIN ranked b ON b.n = a.n + {CHAINS}
               WHERE a.n <= {2 * CHAINS})
UPDATE patients p SET status = 'merged', merged_into = links.target FROM links WHERE p.id = links.source
"""


def baseline_heads() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    below = {down for rev in script.walk_revisions() if rev.revision in online.BASELINE for down in rev._all_down_revisions}
    return sorted(online.BASELINE - below)


def after_baseline() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()} - {
        rev.revision for rev in script.iterate_revisions(tuple(baseline_heads()), "base")}


def seed(engine: sa.Engine) -> str:
    """The baseline schema, the patients, and an admin key; returns its token."""
    with engine.begin() as conn:
        for head in baseline_heads():
            command.upgrade(alembic_config(conn), head)
    with engine.begin() as conn:
        for step in (SEED_PATIENTS, SEED_IDENTIFIERS, SEED_CHAINS):
            conn.exec_driver_sql(step)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE patients")
        conn.exec_driver_sql("VACUUM ANALYZE patient_identifiers")
    with Session(engine) as session:
        _key, token = create_api_key(UnitOfWork(session), "online-migrations", ["patients:write", "patients:read"])
        session.commit()
    return token


class Registrations:
    """CLIENTS threads registering new patients through the api until stopped."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.headers = url, {"Authorization": f"Bearer {token}"}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.results: list[tuple[int, float, str]] = []  # (status, seconds, phase)
        self.phase = "before"
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def _run(self) -> None:
        with requests.Session() as http:
            while not self.stop.is_set():
                body = {"name": {"family": "Online" + uuid.uuid4().hex[:12], "given": ["Reg"]}, "birth_date": "1975-05-05",
                        "identifiers": [{"system": "urn:test:online", "value": uuid.uuid4().hex}]}
                phase, started = self.phase, time.monotonic()
                try:
                    status = http.post(f"{self.url}/patients?allow_duplicate=true", json=body, headers=self.headers,
                                       timeout=30).status_code
                except requests.RequestException:
                    status = 0
                with self.lock:
                    self.results.append((status, time.monotonic() - started, phase))

    def count(self, phase: str, status: int | None = None) -> int:
        with self.lock:
            return sum(1 for s, _, p in self.results if p == phase and (status is None or s == status))

    def wait_for(self, phase: str, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.count(phase, 201) < n and time.monotonic() < deadline:
            time.sleep(0.05)


def test_migrations_after_the_baseline_never_block_registrations_on_200k_patients(start_fn):
    admin = admin_url()
    url = create_database(admin, prefix="pmonline")
    # Plain engines: make_engine's 5 s socket timeout and statement_timeout are for requests, not for
    # a seed of 200,000 rows or a migration.
    engine = sa.create_engine(url, pool_size=2)
    registrations = None
    try:
        token = seed(engine)
        expected = after_baseline()
        assert expected and not expected & online.BASELINE
        database = engine.url.database
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{database}" SET lock_timeout = \'{LOCK_TIMEOUT}\'')
        api = start_fn("api", env={"DATABASE_URL": url, "THREADS": "4", "DB_POOL_SIZE": "4"}, ready_path="/readyz")
        registrations = Registrations(api.url, token)
        for thread in registrations.threads:
            thread.start()
        registrations.wait_for("before", 3 * CLIENTS)

        # The migration's own sessions wait as long as they must (only the registrations time out).
        migrator = sa.create_engine(url, pool_size=1)
        sa.event.listen(migrator, "connect", lambda dbapi_conn, _: _no_lock_timeout(dbapi_conn))
        registrations.phase = "during"
        ran = migrate(migrator)
        registrations.phase = "after"
        registrations.wait_for("after", CLIENTS)
        registrations.stop.set()
        for thread in registrations.threads:
            thread.join(60)
        migrator.dispose()

        assert set(ran) == expected
        assert pending_revisions(engine) == []
        failed = [(s, round(t, 2), p) for s, t, p in registrations.results if s != 201]
        slowest = max(t for _, t, _ in registrations.results)
        assert failed == [], f"registrations failed (503: waited > {LOCK_TIMEOUT} on a lock); slowest {slowest:.2f}s"
        assert registrations.count("during") >= 1
        with engine.connect() as conn:
            counts = conn.execute(sa.text(
                "SELECT count(*) FILTER (WHERE mrn LIKE 'S%') AS seeded, "
                "count(*) FILTER (WHERE p.status = 'merged' AND EXISTS (SELECT 1 FROM patients t "
                "  WHERE t.id = p.merged_into AND t.status = 'merged')) AS chained "
                "FROM patients p")).one()
        assert (counts.seeded, counts.chained) == (PATIENTS, 0)
    finally:
        if registrations is not None:
            registrations.stop.set()
        engine.dispose()
        drop_database(admin, url)


def _no_lock_timeout(dbapi_conn) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("SET lock_timeout = 0")
    cursor.close()
