"""DiagnosticReport (one per order with results) read and search; Observation date/category/status searches."""

import uuid
from datetime import datetime, timezone

from tests.conftest import auth
from tests.http.fhir.support import add_order, audit_rows, fhir_ok, outcome, rest_patient

JAN = datetime(2026, 1, 15, 8, 30, tzinfo=timezone.utc)
MAR = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)


def _result(code, status="F", observed_at=JAN):
    return {"code_system": "LN", "code": code, "code_display": code, "value_type": "NM", "value": "1.0",
            "units": "mmol/L", "status": status, "observed_at": observed_at}


def _ids(doc):
    return [e["resource"]["id"] for e in doc.get("entry", [])]


def test_report_of_an_order_with_its_results(client, admin_token, make_token):
    token = make_token("patients:read")
    p = rest_patient(client, admin_token)
    order = add_order(p["id"], status="final", code=("LN", "24323-8", "CMP"),
                      results=[_result("2345-7", observed_at=MAR), _result("2823-3", observed_at=JAN)])
    empty_order = add_order(p["id"], status="requested")
    resp = client.get(f"/fhir/DiagnosticReport/{order}", headers=auth(token))
    report = fhir_ok(resp)
    assert report["status"] == "final" and report["basedOn"] == [{"reference": f"ServiceRequest/{order}"}]
    assert report["code"]["coding"][0] == {"system": "http://loinc.org", "code": "24323-8", "display": "CMP"}
    assert report["subject"] == {"reference": f"Patient/{p['id']}"}
    assert report["category"][0]["coding"][0]["code"] == "LAB"
    assert report["effectiveDateTime"] == JAN.isoformat() and resp.headers["ETag"] == 'W/"1"'
    observations = fhir_ok(client.get(f"/fhir/Observation?patient={p['id']}", headers=auth(token)))
    assert {r["reference"] for r in report["result"]} == {f"Observation/{i}" for i in _ids(observations)}
    # an order without results has no report yet; neither has a random id
    for rid in (empty_order, uuid.uuid4(), "x"):
        outcome(client.get(f"/fhir/DiagnosticReport/{rid}", headers=auth(token)), 404, "not-found")
    found = fhir_ok(client.get(f"/fhir/DiagnosticReport?patient={p['id']}", headers=auth(token)))
    assert _ids(found) == [str(order)] and found["entry"][0]["resource"] == report
    assert len(audit_rows(p["id"], "order.read")) >= 2


def test_report_searches(client, admin_token, make_token):
    token = make_token("patients:read")
    p = rest_patient(client, admin_token)
    final = add_order(p["id"], status="final", code=("LN", "24323-8", "CMP"), results=[_result("2345-7", observed_at=JAN)])
    prelim = add_order(p["id"], status="preliminary", code=("LN", "58410-2", "CBC"),
                       results=[_result("718-7", "P", observed_at=MAR)])
    base = f"/fhir/DiagnosticReport?patient={p['id']}"

    def ids(query):
        return set(_ids(fhir_ok(client.get(f"{base}&{query}", headers=auth(token)))))

    assert ids("code=http://loinc.org|58410-2") == {str(prelim)}
    assert ids("code=24323-8,58410-2") == {str(final), str(prelim)}
    assert ids("status=final") == {str(final)} and ids("status=preliminary,final") == {str(final), str(prelim)}
    assert ids("date=2026-01") == {str(final)} and ids("date=gt2026-02-01") == {str(prelim)}
    assert ids("date=ge2026-01-01&date=lt2026-04-01") == {str(final), str(prelim)}
    assert ids("category=LAB") == {str(final), str(prelim)} and ids("category=http://terminology.hl7.org/CodeSystem/v2-0074|LAB")
    assert ids("category=RAD") == set()
    outcome(client.get(f"{base}&status=done", headers=auth(token)), 400, "invalid")
    outcome(client.get(f"{base}&date=January", headers=auth(token)), 400, "invalid")


def test_observation_date_category_and_status(client, admin_token, make_token):
    token = make_token("patients:read")
    p = rest_patient(client, admin_token)
    add_order(p["id"], results=[_result("2345-7", "F", JAN), _result("718-7", "P", MAR), _result("1-1", "Z", MAR)])
    base = f"/fhir/Observation?patient={p['id']}"

    def codes(query):
        doc = fhir_ok(client.get(f"{base}&{query}", headers=auth(token)))
        return {e["resource"]["code"]["coding"][0]["code"] for e in doc.get("entry", [])}

    assert codes("date=2026-01-15") == {"2345-7"} and codes("date=ge2026-03-02T14:00Z") == {"718-7", "1-1"}
    assert codes("date=lt2026-01-15T08:30:00%2B00:00") == set() and codes("date=le2026-01-15T08:30:00Z") == {"2345-7"}
    assert codes("date=ne2026-01") == {"718-7", "1-1"}
    assert codes("status=final") == {"2345-7"} and codes("status=preliminary") == {"718-7"}
    assert codes("status=unknown") == {"1-1"} and codes("status=final,unknown") == {"2345-7", "1-1"}
    assert codes("category=laboratory") == {"2345-7", "718-7", "1-1"} and codes("category=vital-signs") == set()
    doc = fhir_ok(client.get(f"{base}&_sort=date", headers=auth(token)))
    assert doc["entry"][0]["resource"]["code"]["coding"][0]["code"] == "2345-7"
    outcome(client.get(f"{base}&status=done", headers=auth(token)), 400, "invalid")
