"""GET /fhir/Patient/{id} and GET /fhir/metadata over the api function (test client, real PostgreSQL)."""

import uuid

import shared.api.every_route  # noqa: F401  (registers every route; the api function loads them lazily)
from shared.http.routing import ROUTES
from tests.conftest import auth
from tests.http.fhir.support import HOSTILE_HOST, audit_rows, fhir_base, fhir_ok, outcome, rest_patient


def test_read_maps_every_registry_field_and_is_audited(client, admin_token, make_token):
    token = make_token("patients:read")
    p = rest_patient(client, admin_token, phone="+14155550199", email="Ana.Fhir@Example.org", preferred_language="es-MX",
                     sex="female", address={"line": ["1 Calle Mayor"], "city": "Madrid", "state": "MD",
                                            "postal_code": "28001", "country": "ES"})
    resp = client.get(f"/fhir/Patient/{p['id']}", headers=auth(token))
    doc = fhir_ok(resp)
    assert resp.headers["ETag"] == 'W/"1"' and doc["meta"]["versionId"] == "1"
    assert doc["id"] == p["id"] and doc["active"] is True and doc["gender"] == "female"
    assert doc["birthDate"] == "1981-02-03"
    assert doc["name"] == [{"use": "official", "family": p["name"]["family"], "given": ["Ana", "María"]}]
    mrn = next(i for i in doc["identifier"] if i["system"] == "urn:patient-mgt:mrn")
    assert mrn["value"] == p["mrn"] and mrn["type"]["coding"][0]["code"] == "MR"
    other = p["identifiers"][-1]
    assert {"system": "urn:test:hospital", "value": other["value"],
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PI",
                                 "display": "Patient internal identifier"}]}} in doc["identifier"]
    assert doc["telecom"] == [{"system": "phone", "value": "+14155550199"}, {"system": "email", "value": "ana.fhir@example.org"}]
    assert doc["address"] == [{"line": ["1 Calle Mayor"], "city": "Madrid", "state": "MD", "postalCode": "28001", "country": "ES"}]
    assert doc["communication"] == [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es-MX"}]}, "preferred": True}]
    assert "link" not in doc
    assert len(audit_rows(p["id"], "patient.read")) == 1


def test_merged_patient_is_inactive_and_replaced_by_the_survivor(client, admin_token):
    source = rest_patient(client, admin_token)
    target = rest_patient(client, admin_token)
    merged = client.post(f"/patients/{source['id']}/merge", json={"target_id": target["id"]}, headers=auth(admin_token))
    assert merged.status_code in (200, 201), merged.get_data(as_text=True)
    doc = fhir_ok(client.get(f"/fhir/Patient/{source['id']}", headers=auth(admin_token)))
    assert doc["active"] is False
    assert doc["link"] == [{"other": {"reference": f"Patient/{target['id']}"}, "type": "replaced-by"}]
    assert int(doc["meta"]["versionId"]) > 1


def test_unknown_and_foreign_ids_are_404_operation_outcomes(client, make_token):
    token = make_token("patients:read")
    outcome(client.get(f"/fhir/Patient/{uuid.uuid4()}", headers=auth(token)), 404, "not-found")
    outcome(client.get("/fhir/Patient/example-123", headers=auth(token)), 404, "not-found")
    outcome(client.get(f"/fhir/Patient/{uuid.uuid4()}/_history", headers=auth(token)), 404, "not-found")


def test_authentication_and_scope_errors_are_operation_outcomes(client, make_token):
    p_id = uuid.uuid4()
    resp = client.get(f"/fhir/Patient/{p_id}")
    outcome(resp, 401, "login")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    outcome(client.get(f"/fhir/Patient/{p_id}", headers=auth(make_token("lis:read"))), 403, "forbidden")
    outcome(client.post("/fhir/Patient", json={}, headers=auth(make_token("patients:read"))), 403, "forbidden")


def test_every_fhir_route_answers_errors_as_operation_outcome(client, make_token):
    """Generated from the route table: a FHIR route added later is covered too."""
    fhir_routes = [r for r in ROUTES if r.path.startswith("/fhir/")]
    assert {r.endpoint for r in fhir_routes} >= {"GET /fhir/metadata", "GET /fhir/Patient/<patient_id>", "GET /fhir/Patient",
                                                 "POST /fhir/Patient", "GET /fhir/Patient/<patient_id>/_history",
                                                 "GET /fhir/ServiceRequest", "GET /fhir/Observation"}
    wrong = make_token("audit:read")
    for r in fhir_routes:
        path = r.path.replace("<patient_id>", str(uuid.uuid4()))
        if r.scope is None:
            outcome(client.open(path, method=r.method, query_string={"unknown": "1"}), 400, "invalid")
            continue
        outcome(client.open(path, method=r.method), 401, "login")
        outcome(client.open(path, method=r.method, headers=auth(wrong)), 403, "forbidden")


def test_metadata_is_public_and_describes_the_configured_base_whatever_the_host(client):
    resp = client.get("/fhir/metadata", headers=HOSTILE_HOST)
    doc = fhir_ok(resp)
    assert doc["resourceType"] == "CapabilityStatement" and doc["fhirVersion"] == "4.0.1"
    assert doc["implementation"]["url"] == fhir_base()
    assert "evil.example" not in resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "public, max-age=300"  # the same public document for everyone
    outcome(client.get("/fhir/metadata?mode=terminology"), 400, "invalid")


def test_only_fhir_json_is_served(client, make_token):
    token = make_token("patients:read")
    outcome(client.get("/fhir/metadata?_format=xml"), 406, "not-supported")
    outcome(client.get(f"/fhir/Patient/{uuid.uuid4()}", headers={**auth(token), "Accept": "application/fhir+xml"}), 406)
    assert client.get("/fhir/metadata?_format=json").status_code == 200
    assert client.get("/fhir/metadata", headers={"Accept": "application/json+fhir, */*;q=0.1"}).status_code == 200
