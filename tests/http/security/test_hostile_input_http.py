"""Values no route can store are refused at the boundary with a precise 4xx, on every route, and
never reach the database driver (where they failed mid-statement and poisoned the connection).

Query parameters: NUL, encoded surrogates and other invalid UTF-8, instants outside the calendar in
UTC, integers beyond bigint. JSON bodies: nesting beyond the limit (and beyond the parser's own
recursion limit) and NUL/surrogates in any string, on every route that takes a JSON body, FHIR
included. After each refusal the next valid request on the same process still succeeds.
"""

from __future__ import annotations

import json
import random

import pytest

import shared.api.every_route  # noqa: F401  (registers every route; the api function loads them lazily)
from shared.http.inputs import MAX_JSON_DEPTH
from shared.http.routing import ROUTES, Route
from tests.conftest import auth
from tests.http.registry.support import assert_problem, patient_body
from tests.http.security.test_route_scopes import build_path

FHIR = "application/fhir+json"
BODY_ROUTES = [r for r in ROUTES if r.body is not None]


@pytest.fixture()
def patient(client, admin_token) -> dict:
    resp = client.post("/patients?allow_duplicate=true", json=patient_body(), headers=auth(admin_token))
    assert resp.status_code == 201
    return resp.get_json()


def still_serving(client, token: str, patient: dict) -> None:
    """A valid read right after: the refusal left nothing broken behind."""
    resp = client.get(f"/patients/{patient['id']}", headers=auth(token))
    assert resp.status_code == 200 and resp.get_json()["id"] == patient["id"]


def _errors(resp) -> list[dict]:
    doc = resp.get_json()
    if resp.mimetype == FHIR:
        assert doc["resourceType"] == "OperationOutcome"
        return [{"field": i.get("expression", [i.get("diagnostics", "")])[0]} for i in doc["issue"][1:]]
    return doc.get("errors") or []


@pytest.mark.parametrize("since", [
    "0001-01-01T00:00:00%2B14:00", "0001-01-01T13:59:59%2B14:00", "9999-12-31T23:59:59-14:00",
    "9999-12-31T10:00:00-14:00",
])
def test_an_instant_outside_the_calendar_in_utc_is_a_422_naming_the_parameter(client, admin_token, patient, since):
    doc = assert_problem(client.get(f"/lis/messages?since={since}", headers=auth(admin_token)), 422)
    assert [(e["in"], e["field"]) for e in doc["errors"]] == [("query", "since")]
    assert "0001-01-01T00:00:00Z" in doc["errors"][0]["message"]
    still_serving(client, admin_token, patient)


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00-14:00", "0001-01-01T14:00:00%2B14:00", "9999-12-31T23:59:59%2B14:00",
                                   "9999-12-31T09:59:59-14:00"])
def test_an_instant_at_the_calendar_edge_is_answered(client, admin_token, since):
    resp = client.get(f"/lis/messages?since={since}", headers=auth(admin_token))
    assert resp.status_code == 200, resp.get_data(as_text=True)


@pytest.mark.parametrize(("path", "field"), [
    ("/audit?action=%00", "action"), ("/audit?action=a%00b", "action"), ("/audit?action=%ED%A0%80", "action"),
    ("/events/dead-letters?type=%00", "type"), ("/patients?name=x%00", "name"), ("/patients?identifier=a%7C%00", "identifier"),
    ("/lis/messages?type=ORU%00", "type"), ("/lis/messages?cursor=%FF", "cursor"), ("/jobs/runs?job=%00", "job"),
])
def test_nul_or_invalid_utf8_in_a_query_parameter_is_a_422_naming_it(client, admin_token, patient, path, field):
    doc = assert_problem(client.get(path, headers=auth(admin_token)), 422)
    assert [e["field"] for e in doc["errors"]] == [field]
    still_serving(client, admin_token, patient)


@pytest.mark.parametrize(("path", "field"), [
    ("/audit?limit=99999999999999999999999", "limit"), ("/audit?before=9223372036854775808", "before"),
    ("/audit?before=-1", "before"), ("/patients?limit=1" + "0" * 5000, "limit"),
    ("/events/dead-letters?before=99999999999999999999", "before"),
    (f"/patients/{'0' * 8}-0000-4000-8000-{'0' * 12}/notifications?before=9223372036854775808", "before"),
])
def test_an_integer_beyond_bigint_is_a_422_naming_it(client, admin_token, patient, path, field):
    doc = assert_problem(client.get(path, headers=auth(admin_token)), 422)
    assert [e["field"] for e in doc["errors"]] == [field]
    still_serving(client, admin_token, patient)


def test_fhir_search_parameters_are_refused_with_a_400_outcome(client, admin_token, patient):
    for query in ("name=%00", "_count=99999999999999999999999", "family=%ED%A0%80", "identifier=%00%7Cx"):
        resp = client.get(f"/fhir/Patient?{query}", headers=auth(admin_token))
        assert resp.status_code == 400 and resp.mimetype == FHIR, query
        assert resp.get_json()["resourceType"] == "OperationOutcome"
    still_serving(client, admin_token, patient)


def test_an_if_match_version_beyond_any_version_is_refused_not_sent(client, admin_token, patient):
    resp = client.open(f"/patients/{patient['id']}", method="DELETE",
                       headers={**auth(admin_token), "If-Match": 'W/"' + "9" * 40 + '"'})
    assert_problem(resp, 412)
    still_serving(client, admin_token, patient)


def _send(client, route: Route, token: str, body: bytes, patient: dict):
    path = build_path(route, random.Random(route.endpoint)).replace("<patient>", patient["id"])
    headers = {**auth(token), "Content-Type": route.body_content_type}
    headers.update({h: 'W/"1"' for h in route.headers_in if h.lower().startswith("if-")})
    return client.open(path, method=route.method, data=body, headers=headers)


def _nested(depth: int) -> bytes:
    return (b'{"a":' * depth) + b"1" + (b"}" * depth)


@pytest.mark.parametrize("route", BODY_ROUTES, ids=[r.endpoint for r in BODY_ROUTES])
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 50_000])
def test_a_json_body_nested_too_deep_is_a_400_on_every_json_route(client, admin_token, patient, route, depth):
    resp = _send(client, route, admin_token, _nested(depth), patient)
    assert resp.status_code == 400, resp.get_data(as_text=True)[:300]
    if resp.mimetype == FHIR:
        issue = resp.get_json()["issue"][0]
        assert issue["code"] == "structure" and issue["details"]["coding"][0]["code"] == "invalid-json"
    else:
        assert assert_problem(resp, 400)["type"].endswith("/invalid-json")
    still_serving(client, admin_token, patient)


@pytest.mark.parametrize("route", BODY_ROUTES, ids=[r.endpoint for r in BODY_ROUTES])
@pytest.mark.parametrize("text", ["\u0000", "a\ud800", "\udc00z"])
def test_nul_or_a_lone_surrogate_in_a_body_is_a_422_on_every_json_route(client, admin_token, patient, route, text):
    body = json.dumps({"notes": {"deep": ["fine", text]}}).encode()  # json.dumps writes \u0000 and \ud800 escapes
    resp = _send(client, route, admin_token, body, patient)
    assert resp.status_code == 422, resp.get_data(as_text=True)[:300]
    assert [e["field"] for e in _errors(resp)] == ["notes.deep.1"]
    still_serving(client, admin_token, patient)
