"""Statement budgets of the patient hot paths (issue 15), counted, never timed.

Two counts per request, with the API key cached as in production, both in what pg8000's connections
write (the hot paths run on the driver pool without SQLAlchemy, so an engine event would miss them;
``bench.anatomy``'s counting, through ``tests.support.statements``): the statements run (a simple
query's by its text, transaction control apart; every Bind by the statement it binds) and the
network round trips (each write flushed to wait for the answer, so an implicit ``BEGIN`` or ``COMMIT``
of the driver counts too; pg8000's own unnamed extended-protocol statement takes three, a prepared or
pipelined one or a simple query one). GET /patients/{id} and search are one statement
each (the audit row in it); a registration is two in one round trip (the birth date's lock, then the
statement that writes everything, as one implicit transaction). A change that adds a statement or a
round trip to these paths fails here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import AuditEntry
from tests.conftest import auth
from tests.http.registry.support import patient_body
from tests.support import statements

BUDGET = {"read": 1, "search": 1, "register": 2}
# The read, the registration CTE and a search by name words are prepared; other searches are unnamed
# (planned for their values), pipelined.
ROUND_TRIPS = {"read": 1, "search": 1, "register": 1}


@contextmanager
def counting() -> Iterator[dict[str, int]]:
    """Statements and round trips as ``bench.anatomy`` counts them (``tests.support.statements``), but
    the round trip that prepares a statement: once per statement and connection, and the pool hands
    out any of its connections."""
    import pg8000.core  # noqa: PLC0415

    prepare = pg8000.core.CoreConnection.prepare_statement
    with statements.counting() as counts, pytest.MonkeyPatch.context() as patch:
        def prepared(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            counts["round_trips"] -= 1
            return prepare(self, *args, **kwargs)

        patch.setattr(pg8000.core.CoreConnection, "prepare_statement", prepared)
        yield counts
    del counts["on_the_pool"]


def audit_rows(action: str, request_id: str) -> list[tuple[str, list[uuid.UUID]]]:
    with unit_of_work() as uow:
        return [tuple(r) for r in uow.session.execute(
            sa.select(AuditEntry.outcome, AuditEntry.patient_ids)
            .where(AuditEntry.action == action, AuditEntry.request_id == request_id))]


def test_read_search_and_registration_stay_within_their_statement_budgets(client, make_token, key_cache_on):
    token = make_token("patients:read", "patients:write")
    body = patient_body()
    warm = client.post("/patients", json=patient_body(), headers=auth(token))  # caches the key and the SQL
    assert warm.status_code == 201

    with counting() as counts:
        created = client.post("/patients", json=body, headers={**auth(token), "X-Request-Id": "budget-post"})
    assert created.status_code == 201, created.get_data(as_text=True)
    assert counts == {"statements": BUDGET["register"], "round_trips": ROUND_TRIPS["register"]}
    pid = created.get_json()["id"]

    with counting() as counts:
        read = client.get(f"/patients/{pid}", headers={**auth(token), "X-Request-Id": "budget-get"})
    assert read.status_code == 200 and read.get_json() == created.get_json()
    assert counts == {"statements": BUDGET["read"], "round_trips": ROUND_TRIPS["read"]}

    with counting() as counts:
        found = client.get(f"/patients?family={body['name']['family']}",
                           headers={**auth(token), "X-Request-Id": "budget-search"})
    assert found.status_code == 200 and [p["id"] for p in found.get_json()["items"]] == [pid]
    assert counts == {"statements": BUDGET["search"], "round_trips": ROUND_TRIPS["search"]}

    # each request's audit row was written by its one statement, and committed
    assert audit_rows("patient.create", "budget-post") == [("success", [uuid.UUID(pid)])]
    assert audit_rows("patient.read", "budget-get") == [("success", [uuid.UUID(pid)])]
    assert audit_rows("patient.search", "budget-search") == [("success", [uuid.UUID(pid)])]


def test_a_search_page_after_a_cursor_is_still_one_statement(client, make_token, key_cache_on):
    token = make_token("patients:read", "patients:write")
    family = patient_body()["name"]["family"]
    for _ in range(3):
        assert client.post("/patients", json=patient_body(name={"family": family, "given": ["Ana"]}),
                           headers=auth(token), query_string={"allow_duplicate": "true"}).status_code == 201
    first = client.get(f"/patients?family={family}&limit=2", headers=auth(token)).get_json()
    with counting() as counts:
        second = client.get(f"/patients?family={family}&limit=2&cursor={first['next_cursor']}", headers=auth(token))
    assert second.status_code == 200 and len(second.get_json()["items"]) == 1
    assert {p["id"] for p in first["items"]}.isdisjoint(p["id"] for p in second.get_json()["items"])
    assert counts == {"statements": 1, "round_trips": ROUND_TRIPS["search"]}


def test_a_key_cache_miss_is_one_statement_and_one_round_trip(client, make_token, key_cache_on):
    from shared.auth import clear_key_cache  # noqa: PLC0415

    token = make_token("patients:read")
    assert client.get("/patients?name=nobody-here", headers=auth(token)).status_code == 200  # SQL compiled
    clear_key_cache()
    with counting() as counts:
        answered = client.get("/patients?name=nobody-here", headers=auth(token))
    assert answered.status_code == 200
    # the key lookup (no BEGIN/COMMIT: autocommit) and the search
    assert counts["statements"] == 1 + BUDGET["search"]
    # the lookup is prepared per connection: one Bind/Execute/Sync round trip, no BEGIN or COMMIT
    assert counts["round_trips"] == 1 + ROUND_TRIPS["search"]
    with counting() as counts:
        assert client.get("/patients?name=nobody-here", headers=auth(token)).status_code == 200  # cached now
    assert counts == {"statements": BUDGET["search"], "round_trips": ROUND_TRIPS["search"]}
