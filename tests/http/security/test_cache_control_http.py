"""Cache-Control: no-store on every api response (success or error, FHIR included), except the
successful answers of the two public documents, which hold no patient data."""

from __future__ import annotations

import json
import random

import pytest

import shared.api.every_route  # noqa: F401  (registers every route; the api function loads them lazily)
from shared.http.routing import NO_STORE, PUBLIC_DOCUMENT, ROUTES, Route
from tests.conftest import auth
from tests.http.registry.support import patient_body
from tests.http.security.test_route_scopes import build_path

PUBLIC_DOCUMENTS = {"GET /openapi.json", "GET /fhir/metadata"}


def test_only_the_public_documents_may_be_cached():
    cacheable = {r.endpoint for r in ROUTES if r.cache_control != NO_STORE}
    assert cacheable == PUBLIC_DOCUMENTS
    assert all(r.scope is None for r in ROUTES if r.endpoint in cacheable)


@pytest.mark.parametrize("route", ROUTES, ids=[r.endpoint for r in ROUTES])
def test_every_route_answers_no_store_unless_public_and_successful(client, admin_token, route: Route):
    """Whatever the route answers to a generated request (2xx, 404, 422…), and without a token."""
    path = build_path(route, random.Random(route.endpoint))
    kwargs = {"data": "{}", "content_type": route.body_content_type} if route.method in ("POST", "PATCH", "PUT") else {}
    for headers in (auth(admin_token), {}):
        resp = client.open(path, method=route.method, headers=headers, **kwargs)
        public_success = route.endpoint in PUBLIC_DOCUMENTS and resp.status_code < 400
        assert resp.headers.get("Cache-Control") == (PUBLIC_DOCUMENT if public_success else NO_STORE), \
            (resp.status_code, resp.headers.get("Cache-Control"))


def test_responses_with_patient_data_are_no_store(client, admin_token):
    created = client.post("/patients?allow_duplicate=true", json=patient_body(), headers=auth(admin_token))
    pid = created.get_json()["id"]
    responses = [
        created,
        client.get(f"/patients/{pid}", headers=auth(admin_token)),
        client.get(f"/patients?family={created.get_json()['name']['family']}", headers=auth(admin_token)),
        client.patch(f"/patients/{pid}", data=json.dumps({"sex": "female"}),
                     headers={**auth(admin_token), "Content-Type": "application/merge-patch+json", "If-Match": 'W/"1"'}),
        client.get(f"/patients/{pid}/versions", headers=auth(admin_token)),
        client.get(f"/fhir/Patient/{pid}", headers=auth(admin_token)),
        client.get(f"/fhir/Patient?_id={pid}&_sort=gender", headers=auth(admin_token)),  # a 400 OperationOutcome
        client.get(f"/audit?patient_id={pid}", headers=auth(admin_token)),
        client.get("/no/such/route"),
    ]
    assert [r.status_code for r in responses] == [201, 200, 200, 200, 200, 200, 400, 200, 404]
    assert [r.headers.get("Cache-Control") for r in responses] == [NO_STORE] * len(responses)


def test_the_public_documents_are_cacheable_only_when_they_succeed(client):
    assert client.get("/openapi.json").headers["Cache-Control"] == PUBLIC_DOCUMENT
    assert client.get("/fhir/metadata").headers["Cache-Control"] == PUBLIC_DOCUMENT
    refused = client.get("/fhir/metadata?_format=xml")
    assert refused.status_code == 406 and refused.headers["Cache-Control"] == NO_STORE
