"""Every search parameter is answered through an index: EXPLAIN of the statement the service runs,
on a few thousand ANALYZEd patients in a database of its own (no enable_seqscan tricks)."""

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.migrate import migrate
from shared.normalize import tokens
from shared.schemas.search import PatientSearchQuery
from shared.services.search import build_search, prefix_upper_bound
from tests.integration.registry.plan_data import CASES, fill, nodes, plan, plan_engine
from tests.support.database import admin_url, create_database, drop_database

ROWS = 6000


@pytest.fixture(scope="module")
def plan_session() -> Iterator[Session]:
    admin = admin_url()
    url = create_database(admin, prefix="pmplan")
    engine = plan_engine(url)
    try:
        migrate(engine)
        with Session(engine) as session:
            fill(session, ROWS)
            yield session
    finally:
        engine.dispose()
        drop_database(admin, url)


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
