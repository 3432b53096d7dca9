"""HL7 v2 results through the LIS ingest (in-process, real PostgreSQL), read back as FHIR: the
contract between what the LIS consumer stores and what the FHIR view maps."""

import json
from decimal import Decimal

from tests.conftest import auth
from tests.http.fhir.support import fhir_ok
from tests.support import lis_db
from tests.support.lis_ingest import Feed, hl7, one


def _oru(f: Feed, when: str, status: str, potassium: str) -> bytes:
    return hl7(
        f.msh("ORU^R01", when), f.pid("MRN1", name="ASANTE^AFIA", born="19750505", sex="F"),
        f"ORC|RE|{f.id('ORD1')}|{f.id('FIL1')}",
        f"OBR|1|{f.id('ORD1')}|{f.id('FIL1')}|24323-8^Metabolic panel^LN|||{when}||||||||||||||||||{status}",
        f"OBX|1|NM|2823-3^Potassium^LN||{potassium}|mmol/L|3.5-5.1|H|||{status}|||{when}",
        f"OBX|2|SN|33914-3^eGFR^LN||>^90|mL/min/1.73m2|>=60|N|||{status}|||{when}",
        f"OBX|3|ST|5778-6^Color of Urine^LN||Yellow||||||{status}|||{when}",
    )


def test_results_from_hl7_as_fhir_observations(client, make_token):
    f = Feed()
    assert one(_oru(f, "20260101100000", "P", "5.30")).status == "processed"
    assert one(_oru(f, "20260101110000", "C", "5.80")).status == "processed"  # a correction
    pid = lis_db.patient_id_by_identifier(f.facility, f.id("MRN1"))
    token = make_token("patients:read")

    patient = fhir_ok(client.get(f"/fhir/Patient/{pid}", headers=auth(token)))
    assert {"system": f"urn:patient-mgt:identifier-system:{f.facility}", "value": f.id("MRN1")} == {
        k: v for k, v in next(i for i in patient["identifier"] if i["value"] == f.id("MRN1")).items() if k != "type"}

    resp = client.get(f"/fhir/Observation?patient={pid}", headers=auth(token))
    assert fhir_ok(resp)["total"] == 3
    doc = json.loads(resp.get_data(as_text=True), parse_float=Decimal)
    by_code = {e["resource"]["code"]["coding"][0]["code"]: e["resource"] for e in doc["entry"]}
    k, egfr, colour = by_code["2823-3"], by_code["33914-3"], by_code["5778-6"]
    assert k["status"] == "corrected" and str(k["valueQuantity"]["value"]) == "5.80"
    assert k["valueQuantity"]["code"] == "mmol/L" and k["interpretation"][0]["coding"][0]["code"] == "H"
    assert k["code"]["coding"][0]["system"] == "http://loinc.org"
    assert egfr["valueQuantity"] == {"value": Decimal("90"), "comparator": ">", "unit": "mL/min/1.73m2",
                                     "system": "http://unitsofmeasure.org", "code": "mL/min/{1.73_m2}"}
    assert egfr["referenceRange"][0]["low"]["value"] == Decimal("60")
    assert colour["valueString"] == "Yellow" and "referenceRange" not in colour

    orders = fhir_ok(client.get(f"/fhir/ServiceRequest?patient={pid}", headers=auth(token)))
    [sr] = [e["resource"] for e in orders["entry"]]
    assert sr["status"] == "completed" and {i["value"] for i in sr["identifier"]} == {f.id("ORD1"), f.id("FIL1")}
    assert {o["basedOn"][0]["reference"] for o in by_code.values()} == {f"ServiceRequest/{sr['id']}"}
