"""Every route in the route table refuses a request without a token (401) and a token without
its scope (403).

The cases are generated from ``shared.http.routing.ROUTES`` (what the api function dispatches on),
so a route added later is covered without touching this file; a new *public* route has to be
added to ``PUBLIC`` on purpose.
"""

from __future__ import annotations

import random
import re
import string
import uuid

import pytest

import shared.api.every_route  # noqa: F401  (registers every route; the api function loads them lazily)
from shared.auth import SCOPES
from shared.http.routing import ROUTES, Route, url_map
from tests.conftest import auth

PROBLEM = "application/problem+json"
FHIR = "application/fhir+json"  # FHIR routes answer errors as OperationOutcome
# Routes that answer without a token. Adding one is a decision: add it here, with a reason.
PUBLIC = {
    "GET /healthz": "liveness probe",
    "GET /readyz": "readiness probe",
    "GET /openapi.json": "the API description is not patient data",
    "GET /fhir/metadata": "FHIR requires the CapabilityStatement to be readable before authenticating",
}
_PARAM = re.compile(r"<(?:(?P<converter>[a-zA-Z_]\w*)(?:\((?P<args>[^)]*)\))?:)?(?P<name>[a-zA-Z_]\w*)>")


def _value(converter: str | None, rng: random.Random) -> str:
    if converter == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if converter == "int":
        return str(rng.randint(1, 10**9))
    if converter == "float":
        return f"{rng.uniform(1, 1000):.3f}"
    # default / string / path / any: a plain token that every string converter accepts
    return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(12))


def build_path(route: Route, rng: random.Random) -> str:
    """The route's path with each placeholder replaced by a random value its converter accepts."""
    return _PARAM.sub(lambda m: _value(m.group("converter"), rng), route.path)


def _request_kwargs(route: Route) -> dict:
    kwargs: dict = {"headers": {}}
    if route.method in ("POST", "PUT", "PATCH"):
        kwargs["data"] = "{}"
        kwargs["content_type"] = route.body_content_type
    for header in route.headers_in:
        kwargs["headers"][header] = 'W/"1"' if header.lower().startswith("if-") else "x"
    return kwargs


def _protected() -> list[Route]:
    return [r for r in ROUTES if r.scope is not None]


def _ids(routes: list[Route]) -> list[str]:
    return [r.endpoint for r in routes]


def _send(client, route: Route, path: str, extra_headers: dict[str, str] | None = None):
    kwargs = _request_kwargs(route)
    kwargs["headers"].update(extra_headers or {})
    return client.open(path, method=route.method, **kwargs)


def _assert_refused(resp, status: int) -> tuple[str, str]:
    """The status, and an error document in the route's error format: (code, detail)."""
    assert resp.status_code == status, resp.get_data(as_text=True)[:300]
    doc = resp.get_json()
    if resp.mimetype == FHIR:
        assert doc["resourceType"] == "OperationOutcome"
        issue = doc["issue"][0]
        return issue["details"]["coding"][0]["code"], issue.get("diagnostics", "")
    assert resp.mimetype == PROBLEM
    assert doc["status"] == status
    return doc["type"].rsplit("/", 1)[-1], doc["detail"]


def test_the_route_table_is_loaded_and_every_public_route_is_deliberate():
    assert len(_protected()) >= 2
    public = {r.endpoint for r in ROUTES if r.scope is None}
    assert public <= set(PUBLIC), f"new public route(s), add them to PUBLIC deliberately: {sorted(public - set(PUBLIC))}"


@pytest.mark.parametrize("route", _protected(), ids=_ids(_protected()))
def test_route_scope_is_a_grantable_scope(route: Route):
    assert route.scope in SCOPES


@pytest.mark.parametrize("route", _protected(), ids=_ids(_protected()))
def test_generated_request_reaches_this_route(route: Route):
    """The generated path dispatches to the route under test, not to a neighbour."""
    path = build_path(route, random.Random(route.endpoint))
    endpoint, _args = url_map().bind("localhost").match(path, method=route.method)
    assert endpoint == route.endpoint


@pytest.mark.parametrize("route", _protected(), ids=_ids(_protected()))
def test_route_without_token_is_401(client, route: Route):
    path = build_path(route, random.Random(route.endpoint))
    for headers in ({}, {"Authorization": "Bearer pmk_" + "x" * 43}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        code, _detail = _assert_refused(_send(client, route, path, headers), 401)
        assert code == "unauthorized"


@pytest.mark.parametrize("route", _protected(), ids=_ids(_protected()))
def test_route_with_token_lacking_its_scope_is_403(client, make_token, route: Route):
    others = sorted(SCOPES - {route.scope, "admin"})
    assert others, "a token lacking the scope needs at least one other scope"
    token = make_token(*others)
    path = build_path(route, random.Random(route.endpoint))
    code, detail = _assert_refused(_send(client, route, path, auth(token)), 403)
    assert code == "forbidden" and route.scope in detail


@pytest.mark.parametrize("route", _protected(), ids=_ids(_protected()))
def test_route_with_its_scope_is_not_refused(client, make_token, route: Route):
    """The positive control: the same request with the route's scope passes authorisation (so the
    401/403 above come from the scope check, not from a broken request)."""
    token = make_token(route.scope)
    path = build_path(route, random.Random(route.endpoint))
    resp = _send(client, route, path, auth(token))
    assert resp.status_code not in (401, 403, 500), resp.get_data(as_text=True)[:300]
