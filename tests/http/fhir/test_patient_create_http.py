"""POST /fhir/Patient, plain and conditional (If-None-Exist), and what a refused create leaves behind."""

import json
import uuid

from tests.conftest import auth
from tests.http.fhir.support import (
    FHIR_JSON,
    HOSTILE_HOST,
    audit_rows,
    fhir_base,
    fhir_ok,
    fhir_patient,
    outcome,
    patients_with_identifier,
)


def post(client, token, body, headers=None, query=""):
    return client.post(f"/fhir/Patient{query}", data=json.dumps(body),
                       headers={**auth(token), "Content-Type": FHIR_JSON, **(headers or {})})


def test_create_stores_the_patient_the_registry_reads_back(client, make_token):
    token = make_token("patients:write", "patients:read")
    body = fhir_patient(telecom=[{"system": "phone", "value": "+447700900123", "use": "mobile"},
                                 {"system": "email", "value": "kofi@example.org"}],
                        address=[{"line": ["10 Downing St"], "city": "London", "state": "LDN", "postalCode": "SW1A 2AA",
                                  "country": "GB"}],
                        communication=[{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-GB"}]},
                                        "preferred": True}],
                        identifier=[{"system": "urn:test:partner", "value": uuid.uuid4().hex,
                                     "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PT"}]}}],
                        id="client-chosen", meta={"versionId": "9"})
    resp = post(client, token, body, headers=HOSTILE_HOST)
    doc = fhir_ok(resp, 201)
    assert doc["id"] != "client-chosen" and doc["meta"]["versionId"] == "1" and resp.headers["ETag"] == 'W/"1"'
    # On PUBLIC_BASE_URL, never on the Host (or X-Forwarded-*) the request claimed.
    assert resp.headers["Location"] == f"{fhir_base()}/Patient/{doc['id']}/_history/1"  # versioned, as FHIR create answers
    stored = client.get(f"/patients/{doc['id']}", headers=auth(token)).get_json()
    assert stored["name"]["family"] == body["name"][0]["family"] and stored["birth_date"] == "1990-07-08"
    assert stored["sex"] == "male" and stored["phone"] == "+447700900123" and stored["email"] == "kofi@example.org"
    assert stored["address"]["postal_code"] == "SW1A 2AA" and stored["preferred_language"] == "en-GB"
    assert {"system": "urn:test:partner", "value": body["identifier"][0]["value"], "type": "PT"} in stored["identifiers"]
    assert len(audit_rows(doc["id"], "patient.create")) == 1


def test_conditional_create_returns_the_existing_patient(client, make_token):
    token = make_token("patients:write", "patients:read")
    body = fhir_patient()
    ident = body["identifier"][0]
    condition = {"If-None-Exist": f"identifier={ident['system']}|{ident['value']}"}
    created = fhir_ok(post(client, token, body, condition), 201)
    again = post(client, token, {**body, "name": [{"family": "Changed", "given": ["Other"]}]}, condition)
    existing = fhir_ok(again, 200)
    assert existing["id"] == created["id"] and existing["name"][0]["family"] == body["name"][0]["family"]
    assert again.headers["ETag"] == 'W/"1"'
    assert patients_with_identifier(ident["system"], ident["value"]) == [uuid.UUID(created["id"])]
    assert len(audit_rows(created["id"], "patient.read")) == 1


def test_conditional_create_with_a_url_encoded_condition_and_a_wrapped_system(client, make_token):
    """A LIS namespace (not a URI) is exposed as urn:patient-mgt:identifier-system:<name> and maps back."""
    token = make_token("patients:write")
    value = uuid.uuid4().hex
    system = "urn:patient-mgt:identifier-system:HOSP%20A"
    body = fhir_patient(identifier=[{"system": system, "value": value}])
    header = {"If-None-Exist": "identifier=" + system.replace(":", "%3A").replace("%20", "%2520") + "%7C" + value}
    created = fhir_ok(post(client, token, body, header), 201)
    assert patients_with_identifier("HOSP A", value) == [uuid.UUID(created["id"])]
    assert fhir_ok(post(client, token, body, header), 200)["id"] == created["id"]


