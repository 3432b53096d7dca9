"""The plans PostgreSQL keeps for a known-patient ORU's statements and for the publish that follows,
on a few thousand ANALYZEd patients, orders and outbox rows in a database of its own.

* The fast path's claim-and-patient statement and its order lookup run prepared on the consumer's
  connection: PostgreSQL keeps their generic plans from the sixth execution (plan_cache_mode=auto,
  no setting changed), so a message no longer plans them again (≈ 1 ms of the backend's CPU), and
  those plans read indexes only.
* The immediate publish's claim finds its rows by primary key alone: not through
  ``ix_outbox_unpublished`` too, whose entries for rows published since the last VACUUM a bitmap
  scan re-reads on every claim.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.db import wire
from shared.db.pool import open_connection
from shared.events.publishing import relay
from shared.lis import claims, sql
from shared.lis.orders import _FILLER_NAMESPACES, _PLACER_NAMESPACES, _namespace_params
from shared.migrate import migrate
from tests.integration.registry.plan_data import fill, nodes, plan_engine
from tests.support.database import admin_url, create_database, drop_database

PATIENTS = 3000
NOW = datetime(2026, 12, 6, tzinfo=timezone.utc)
FILL = [
    """
    INSERT INTO lis_messages (id, received_at, transport, ce_source, ce_id, part, parts, content_format, raw_sha256,
                              raw_size, status, warnings, delivery_count, attempts)
    VALUES ('00000000-0000-4000-8000-000000000001', now(), 'test', 'test', 'plans', 0, 1, 'hl7v2', '', 0, 'processed',
            '{}', 1, 1)
    """,
    # earlier messages (the claim's insert checks that its own message row is there, by primary key)
    """
    INSERT INTO lis_messages (id, received_at, transport, ce_source, ce_id, part, parts, content_format, raw_sha256,
                              raw_size, status, warnings, delivery_count, attempts)
    SELECT gen_random_uuid(), now(), 'test', 'test', 'earlier-' || i, 0, 1, 'hl7v2', '', 0, 'processed', '{}', 1, 1
    FROM generate_series(1, 3000) AS i
    """,
    # earlier claims, and every patient a LIS demographic source
    """
    INSERT INTO lis_control_ids (sending_facility, control_id, content_sha256, message_id, claimed_at)
    SELECT 'FAC', 'OLD-' || i, 'digest', '00000000-0000-4000-8000-000000000001', now()
    FROM generate_series(1, 3000) AS i
    """,
    "INSERT INTO lis_patient_sync (patient_id, field_stamps, field_sources, updated_at) SELECT id, '{}', '{}', now() "
    "FROM patients",
    # one LIS order per patient, and a placer-numbered one for a third of them
    """
    INSERT INTO lab_orders (id, patient_id, placer_namespace, placer_number, filler_namespace, filler_number, status,
                            source, version, created_at, updated_at)
    SELECT gen_random_uuid(), id, '', CASE WHEN mod(mrn::bigint, 3) = 0 THEN 'P' || mrn END, 'LAB', 'F' || mrn,
           'final', 'lis', 1, now(), now()
    FROM patients
    """,
    # every patient's events, published (as after the bench's first pass), without a VACUUM since
    """
    INSERT INTO outbox (id, source, type, subject, time, data, created_at, published_at, attempts)
    SELECT gen_random_uuid(), 'test', 'order.created', p.id::text, now(), '{}', now(), NULL, 0
    FROM patients p, generate_series(1, 4)
    """,
    "ANALYZE",
    "UPDATE outbox SET published_at = now(), attempts = 1",
]


@pytest.fixture(scope="module")
def plan_url() -> Iterator[str]:
    admin = admin_url()
    url = create_database(admin, prefix="pmlisplan")
    try:
        engine = plan_engine(url)
        try:
            migrate(engine)
            with Session(engine) as session:
                fill(session, PATIENTS)
                for statement in FILL:
                    session.execute(sa.text(statement))
                session.commit()
        finally:
            engine.dispose()
        yield url
    finally:
        drop_database(admin, url)


def _prepared_runs(url: str, text: str, args: tuple[Any, ...], times: int = 7) -> tuple[list[Any], int, int, str]:
    """`text` with `args` as the fast path sends it (SQL text, ``shared.lis.sql``, prepared on the
    connection), `times` times, each in a transaction rolled back: (the answers, generic plans,
    custom plans, the plan EXPLAIN shows for the next execution)."""
    con = open_connection(url, 0)
    try:
        answers = []
        for _ in range(times):
            answers.append(list(wire.execute(con, text, args, prepared=True).rows or []))
            con.rollback()
        [(name, generic, custom)] = wire.rows(
            con, "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = %s",
            (wire.dollar_params(text),))
        con.autocommit = True
        raw = wire.rows(con, f"EXPLAIN (FORMAT JSON) EXECUTE {name}({', '.join(['NULL'] * len(args))})")[0][0]
    finally:
        con.close()
    return answers, generic, custom, (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def _scans(plan: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    return [(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in nodes(plan) if "Scan" in n["Node Type"]]


def _a_patient(url: str) -> tuple[str, str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(sa.text("SELECT id::text, mrn FROM patients ORDER BY mrn OFFSET 10 LIMIT 1")).one())
    finally:
        engine.dispose()


def test_claim_and_patient_lookup_keeps_its_generic_plan(plan_url):
    patient_id, mrn = _a_patient(plan_url)
    params = claims._params("FAC", f"CTL-{uuid.uuid4().hex}", "digest", uuid.UUID("00000000-0000-4000-8000-000000000001"))
    params.update(systems=["urn:patient-mgt:mrn", "urn:oid:2.16.840.1.113883.4.1"], identifiers=[mrn, f"SSN{mrn}"])
    text, names = claims._CLAIM_AND_PATIENT_SENT
    answers, generic, custom, plan = _prepared_runs(plan_url, text, tuple(params[name] for name in names))
    assert (custom, generic) == (5, 2)
    assert all(a == answers[0] for a in answers)
    # our claim, then the patient once per identifier that named it
    assert [str(row[1]) for row in answers[0]] == [patient_id, patient_id]
    assert json.loads(answers[0][0][0])[0][3] is True
    scans = _scans(plan)
    assert not [s for s in scans if s[0] == "Seq Scan"], scans
    assert {s[2] for s in scans if s[1] == "patients"} == {"pk_patients"}, scans


@pytest.mark.parametrize("placer", [True, False])
def test_order_lookup_keeps_its_generic_plan(plan_url, placer):
    _, mrn = _a_patient(plan_url)
    args: list[Any] = []
    if placer:  # the parameters in the order orders._find sends them
        args += [*_namespace_params("placer_namespace", {"LAB", "", "patient-mgt"}, 3).values(), "P-none"]
    args += [*_namespace_params("filler_namespace", {"LAB", ""}, 2).values(), f"F{mrn}"]
    text = sql.find_orders(placer, True, True, _PLACER_NAMESPACES, _FILLER_NAMESPACES)
    answers, generic, custom, plan = _prepared_runs(plan_url, text, tuple(args))
    assert (custom, generic) == (5, 2)
    assert all(len(a) == 1 and a[0][5] == f"F{mrn}" for a in answers)
    scans = _scans(plan)
    assert not [s for s in scans if s[0] == "Seq Scan"], scans
    assert {s[2] for s in scans if s[2]} <= {"uq_lab_orders_placer", "uq_lab_orders_filler"}, scans


def test_publish_claim_reads_no_index_of_every_unpublished_row(plan_url):
    """Two fresh rows of one subject (its four older rows published): the claim's plan finds them by
    primary key alone; both go, neither waits."""
    patient_id, _ = _a_patient(plan_url)
    ids = [uuid.uuid4(), uuid.uuid4()]
    engine = sa.create_engine(plan_url)
    try:
        with engine.begin() as conn:
            for event_id in ids:
                conn.execute(sa.text("INSERT INTO outbox (id, source, type, subject, time, data, created_at, attempts) "
                                     "VALUES (:id, 'test', 'result.available', :s, now(), '{}', now(), 0)"),
                             {"id": event_id, "s": patient_id})
        claim = relay._CLAIM_COMMITTED.format(ids=relay._uuid_array(ids)).removeprefix("BEGIN;\n")
        with engine.connect() as conn:
            rows = conn.execute(sa.text(claim)).all()
            conn.rollback()
            raw = conn.execute(sa.text("EXPLAIN (FORMAT JSON) " + claim)).scalar()
            conn.rollback()
    finally:
        engine.dispose()
    assert [(row.id, row.waits) for row in rows] == [(ids[0], False), (ids[1], False)]
    top = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    [locked] = [n for n in nodes(top) if n.get("Subplan Name") == "CTE locked"]
    assert {s[2] for s in _scans(locked) if s[2]} == {"pk_outbox"}, _scans(locked)
    assert not [s for s in _scans(top) if s[0] == "Seq Scan"], _scans(top)
