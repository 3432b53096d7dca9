"""The api's Flask app matches each request to the route table's rule itself (``routing.match_in_flask``),
so a request is matched once; whatever Flask's match leaves to functions-framework's catch-all is
matched by ``routing.match`` as before (404, 405). Both must agree on every path."""

from __future__ import annotations

import re
import uuid

import pytest
from werkzeug.exceptions import HTTPException

from shared.api.index import ROUTE_MODULES
from shared.http import routing

PID = uuid.uuid4()


def _example(path: str) -> str:
    path = re.sub(r"<uuid:[a-z_]+>", str(PID), path)
    return re.sub(r"<[a-z_]+>", "abc", path)


def _ours(method: str, path: str) -> object:
    try:
        return routing.match(method, path)
    except HTTPException as exc:
        return exc.code


def _flask(api_app, method: str, path: str) -> object:
    rule, args = api_app.url_map.bind("localhost").match(path, method, return_rule=True)
    return (rule.endpoint, args) if rule.endpoint in ROUTE_MODULES else "catch-all"


@pytest.mark.parametrize("endpoint", sorted(ROUTE_MODULES))
def test_flask_matches_every_route_of_the_table_to_its_rule(api_app, endpoint):
    method, template = endpoint.split(" ", 1)
    path = _example(template)
    for candidate in (path, path + "/"):
        assert _flask(api_app, method, candidate) == _ours(method, candidate)
        assert _flask(api_app, method, candidate)[0] == endpoint  # type: ignore[index]


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "POST", "OPTIONS", "DELETE"])
@pytest.mark.parametrize("path", ["/patients/{pid}", "/patients/not-a-uuid", "/patients//{pid}", "/patients/{pid}/x",
                                  "/nope", "/fhir/nope", "/PATIENTS/{pid}", "/healthz/", "/patients/{pid}/history/abc"])
def test_what_flask_leaves_to_the_catch_all_is_what_the_table_refuses_or_matches_alike(api_app, method, path):
    path = path.format(pid=PID)
    flask_result, ours = _flask(api_app, method, path), _ours(method, path)
    if flask_result == "catch-all":
        assert ours in (404, 405)
    else:
        assert flask_result == ours


def test_a_get_by_id_is_answered_through_flasks_match(client, api_app, monkeypatch):
    def refused(*_args: object) -> None:
        raise AssertionError("matched a second time")

    monkeypatch.setattr("shared.http.app.match", refused, raising=False)
    monkeypatch.setattr(routing, "match", refused)
    response = client.get(f"/patients/{PID}")
    assert response.status_code == 401  # the route's own answer (no token): the route was found without match
    assert response.content_type == "application/problem+json"
