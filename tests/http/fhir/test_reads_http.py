"""read of ServiceRequest and Observation (so basedOn resolves), vread of Patient versions."""

import uuid

from tests.conftest import auth
from tests.http.fhir.support import add_order, audit_rows, fhir_ok, outcome, rest_patient

GLUCOSE = {"code_system": "LN", "code": "2345-7", "code_display": "Glucose", "value_type": "NM", "value": "5.1",
           "units": "mmol/L", "status": "F"}


def test_observation_and_its_based_on_service_request_are_readable(client, admin_token, make_token):
    token = make_token("patients:read")
    p = rest_patient(client, admin_token)
    add_order(p["id"], results=[GLUCOSE])
    found = fhir_ok(client.get(f"/fhir/Observation?patient={p['id']}", headers=auth(token)))["entry"][0]["resource"]
    resp = client.get(f"/fhir/Observation/{found['id']}", headers=auth(token))
    obs = fhir_ok(resp)
    assert obs == found and resp.headers["ETag"] == 'W/"1"' and resp.headers["Last-Modified"]
    order_ref = obs["basedOn"][0]["reference"]
    order = fhir_ok(client.get(f"/fhir/{order_ref}", headers=auth(token)))
    assert f"ServiceRequest/{order['id']}" == order_ref and order["subject"] == {"reference": f"Patient/{p['id']}"}
    assert len(audit_rows(p["id"], "result.read")) == 2 and len(audit_rows(p["id"], "order.read")) == 1
    for path in (f"/fhir/Observation/{uuid.uuid4()}", "/fhir/Observation/not-an-id", f"/fhir/ServiceRequest/{uuid.uuid4()}"):
        outcome(client.get(path, headers=auth(token)), 404, "not-found")
    outcome(client.get(f"/fhir/Observation/{found['id']}", headers=auth(make_token("lis:read"))), 403, "forbidden")


def test_vread_of_every_kept_version_and_history_links_to_them(client, admin_token, make_token):
    token = make_token("patients:read")
    p = rest_patient(client, admin_token)
    changed = client.patch(f"/patients/{p['id']}", json={"phone": "+14155550123"},
                           headers={**auth(admin_token), "Content-Type": "application/merge-patch+json", "If-Match": 'W/"1"'})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    v1 = client.get(f"/fhir/Patient/{p['id']}/_history/1", headers=auth(token))
    first = fhir_ok(v1)
    assert first["meta"]["versionId"] == "1" and "telecom" not in first and v1.headers["ETag"] == 'W/"1"'
    second = fhir_ok(client.get(f"/fhir/Patient/{p['id']}/_history/2", headers=auth(token)))
    assert second["meta"]["versionId"] == "2" and second["telecom"] == [{"system": "phone", "value": "+14155550123"}]
    history = fhir_ok(client.get(f"/fhir/Patient/{p['id']}/_history", headers=auth(token)))
    assert [e["response"]["location"] for e in history["entry"]] == [
        f"Patient/{p['id']}/_history/2", f"Patient/{p['id']}/_history/1"]
    for vid in ("3", "0", "x", "99999999999"):
        outcome(client.get(f"/fhir/Patient/{p['id']}/_history/{vid}", headers=auth(token)), 404, "not-found")
    outcome(client.get(f"/fhir/Patient/{uuid.uuid4()}/_history/1", headers=auth(token)), 404, "not-found")
    assert len(audit_rows(p["id"], "patient.versions.read")) >= 3
