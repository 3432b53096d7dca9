"""GET /fhir/ServiceRequest?patient= and GET /fhir/Observation?patient=&code= over stored orders and results."""

import json
import uuid
from decimal import Decimal

from shared.settings import get_settings
from tests.conftest import auth
from tests.http.fhir.support import add_order, audit_rows, fhir_base, fhir_ok, outcome, rest_patient

GLUCOSE = {"code_system": "LN", "code": "2345-7", "code_display": "Glucose", "value_type": "NM", "value": "5.10",
           "units": "mmol/L", "reference_range": "3.9-5.5", "abnormal_flags": [], "status": "F"}
POTASSIUM = {"code_system": "LN", "code": "2823-3", "code_display": "Potassium", "value_type": "NM", "value": "6.2",
             "units": "mmol/L", "reference_range": "3.5-5.1", "abnormal_flags": ["H"], "status": "C"}
COMMENT = {"code_system": "L", "code": "COM", "code_display": "Comment", "value_type": "TX",
           "value": "Haemolysed sample", "status": "P", "notes": ["called ward"]}


def test_service_requests_of_a_patient(client, admin_token, make_token):
    token = make_token("patients:read")
    p = rest_patient(client, admin_token)
    placed = client.post(f"/patients/{p['id']}/orders", json={"code": {"system": "http://loinc.org", "code": "2345-7",
                                                                        "display": "Glucose"}}, headers=auth(admin_token))
    assert placed.status_code == 201, placed.get_data(as_text=True)
    lis_order = add_order(p["id"], status="cancelled")
    doc = fhir_ok(client.get(f"/fhir/ServiceRequest?patient=Patient/{p['id']}", headers=auth(token)))
    assert doc["total"] == 2
    by_id = {e["resource"]["id"]: e["resource"] for e in doc["entry"]}
    api_order, lis = by_id[placed.get_json()["id"]], by_id[str(lis_order)]
    assert api_order["status"] == "active" and api_order["intent"] == "order" and api_order["priority"] == "routine"
    assert api_order["code"]["coding"] == [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]
    assert api_order["subject"] == {"reference": f"Patient/{p['id']}"}
    assert lis["status"] == "revoked" and lis["priority"] == "stat"
    assert lis["code"]["coding"][0]["system"] == "http://loinc.org"  # HL7 "LN"
    assert {i["type"]["coding"][0]["code"] for i in lis["identifier"]} == {"PLAC", "FILL"}
    assert len(audit_rows(p["id"], "order.read")) == 1
    page = fhir_ok(client.get(f"/fhir/ServiceRequest?patient={p['id']}&_count=1", headers=auth(token)))
    assert page["total"] == 2 and len(page["entry"]) == 1 and any(link["relation"] == "next" for link in page["link"])


def test_observations_values_units_ranges_interpretation_status(client, admin_token, make_token):
    token = make_token("patients:read")
    p = rest_patient(client, admin_token)
    order = add_order(p["id"], results=[GLUCOSE, POTASSIUM, COMMENT])
    resp = client.get(f"/fhir/Observation?patient={p['id']}", headers=auth(token))
    assert fhir_ok(resp)["total"] == 3
    doc = json.loads(resp.get_data(as_text=True), parse_float=Decimal)  # decimals exactly as sent
    by_code = {e["resource"]["code"]["coding"][0]["code"]: e["resource"] for e in doc["entry"]}
    glucose, potassium, comment = by_code["2345-7"], by_code["2823-3"], by_code["COM"]
    assert glucose["valueQuantity"] == {"value": Decimal("5.10"), "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                                        "code": "mmol/L"}
    assert str(glucose["valueQuantity"]["value"]) == "5.10"  # the precision sent is kept
    assert glucose["status"] == "final" and glucose["basedOn"] == [{"reference": f"ServiceRequest/{order}"}]
    assert glucose["referenceRange"] == [{"low": {"value": Decimal("3.9"), "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                                                  "code": "mmol/L"},
                                          "high": {"value": Decimal("5.5"), "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                                                   "code": "mmol/L"},
                                          "text": "3.9-5.5"}]
    assert "interpretation" not in glucose
    assert potassium["status"] == "corrected"
    assert potassium["interpretation"] == [{"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H", "display": "High"}]}]
    assert comment["valueString"] == "Haemolysed sample" and comment["status"] == "preliminary"
    assert comment["code"]["coding"][0]["system"] == "urn:patient-mgt:code-system:L"
    assert comment["note"] == [{"text": "called ward"}]
    assert len(audit_rows(p["id"], "result.read")) == 1


def test_observation_code_filter_and_paging(client, admin_token, make_token):
    token = make_token("patients:read")
    p = rest_patient(client, admin_token)
    add_order(p["id"], results=[GLUCOSE, POTASSIUM, COMMENT])

    def codes(query: str) -> list[str]:
        doc = fhir_ok(client.get(f"/fhir/Observation?patient={p['id']}&{query}", headers=auth(token)))
        return sorted(e["resource"]["code"]["coding"][0]["code"] for e in doc.get("entry", []))

    assert codes("code=http://loinc.org|2345-7") == ["2345-7"]
    assert codes("code=2823-3") == ["2823-3"]
    assert codes("code=http://loinc.org|2345-7,http://loinc.org|2823-3") == ["2345-7", "2823-3"]
    assert codes("code=http://snomed.info/sct|2345-7") == []
    assert codes("code=urn:patient-mgt:code-system:L|COM") == ["COM"]
    first = fhir_ok(client.get(f"/fhir/Observation?patient={p['id']}&_count=2", headers=auth(token)))
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert nxt.startswith(f"{fhir_base()}/Observation?")
    rest = fhir_ok(client.get(nxt.removeprefix(get_settings().public_base_url), headers=auth(token)))
    seen = [e["resource"]["id"] for e in first["entry"] + rest["entry"]]
    assert len(seen) == len(set(seen)) == 3 and rest["total"] == 3


def test_lab_searches_refuse_other_references_and_find_nothing_for_an_unknown_patient(client, make_token):
    token = make_token("patients:read")
    for resource in ("ServiceRequest", "Observation"):
        outcome(client.get(f"/fhir/{resource}?patient=Encounter/{uuid.uuid4()}", headers=auth(token)), 400, "invalid")
        outcome(client.get(f"/fhir/{resource}?subject=Encounter/{uuid.uuid4()}", headers=auth(token)), 400, "invalid")
        for unknown in (uuid.uuid4(), "abc"):  # an id this server never issued is a search that finds nothing
            doc = fhir_ok(client.get(f"/fhir/{resource}?patient={unknown}", headers=auth(token)))
            assert doc["total"] == 0 and "entry" not in doc
    outcome(client.get(f"/fhir/Observation?patient={uuid.uuid4()}&code=|", headers=auth(token)), 400, "invalid")
