"""Every search parameter is answered through an index: EXPLAIN of the statement the service runs,
on a few thousand ANALYZEd patients in a database of its own (no enable_seqscan tricks). A search
by name words alone runs prepared: PostgreSQL keeps its generic plan, and that plan reads the
token index too."""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.auth import SYSTEM_CLI
from shared.db import wire
from shared.db.pool import open_connection
from shared.migrate import migrate
from shared.normalize import tokens
from shared.schemas.search import PatientSearchQuery
from shared.services import cursor
from shared.services.search import CURSOR_KIND, build_search, prefix_upper_bound, runs_prepared, search_statement
from tests.integration.registry.plan_data import CASES, fill, nodes, plan, plan_engine
from tests.support.database import admin_url, create_database, drop_database

ROWS = 6000


@pytest.fixture(scope="module")
def plan_url() -> Iterator[str]:
    admin = admin_url()
    url = create_database(admin, prefix="pmplan")
    try:
        yield url
    finally:
        drop_database(admin, url)


@pytest.fixture(scope="module")
def plan_session(plan_url) -> Iterator[Session]:
    engine = plan_engine(plan_url)
    try:
        migrate(engine)
        with Session(engine) as session:
            fill(session, ROWS)
            yield session
    finally:
        engine.dispose()


@pytest.mark.parametrize(("label", "params", "indexes"), CASES, ids=[c[0] for c in CASES])
def test_search_parameter_uses_an_index(plan_session, label, params, indexes):
    steps = nodes(plan(plan_session, params))
    scans = [(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in steps if "Scan" in n["Node Type"]]
    assert not [s for s in scans if s[0] == "Seq Scan"], f"{label}: {scans}"
    used = {s[2] for s in scans if s[2]}
    assert used & set(indexes), f"{label}: expected one of {indexes}, plan used {used}"


def test_the_plans_answer_with_the_rows_asked_for(plan_session):
    """The checked statements are the real ones: run one with ANALYZE and look at the rows."""
    executed = plan(plan_session, {"phone": "+141500001234"}, analyze=True)
    assert executed["Actual Rows"] == 1
    first_page = plan(plan_session, {}, analyze=True)
    assert first_page["Actual Rows"] == 21  # limit 20 + 1 to tell whether a next page exists


NAME_ONLY = [(label, params) for label, params, _ in CASES if params and set(params) <= {"name", "family", "given"}]


@pytest.mark.parametrize(("label", "params"), NAME_ONLY, ids=[c[0] for c in NAME_ONLY])
def test_a_search_by_name_reads_its_page_from_the_token_index_alone(plan_session, label, params):
    """The page of a name-only search never touches patients: each word's range in
    ix_patient_name_tokens_page, read once (an index-only scan, or a bitmap scan of it before the
    table is vacuumed)."""
    steps = nodes(plan(plan_session, params))
    assert {n["Relation Name"] for n in steps if "Relation Name" in n} == {"patient_name_tokens"}, label
    ranges = [n for n in steps if n["Node Type"] in ("Index Only Scan", "Bitmap Index Scan")]
    assert [(n["Index Name"], n.get("Actual Loops", 1)) for n in ranges] \
        == [("ix_patient_name_tokens_page", 1)] * sum(len(tokens(v)) for v in params.values()), label
    assert not [n for n in steps if n["Node Type"] in ("Seq Scan", "Index Scan")], label


# Against the statement of before migration 0017 (patients filtered by the words, in page order).
REFERENCE = """
SELECT p.id FROM patients p WHERE p.status = ANY(:statuses)
AND p.id IN (SELECT patient_id FROM patient_name_tokens WHERE token >= :w0 AND token < :e0 AND (:k0 = '' OR kind = :k0))
AND (:w1 = '' OR p.id IN (SELECT patient_id FROM patient_name_tokens WHERE token >= :w1 AND token < :e1
                          AND (:k1 = '' OR kind = :k1)))
ORDER BY p.family_norm, p.id LIMIT :n
"""


@pytest.mark.parametrize("params", [
    {"name": "fam1"}, {"name": "fam12 giv3"}, {"name": "giv3 f"}, {"family": "fam2", "given": "giv1"},
    {"given": "giv6", "status": "inactive"}, {"name": "fam", "status": "merged,inactive"},
    {"family": "fam3", "status": "active,inactive,merged"},
], ids=lambda p: " ".join(f"{k}={v}" for k, v in p.items()))
def test_a_search_by_name_finds_the_patients_and_order_it_found_before(plan_session, params):
    """Same patients, same order, each once: some patients get a second family word in the same
    ranges (``fam12`` and ``fam12x``), which the page must not list twice."""
    plan_session.execute(sa.text("INSERT INTO patient_name_tokens (patient_id, kind, token) "
                                 "SELECT id, 'family', family_norm || 'x' FROM patients WHERE mod(mrn::bigint, 7) = 0"))
    q = PatientSearchQuery.model_validate({**params, "limit": 100})
    compiled = build_search(q).compile(dialect=plan_session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    got = [row.id for row in plan_session.execute(sa.text(str(compiled)))]
    words = [(w, kind) for field, kind in (("name", ""), ("family", "family"), ("given", "given"))
             for w in tokens(params.get(field, ""))] + [("", "")]
    binds = {"statuses": list(q.statuses()), "n": 101}
    for i, (word, kind) in enumerate(words[:2]):
        binds |= {f"w{i}": word, f"e{i}": prefix_upper_bound(word) if word else "", f"k{i}": kind}
    expected = list(plan_session.execute(sa.text(REFERENCE), binds).scalars())
    plan_session.rollback()
    assert len(expected) > 1
    assert got == expected


def _first_id(session: Session, params: dict[str, Any]) -> uuid.UUID:
    q = PatientSearchQuery.model_validate({**params, "limit": 1})
    compiled = build_search(q).compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    return session.execute(sa.text(str(compiled))).scalars().first()


# Searches by name words only that find patients in the plan data (2,000 families, 700 given names),
# after a cursor too, and with statuses of their own.
PREPARED = [("name=fam123", {"name": "fam123"}), ("name=fam12 giv3", {"name": "fam12 giv3"}),
            ("family=fam42 given=giv4", {"family": "fam42", "given": "giv4"}), ("given=giv345", {"given": "giv345"}),
            ("name=fam1 after a cursor", {"name": "fam1", "limit": "5"}),
            ("given=giv6 status=inactive,merged", {"given": "giv6", "status": "inactive,merged"})]


@pytest.mark.parametrize(("label", "params"), PREPARED, ids=[c[0] for c in PREPARED])
def test_a_prepared_search_by_name_keeps_a_generic_plan_that_reads_the_token_index(plan_url, plan_session, label,
                                                                                   params):
    """Seven runs of one search on one connection, as ``search_page`` sends it: planned for the
    values five times, then the generic plan is kept (plan_cache_mode=auto, no setting changed):
    PostgreSQL stops planning each search. That plan answers what the custom plans answered and
    reads each word's range in ix_patient_name_tokens_page, never a scan of patients."""
    after = _first_id(plan_session, params) if "cursor" in label else None
    q = PatientSearchQuery.model_validate(
        {**params, "cursor": cursor.encode(CURSOR_KIND, after)} if after else params)
    shape, sql, values = search_statement(SYSTEM_CLI, q)
    assert runs_prepared(shape)
    con = open_connection(plan_url, 0)
    con.autocommit = True
    try:
        answers = [wire.rows(con, sql, values, shaped=True) for _ in range(7)]
        [(name, generic, custom)] = wire.rows(
            con, "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = %s",
            (wire.dollar_params(sql),))
        assert (custom, generic) == (5, 2), label
        [[items, next_key, valid]] = answers[0]
        docs = json.loads(items)
        assert valid and docs and all(a == answers[0] for a in answers), label
        if after is not None:  # limit 5, and a next page after the last shown
            assert str(after) not in [d["id"] for d in docs] and len(docs) == 5 and next_key == docs[-1]["id"]
        # The plan the seventh run used (values unknown: it is the same whatever they are).
        raw = wire.rows(con, f"EXPLAIN (FORMAT JSON) EXECUTE {name}({', '.join(['NULL'] * len(values))})")[0][0]
        [(generic_after,)] = wire.rows(con, "SELECT generic_plans FROM pg_prepared_statements WHERE name = %s",
                                       (name,))
    finally:
        con.close()
    assert generic_after == 3, label  # the EXPLAIN showed the generic plan
    steps = nodes((json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"])
    scans = [(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in steps if "Scan" in n["Node Type"]]
    assert not [s for s in scans if s[0] == "Seq Scan"], f"{label}: {scans}"
    words = sum(len(tokens(params.get(field, ""))) for field in ("name", "family", "given"))
    # each word's range once (an index-only scan, or a bitmap scan of the index before the table is vacuumed)
    ranges = [(s[0], s[2]) for s in scans if (s[2] or "").startswith("ix_patient_name_tokens")]
    assert {r[0] for r in ranges} <= {"Index Only Scan", "Bitmap Index Scan"}, f"{label}: {scans}"
    assert [r[1] for r in ranges] == ["ix_patient_name_tokens_page"] * words, f"{label}: {scans}"
    # patients only by primary key: the cursor's row and the page's few documents
    assert {s[2] for s in scans if s[1] == "patients"} == {"pk_patients"}, f"{label}: {scans}"
