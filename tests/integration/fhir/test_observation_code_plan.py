"""Observation?code= without a patient pages through the index (code, created_at, id): EXPLAIN of the
statement the FHIR view runs, on 2,000 patients' ANALYZEd results in a database of its own."""

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.fhir.lab_view import observation_query
from shared.fhir.params import ObservationSearchParams
from shared.fhir.search import ordered
from shared.migrate import migrate
from shared.models import LabResult
from tests.integration.registry.plan_data import FILL, nodes, plan_engine
from tests.support.database import admin_url, create_database, drop_database

PATIENTS = 2000
RESULTS = [
    """
    INSERT INTO lab_orders (id, patient_id, placer_namespace, filler_namespace, code_system, code, status, source,
                            version, created_at, updated_at)
    SELECT gen_random_uuid(), id, 'HIS', 'LAB', 'LN', '24323-8', 'final', 'lis', 1, now(), now() FROM patients
    """,
    """
    INSERT INTO lab_results (id, order_id, patient_id, result_key, code_system, code, value_type, value, status,
                             abnormal_flags, notes, previous_versions, version, created_at, updated_at)
    SELECT gen_random_uuid(), o.id, o.patient_id, 'k' || c, 'LN', 'C' || c, 'NM', '1', 'F', '{}', '{}', '[]', 1,
           now() - (c || ' minutes')::interval, now()
    FROM lab_orders o CROSS JOIN generate_series(1, 40) AS c
    """,
    "ANALYZE",
]


@pytest.fixture(scope="module")
def plan_session() -> Iterator[Session]:
    admin = admin_url()
    url = create_database(admin, prefix="pmfhirplan")
    engine = plan_engine(url)
    try:
        migrate(engine)
        with Session(engine) as session:
            for statement in [*FILL[:-1], *RESULTS]:
                session.execute(sa.text(statement), {"n": PATIENTS, "families": PATIENTS // 3})
            session.commit()
            yield session
    finally:
        engine.dispose()
        drop_database(admin, url)


@pytest.mark.parametrize("code", ["http://loinc.org|C7", "C7", "C7,C8"])
def test_observation_code_search_alone_uses_the_code_index(plan_session, code):
    params = ObservationSearchParams.model_validate({"code": code})
    where, sort = observation_query(params)
    stmt = ordered(sa.select(LabResult).where(*where), sort, params.page_size())
    compiled = stmt.compile(dialect=plan_session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    raw = plan_session.execute(sa.text(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar_one()
    steps = nodes((json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"])
    scans = [(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in steps if "Scan" in n["Node Type"]]
    assert not [s for s in scans if s[0] == "Seq Scan"], scans
    assert "ix_lab_results_code_created" in {s[2] for s in scans}, scans
