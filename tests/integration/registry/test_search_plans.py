"""Every search parameter is answered through an index: EXPLAIN of the statement the service runs,
on a few thousand ANALYZEd patients in a database of its own (no enable_seqscan tricks)."""

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from shared.migrate import migrate
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
