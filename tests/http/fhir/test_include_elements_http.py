"""_include, _revinclude, _elements and Prefer: handling=lenient on searchsets."""

from tests.conftest import auth
from tests.http.fhir.support import add_order, audit_rows, fhir_ok, outcome, rest_patient

GLUCOSE = {"code_system": "LN", "code": "2345-7", "code_display": "Glucose", "value_type": "NM", "value": "5.1",
           "units": "mmol/L", "status": "F"}
HB = {**GLUCOSE, "code": "718-7", "code_display": "Hemoglobin", "value": "13.2", "units": "g/dL"}


def _by_mode(doc):
    out = {}
    for e in doc.get("entry", []):
        out.setdefault(e["search"]["mode"], []).append(f"{e['resource']['resourceType']}/{e['resource'].get('id')}")
    return out


def test_report_with_its_results_and_request_in_one_request(client, admin_token, make_token):
    token = make_token("patients:read")
    p = rest_patient(client, admin_token)
    order = add_order(p["id"], results=[GLUCOSE, HB])
    doc = fhir_ok(client.get(f"/fhir/DiagnosticReport?patient={p['id']}&_include=DiagnosticReport:result"
                             "&_include=DiagnosticReport:based-on&_include=DiagnosticReport:patient", headers=auth(token)))
    modes = _by_mode(doc)
    assert modes["match"] == [f"DiagnosticReport/{order}"] and doc["total"] == 1  # includes are not counted
    report = doc["entry"][0]["resource"]
    assert sorted(modes["include"]) == sorted([r["reference"] for r in report["result"]]
                                              + [f"ServiceRequest/{order}", f"Patient/{p['id']}"])
    assert audit_rows(p["id"], "result.read") and audit_rows(p["id"], "patient.read")
    obs = fhir_ok(client.get(f"/fhir/Observation?patient={p['id']}&_include=Observation:patient"
                             "&_include=Observation:based-on", headers=auth(token)))
    assert sorted(_by_mode(obs)["include"]) == sorted([f"Patient/{p['id']}", f"ServiceRequest/{order}"])  # once each
    outcome(client.get(f"/fhir/Observation?patient={p['id']}&_include=Observation:performer", headers=auth(token)), 400)
    outcome(client.get(f"/fhir/Patient?_id={p['id']}&_include=Patient:organization", headers=auth(token)), 400)


def test_patient_with_its_results_by_revinclude(client, admin_token, make_token):
    token = make_token("patients:read")
    p = rest_patient(client, admin_token)
    add_order(p["id"], results=[GLUCOSE, HB])
    doc = fhir_ok(client.get(f"/fhir/Patient?_id={p['id']}&_revinclude=Observation:patient", headers=auth(token)))
    modes = _by_mode(doc)
    assert modes["match"] == [f"Patient/{p['id']}"] and len(modes["include"]) == 2
    assert all(m.startswith("Observation/") for m in modes["include"])


def test_elements_subset_the_matches(client, admin_token, make_token):
    token = make_token("patients:read")
    p = rest_patient(client, admin_token)
    add_order(p["id"], results=[GLUCOSE])
    doc = fhir_ok(client.get(f"/fhir/Observation?patient={p['id']}&_elements=status,code", headers=auth(token)))
    obs = doc["entry"][0]["resource"]
    assert set(obs) == {"resourceType", "id", "meta", "status", "code"}
    assert obs["meta"]["tag"][0]["code"] == "SUBSETTED"
    outcome(client.get(f"/fhir/Observation?patient={p['id']}&_elements=a.b", headers=auth(token)), 400)


def test_lenient_handling_ignores_unknown_parameters_and_says_so(client, admin_token, make_token):
    token = make_token("patients:read")
    p = rest_patient(client, admin_token)
    outcome(client.get(f"/fhir/Patient?_id={p['id']}&foo=1", headers=auth(token)), 400, "invalid")  # strict by default
    doc = fhir_ok(client.get(f"/fhir/Patient?_id={p['id']}&foo=1&name:exact=x",
                             headers={**auth(token), "Prefer": "handling=lenient"}))
    modes = _by_mode(doc)
    assert modes["match"] == [f"Patient/{p['id']}"] and len(modes["outcome"]) == 1
    note = doc["entry"][-1]["resource"]["issue"][0]
    assert note["severity"] == "warning" and "foo" in note["diagnostics"] and "name:exact" in note["diagnostics"]
    # a known parameter with a bad value is still an error under lenient handling
    outcome(client.get("/fhir/Patient?gender=robot", headers={**auth(token), "Prefer": "handling=lenient"}), 400)
