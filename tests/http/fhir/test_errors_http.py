"""Every error under /fhir is an OperationOutcome (application/fhir+json), matched route or not;
Accept and Content-Type with fhirVersion/charset parameters are understood."""

import uuid

from tests.conftest import auth
from tests.http.fhir.support import fhir_ok, outcome


def test_unknown_type_and_route_are_outcomes_not_problems(client, make_token):
    token = make_token("patients:read")
    outcome(client.get("/fhir/Foo", headers=auth(token)), 404, "not-found")
    outcome(client.get("/fhir/Patient/a/b/c/d", headers=auth(token)), 404, "not-found")
    outcome(client.get("/fhir"), 404, "not-found")
    # a path that only starts like /fhir is the REST API's: problem+json
    assert client.get("/fhirx/Patient").mimetype == "application/problem+json"


def test_wrong_method_is_a_405_outcome_with_allow(client, make_token):
    token = make_token("patients:write")
    resp = client.delete(f"/fhir/Patient/{uuid.uuid4()}", headers=auth(token))
    outcome(resp, 405, "not-supported")
    assert "GET" in resp.headers["Allow"]
    outcome(client.put("/fhir/metadata", headers=auth(token)), 405, "not-supported")


def test_authentication_and_scope_errors_are_outcomes(client, make_token):
    resp = client.get(f"/fhir/Patient/{uuid.uuid4()}")
    outcome(resp, 401, "login")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    outcome(client.get("/fhir/Patient", headers=auth(make_token("lis:read"))), 403, "forbidden")
    outcome(client.post("/fhir/Patient", json={}, headers=auth(make_token("patients:read"))), 403, "forbidden")


def test_body_too_large_and_wrong_media_type_are_outcomes(client, make_token):
    token = make_token("patients:write")
    big = b'{"resourceType": "Patient", "x": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    outcome(client.post("/fhir/Patient", data=big, headers={**auth(token), "Content-Type": "application/fhir+json"}),
            413, "too-costly")
    outcome(client.post("/fhir/Patient", data="{}", headers={**auth(token), "Content-Type": "text/plain"}), 415)
    for ctype in ("application/fhir+json; fhirVersion=3.0", "application/fhir+json; charset=latin-1"):
        outcome(client.post("/fhir/Patient", data="{}", headers={**auth(token), "Content-Type": ctype}), 415,
                "not-supported")


def test_accept_and_content_type_parameters(client, make_token):
    token = make_token("patients:read", "patients:write")
    for accept in ("application/fhir+json; fhirVersion=4.0", "application/fhir+json;charset=utf-8",
                   "application/fhir+json; fhirVersion=4.0.1; charset=UTF-8", "application/json",
                   "application/xml;q=0.9, */*;q=0.1", "application/json+fhir"):
        assert fhir_ok(client.get("/fhir/metadata", headers={"Accept": accept}))["resourceType"] == "CapabilityStatement"
    for accept in ("application/fhir+json; fhirVersion=3.0", "application/fhir+json; charset=iso-8859-1",
                   "application/fhir+xml", "application/fhir+json;q=0"):
        outcome(client.get("/fhir/metadata", headers={"Accept": accept}), 406, "not-supported")
    body = ('{"resourceType": "Patient", "name": [{"family": "Okafor%s"}], "birthDate": "1990-01-02", '
            '"identifier": [{"system": "urn:test:partner", "value": "%s"}]}') % (uuid.uuid4().hex[:6], uuid.uuid4().hex)
    created = client.post("/fhir/Patient?allow_duplicate=true", data=body, headers={
        **auth(token), "Content-Type": "application/fhir+json; fhirVersion=4.0; charset=utf-8"})
    assert fhir_ok(created, 201)["resourceType"] == "Patient"