def test_refused_creates_change_nothing(client, make_token):
    token = make_token("patients:write")
    cases = [
        ({"If-None-Exist": "identifier=urn:test:partner|not-in-the-body"}, {}, 422, "Patient.identifier"),
        ({"If-None-Exist": "family=Smith"}, {}, 400, None),
        ({"If-None-Exist": "identifier=nosystem"}, {}, 400, None),
        ({}, {"maritalStatus": {"text": "married"}}, 422, "Patient.maritalStatus"),
        ({}, {"name": [{"family": "A"}, {"family": "B"}]}, 422, "Patient.name"),
        ({}, {"birthDate": "1990"}, 422, "Patient.birthDate"),
        ({}, {"birthDate": "2990-01-01"}, 422, "Patient.birthDate"),
        ({}, {"gender": "robot"}, 422, "Patient.gender"),
        ({}, {"active": False}, 422, "Patient.active"),
        ({}, {"telecom": [{"system": "phone", "value": "555-0100"}]}, 422, "Patient.telecom[0].value"),
        ({}, {"telecom": [{"system": "phone", "value": "+14155550100"}, {"system": "phone", "value": "+14155550101"}]},
         422, "Patient.telecom[1]"),
        ({}, {"address": [{"city": "X", "state": "Y", "postalCode": "1", "country": "Spain"}]}, 422, "Patient.address[0].country"),
        ({}, {"identifier": [{"system": "urn:patient-mgt:mrn", "value": "10000001"}]}, 422, "Patient.identifier"),
        ({}, {"resourceType": "Observation"}, 422, "Patient.resourceType"),
    ]
    for headers, change, status, expression in cases:
        body = fhir_patient(**change)
        doc = outcome(post(client, token, body, headers), status)
        if expression:
            assert any(expression in e for i in doc["issue"] for e in i.get("expression", [])), (change, doc)
        for ident in body.get("identifier", []):
            assert patients_with_identifier(ident["system"], ident["value"]) == [], change


def test_body_errors(client, make_token):
    token = make_token("patients:write")
    outcome(client.post("/fhir/Patient", data="{not json", headers={**auth(token), "Content-Type": FHIR_JSON}), 400, "structure")
    outcome(client.post("/fhir/Patient", data="{}", headers={**auth(token), "Content-Type": "text/plain"}), 415)
    outcome(client.post("/fhir/Patient", data="[]", headers={**auth(token), "Content-Type": "application/json"}), 422)


def test_probable_duplicate_is_refused_unless_allowed(client, make_token):
    token = make_token("patients:write")
    first = fhir_ok(post(client, token, fhir_patient()), 201)
    twin = fhir_patient(family=first["name"][0]["family"])
    doc = outcome(post(client, token, twin), 409, "conflict")
    assert first["id"] in doc["issue"][0]["diagnostics"]
    assert patients_with_identifier(twin["identifier"][0]["system"], twin["identifier"][0]["value"]) == []
    fhir_ok(post(client, token, twin, query="?allow_duplicate=true"), 201)


def test_an_identifier_held_by_another_patient_is_a_409_duplicate(client, make_token):
    token = make_token("patients:write")
    first = fhir_ok(post(client, token, fhir_patient()), 201)
    shared = first["identifier"][-1]
    other = fhir_patient(identifier=[{"system": "urn:test:partner", "value": uuid.uuid4().hex}, shared])
    cond = {"If-None-Exist": f"identifier=urn:test:partner|{other['identifier'][0]['value']}"}
    doc = outcome(post(client, token, other, cond), 409, "duplicate")
    assert first["id"] in doc["issue"][0]["diagnostics"]
    assert patients_with_identifier("urn:test:partner", other["identifier"][0]["value"]) == []


def test_prefer_return_minimal(client, make_token):
    resp = post(client, make_token("patients:write"), fhir_patient(), {"Prefer": "return=minimal"})
    assert resp.status_code == 201 and resp.get_data() == b"" and resp.headers["Location"].endswith("/_history/1")
    assert "Content-Type" not in resp.headers  # no body, nothing to describe
    assert resp.headers["ETag"] == 'W/"1"'

