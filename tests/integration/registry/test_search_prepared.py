"""Which searches run prepared: a search by name words alone runs as a statement prepared on the
pool's connection (``services.search.runs_prepared``; its plans: test_search_plans.py); every other
shape runs unnamed, planned for its values. A connection keeps at most ``wire.MAX_PREPARED_SHAPED``
search statements, apart from its fixed texts; past that a new shape runs unprepared, with the
same answers and audit rows.

Requests made one after another on a fresh pool use one connection (the pool lends the connection
used last), so ``pg_prepared_statements`` read on it shows what the searches before prepared.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from shared.auth import SYSTEM_CLI
from shared.db import dispose_engine, driver_connection, unit_of_work, wire
from shared.models import AuditEntry
from shared.schemas.search import PatientSearchQuery
from shared.services import cursor, patient_sql
from shared.services.search import CURSOR_KIND, runs_prepared, search_page, search_sql, search_values
from tests.integration.registry.factories import body, unique_family

SEARCHES = "SELECT statement FROM pg_prepared_statements WHERE position('patient.search' in statement) > 0"


@pytest.fixture()
def fresh_pool(database_url: str) -> Iterator[None]:
    dispose_engine()  # a new connection, nothing prepared on it yet
    yield
    dispose_engine()


def prepared(sql: str) -> list[str]:
    with driver_connection() as con:
        return [row[0] for row in wire.rows(con, sql)]


def text(params: dict[str, Any]) -> str:
    """The text PostgreSQL holds for the statement of this query's shape."""
    shape, _ = search_values(PatientSearchQuery.model_validate(params), uuid.uuid4() if "cursor" in params else None)
    return wire.dollar_params(search_sql(shape)[0])


def found(params: dict[str, Any]) -> list[str]:
    page = search_page(SYSTEM_CLI, PatientSearchQuery.model_validate(params))
    return [d["id"] for d in json.loads(page)["items"]]


def searches_of(patient_id: str) -> int:
    with unit_of_work() as uow:
        return uow.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "patient.search", AuditEntry.patient_ids.contains([uuid.UUID(patient_id)])))


def test_only_a_search_by_name_words_runs_prepared(fresh_pool):
    family = unique_family()
    patient = patient_sql.register_patient(SYSTEM_CLI, body(name={"family": family, "given": ["Ana"]},
                                                            phone="+14155550123"))
    by_name = {"name": f"{family} ana"}
    others = [{"name": family, "birth_date": "1981-03-04"}, {"phone": "+14155550123"}, {"mrn": patient["mrn"]},
              {"family": family, "identifier": patient["mrn"]}]
    assert runs_prepared(search_values(PatientSearchQuery.model_validate(by_name))[0])
    for params in [by_name, *others] * 3:
        assert patient["id"] in found(params), params
    assert prepared(SEARCHES) == [text(by_name)]
    assert searches_of(patient["id"]) == 15  # one audit row per search, prepared or not


def test_a_connection_prepares_at_most_max_prepared_shaped_searches_and_keeps_its_fixed_texts(fresh_pool):
    """More name-only shapes (words, statuses, a cursor or not) than either cap: the first
    MAX_PREPARED_SHAPED are prepared, the rest run unprepared with the same answers, and a fixed text
    (the read) is still prepared after them: the shapes did not take the fixed texts' places."""
    family = unique_family()
    patient = patient_sql.register_patient(SYSTEM_CLI, body(name={"family": family,
                                                                  "given": ["Anna", "Bella", "Cora", "Dora"]}))
    words = [family, "anna", "bella", "cora", "dora"]
    statuses = [",".join(c) for k in (1, 2, 3) for c in itertools.combinations(("active", "inactive", "merged"), k)]
    after = cursor.encode(CURSOR_KIND, uuid.UUID(patient["id"]))
    queries = [{"name": " ".join(words[:n]), "status": status, **more}
               for more in ({}, {"cursor": after}) for n in range(1, len(words) + 1) for status in statuses]
    assert len({text(q) for q in queries}) == len(queries) > max(wire.MAX_PREPARED, wire.MAX_PREPARED_SHAPED)
    for q in queries * 2:
        shown = "active" in q["status"].split(",") and "cursor" not in q
        assert found(q) == ([patient["id"]] if shown else []), q
    assert sorted(prepared(SEARCHES)) == sorted(text(q) for q in queries[:wire.MAX_PREPARED_SHAPED])
    assert searches_of(patient["id"]) == 2 * len(words) * 4  # the four status sets with "active", twice

    assert json.loads(patient_sql.read_patient(SYSTEM_CLI, uuid.UUID(patient["id"])).json)["id"] == patient["id"]
    assert wire.dollar_params(patient_sql._READ) in prepared("SELECT statement FROM pg_prepared_statements")


def test_a_search_whose_prepared_statement_is_gone_is_prepared_again(fresh_pool):
    """The server dropped the statement (DEALLOCATE ALL, as after a DISCARD ALL): that search fails
    with the server's error, the connection stays in step, and the next search prepares it again."""
    family = unique_family()
    patient = patient_sql.register_patient(SYSTEM_CLI, body(name={"family": family, "given": ["Ana"]}))
    by_name = {"family": family}
    assert found(by_name) == [patient["id"]]
    with driver_connection() as con:
        wire.simple(con, "DEALLOCATE ALL")
    with pytest.raises(Exception, match="26000"):  # noqa: PT011 — pg8000's ProgrammingError
        found(by_name)
    assert found(by_name) == [patient["id"]]
    assert prepared(SEARCHES) == [text(by_name)]
