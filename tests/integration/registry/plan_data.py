"""Synthetic patients for query-plan checks: a whole registry built with set-based SQL (names,
tokens, identifiers, contact data, a share inactive or merged), then ANALYZEd.

Used by test_search_plans.py (a few thousand rows in a throwaway database) and by
``python -m tests.integration.registry.plan_data N`` to print the plans at registry scale for
docs/api.md.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.migrate import migrate
from shared.schemas.search import PatientSearchQuery
from shared.services.search import build_search

FILL = [
    """
    INSERT INTO patients (id, mrn, status, family, given, prefix, suffix, family_norm, first_given_norm, birth_date,
                          sex, phone, email, preferred_language, timezone, comm_email, comm_sms, source, version,
                          created_at, updated_at)
    SELECT gen_random_uuid(), (90000000 + i)::text, CASE WHEN mod(i, 40) = 0 THEN 'inactive' ELSE 'active' END,
           'Fam' || mod(i, :families), ARRAY['Giv' || mod(i, 700)], '{}', '{}', 'fam' || mod(i, :families),
           'giv' || mod(i, 700), DATE '1930-01-01' + mod(i, 30000), 'unknown', '+1415' || lpad(i::text, 8, '0'),
           'p' || i || '@example.org', 'en', 'UTC', false, false, 'api', 1, now(), now()
    FROM generate_series(1, :n) AS i
    """,
    # A few per cent merged into the first patient (merged_into set, as the check constraint requires).
    """
    UPDATE patients p SET status = 'merged', merged_into = t.id
    FROM (SELECT id FROM patients ORDER BY mrn LIMIT 1) t
    WHERE p.id <> t.id AND mod(p.mrn::bigint, 33) = 0
    """,
    "INSERT INTO patient_name_tokens (patient_id, kind, token) SELECT id, 'family', family_norm FROM patients",
    "INSERT INTO patient_name_tokens (patient_id, kind, token) SELECT id, 'given', first_given_norm FROM patients",
    """
    INSERT INTO patient_identifiers (id, patient_id, system, value, type, created_at)
    SELECT gen_random_uuid(), id, 'urn:patient-mgt:mrn', mrn, 'MR', now() FROM patients
    """,
    """
    INSERT INTO patient_identifiers (id, patient_id, system, value, type, created_at)
    SELECT gen_random_uuid(), id, 'urn:oid:2.16.840.1.113883.4.1', 'SSN' || mrn, 'SS', now() FROM patients
    """,
    "ANALYZE",
]

# (label, search parameters, indexes of which one must answer it)
NAME_INDEX = ("ix_patient_name_tokens_page",)
IDENTIFIER_INDEXES = ("uq_patient_identifiers_system_value", "ix_patient_identifiers_value")
CASES: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("no filter (first page)", {}, ("ix_patients_family_norm_id",)),
    ("status=merged", {"status": "merged"}, ("ix_patients_status_family_norm_id",)),
    ("name=fam1234", {"name": "fam1234"}, NAME_INDEX),
    ("name=fam1234 giv34", {"name": "fam1234 giv34"}, NAME_INDEX),
    ("family=fam4321", {"family": "fam4321"}, NAME_INDEX),
    ("given=giv345", {"given": "giv345"}, NAME_INDEX),
    ("birth_date=1950-06-01", {"birth_date": "1950-06-01"},
     ("ix_patients_dup_name", "ix_patients_birth_date_phone", "ix_patients_birth_date_email")),
    ("identifier=system|value", {"identifier": "urn:oid:2.16.840.1.113883.4.1|SSN90001234"}, IDENTIFIER_INDEXES),
    ("identifier=value", {"identifier": "SSN90001234"}, IDENTIFIER_INDEXES),
    ("mrn=90001234", {"mrn": "90001234"}, IDENTIFIER_INDEXES),
    ("phone=+141500001234", {"phone": "+141500001234"}, ("ix_patients_phone",)),
    ("email=p1234@example.org", {"email": "p1234@example.org"}, ("ix_patients_email",)),
]
# Broad prefixes: shown in docs/api.md at registry scale (on a few thousand rows a sequential scan
# is the cheaper plan for them, so the test leaves them out).
BROAD_CASES: list[tuple[str, dict[str, Any]]] = [
    ("name=fam12 (broad prefix)", {"name": "fam12"}),
    ("name=fam12 giv3 (two broad prefixes)", {"name": "fam12 giv3"}),
    ("name=f (one letter: every synthetic family matches)", {"name": "f"}),
]


def plan_engine(url: str) -> sa.Engine:
    """No socket or statement timeout: filling a million rows takes minutes."""
    return sa.create_engine(url, pool_size=1, connect_args={"timeout": None})


def fill(session: Session, n: int) -> None:
    for statement in FILL:
        session.execute(sa.text(statement), {"n": n, "families": max(n // 3, 1)})
    session.commit()


def plan(session: Session, params: dict[str, Any], *, analyze: bool = False) -> dict[str, Any]:
    """EXPLAIN (FORMAT JSON) of the exact statement the search service runs."""
    q = PatientSearchQuery.model_construct(**params)
    compiled = build_search(q).compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    raw = session.execute(sa.text(f"EXPLAIN ({options}) {compiled}")).scalar_one()
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    for child in node.get("Plans", []):
        out += nodes(child)
    return out


def text_plan(session: Session, params: dict[str, Any]) -> str:
    q = PatientSearchQuery.model_construct(**params)
    compiled = build_search(q).compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    rows = session.execute(sa.text(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {compiled}")).scalars()
    return "\n".join(rows)


def main(n: int) -> None:  # pragma: no cover - a tool for the docs
    from tests.support.database import admin_url, create_database, drop_database  # noqa: PLC0415

    admin = admin_url()
    url = create_database(admin, prefix="pmplan")
    engine = plan_engine(url)
    try:
        migrate(engine)
        with Session(engine) as session:
            fill(session, n)
            cases = [(label, params) for label, params, _ in CASES] + BROAD_CASES
            for label, params in cases:
                print(f"### {label}\n```\n{text_plan(session, params)}\n```\n")
    finally:
        engine.dispose()
        drop_database(admin, url)


if __name__ == "__main__":  # pragma: no cover
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
