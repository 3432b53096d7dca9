"""What the LIS stored, as FHIR: microbiology isolates with their susceptibilities (``hasMember``),
patient-level observations (no ``basedOn``), HL7 times at the precision sent, and a LIS patient's
absent language. Messages go through the real LIS ingest (in-process, real PostgreSQL); every
resource received is validated with fhir.resources (``fhir_ok``)."""

import uuid

from tests.conftest import auth
from tests.http.fhir.support import fhir_ok
from tests.support import lis_db
from tests.support.lis_fidelity import send
from tests.support.lis_ingest import Feed, hl7, one

FINAL = "nistlri__ORU-R01__GU-RU-004.01.hl7"  # a culture, three isolates, one susceptibility panel each


def _patient(client, token, system: str, value: str) -> str:
    pid = lis_db.patient_id_by_identifier(system, value)
    assert pid is not None
    return str(pid)


def test_isolates_have_their_susceptibilities_as_members(client, make_token):
    run = uuid.uuid4().hex[:8]
    assert send(FINAL, run).status == "processed"
    token = make_token("patients:read")
    pid = _patient(client, token, "2.16.840.1.113883.3.72.5.30.2", f"PATID1234-{run}")
    bundle = fhir_ok(client.get(f"/fhir/Observation?patient={pid}&_count=100", headers=auth(token)))
    by_id = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    isolates = [o for o in by_id.values() if o["code"]["coding"][0]["code"] == "625-4"]
    assert len(isolates) == 3
    seen_members: set[str] = set()
    for isolate in isolates:
        members = [m["reference"].removeprefix("Observation/") for m in isolate["hasMember"]]
        assert sorted(by_id[m]["code"]["coding"][0]["code"] for m in members) == ["185-9", "267-5", "28-1"]
        seen_members |= set(members)
        # The members' request is the isolate's panel, a child of the culture's order: each readable.
        [panel_ref] = {by_id[m]["basedOn"][0]["reference"] for m in members}
        panel = fhir_ok(client.get(f"/fhir/{panel_ref}", headers=auth(token)))
        culture_ref = isolate["basedOn"][0]["reference"]
        assert panel["basedOn"] == [{"reference": culture_ref}] and panel_ref != culture_ref
        fhir_ok(client.get(f"/fhir/{culture_ref}", headers=auth(token)))
        # The read of one isolate says the same.
        assert fhir_ok(client.get(f"/fhir/Observation/{isolate['id']}", headers=auth(token)))["hasMember"] == isolate["hasMember"]
    assert len(seen_members) == 9
    assert all("hasMember" not in by_id[m] for m in seen_members)
    # _include through a report carries the members too.
    culture_id = isolates[0]["basedOn"][0]["reference"].removeprefix("ServiceRequest/")
    report = fhir_ok(client.get(f"/fhir/DiagnosticReport?_id={culture_id}&_include=DiagnosticReport:result",
                                headers=auth(token)))
    included = {e["resource"]["id"]: e["resource"] for e in report["entry"] if e["search"]["mode"] == "include"}
    assert {i["id"]: i["hasMember"] for i in isolates} == {k: v["hasMember"] for k, v in included.items()}


def _times_oru(f: Feed, obx14: str, obr7: str = "") -> bytes:
    return hl7(
        f.msh("ORU^R01", "20260101100000"), f.pid("MRN1"),
        f"ORC|RE|{f.id('ORD1')}|{f.id('FIL1')}",
        f"OBR|1|{f.id('ORD1')}|{f.id('FIL1')}|24323-8^Metabolic panel^LN|||{obr7}",
        f"OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|||||F|||{obx14}",
    )


def _effective(client, token, f: Feed) -> tuple[str, str]:
    pid = _patient(client, token, f.facility, f.id("MRN1"))
    [obs] = [e["resource"] for e in fhir_ok(client.get(f"/fhir/Observation?patient={pid}", headers=auth(token)))["entry"]]
    [report] = [e["resource"] for e in fhir_ok(client.get(f"/fhir/DiagnosticReport?patient={pid}",
                                                          headers=auth(token)))["entry"]]
    return obs["effectiveDateTime"], report["effectiveDateTime"]


def test_hl7_times_keep_their_precision_and_their_offset(client, make_token):
    token = make_token("patients:read")
    cases = [
        ("20260101", "", "2026-01-01"),  # a date stays a date: no time, no offset
        ("202601", "", "2026-01"),
        ("202601011230", "", "2026-01-01T12:30:00+00:00"),  # minute: zero seconds (FHIR requires them)
        ("20260101123045-0500", "", "2026-01-01T12:30:45-05:00"),  # the offset as sent, not UTC
        ("20260101123045.25+0130", "", "2026-01-01T12:30:45.25+01:30"),
        ("", "20260102", "2026-01-02"),  # OBR-7 standing in for an empty OBX-14, at its precision
    ]
    for obx14, obr7, expected in cases:
        f = Feed()
        assert one(_times_oru(f, obx14, obr7)).status == "processed"
        assert _effective(client, token, f) == (expected, expected), (obx14, obr7)


def test_a_correction_keeps_the_precision_of_the_version_it_makes_current(client, make_token):
    token = make_token("patients:read")
    f = Feed()
    assert one(_times_oru(f, "20260101")).status == "processed"
    corrected = _times_oru(f, "202601011015").replace(b"|4.1|", b"|4.4|").replace(b"|||||F|||", b"|||||C|||")
    assert one(corrected).status == "processed"
    assert _effective(client, token, f)[0] == "2026-01-01T10:15:00+00:00"
    # A late preliminary does not become current, nor does its time.
    late = _times_oru(f, "20260101").replace(b"|||||F|||", b"|||||P|||")
    assert one(late).status == "processed"
    assert _effective(client, token, f)[0] == "2026-01-01T10:15:00+00:00"


def test_patient_level_observations_have_no_based_on(client, make_token):
    f = Feed()
    raw = hl7(f.msh("ORU^R01", "20260101100000"), f.pid("MRN1"),
              "OBX|1|NM|8302-2^Body height^LN||172|cm|||||F|||20260101",
              f"ORC|RE|{f.id('ORD1')}|{f.id('FIL1')}", f"OBR|1|{f.id('ORD1')}|{f.id('FIL1')}|GLU^Glucose^L",
              "OBX|1|NM|GLU^Glucose^L||5.1|mmol/L|||||F")
    assert one(raw).status == "processed"
    token = make_token("patients:read")
    pid = _patient(client, token, f.facility, f.id("MRN1"))
    entries = fhir_ok(client.get(f"/fhir/Observation?patient={pid}", headers=auth(token)))["entry"]
    by_code = {e["resource"]["code"]["coding"][0]["code"]: e["resource"] for e in entries}
    height = by_code["8302-2"]
    assert "basedOn" not in height and "hasMember" not in height and height["effectiveDateTime"] == "2026-01-01"
    assert by_code["GLU"]["basedOn"][0]["reference"].startswith("ServiceRequest/")


def test_a_lis_patient_has_no_language_it_was_never_sent(client, make_token):
    f = Feed()
    assert one(_times_oru(f, "20260101")).status == "processed"
    token = make_token("patients:read")
    pid = _patient(client, token, f.facility, f.id("MRN1"))
    assert lis_db.patient(uuid.UUID(pid))["preferred_language"] is None
    patient = fhir_ok(client.get(f"/fhir/Patient/{pid}", headers=auth(token)))
    assert "communication" not in patient
    rest = client.get(f"/patients/{pid}", headers=auth(token))
    assert rest.status_code == 200 and rest.get_json()["preferred_language"] is None
    # A registry edit about something else keeps it absent; one that gives a language sets it.
    writer = {**auth(make_token("patients:read", "patients:write")), "Content-Type": "application/merge-patch+json"}
    patched = client.patch(f"/patients/{pid}", data='{"phone": "+14155550123"}',
                           headers={**writer, "If-Match": rest.headers["ETag"]})
    assert patched.status_code == 200, patched.get_data(as_text=True)
    assert patched.get_json()["preferred_language"] is None
    patched = client.patch(f"/patients/{pid}", data='{"preferred_language": "fr"}',
                           headers={**writer, "If-Match": patched.headers["ETag"]})
    assert patched.status_code == 200 and patched.get_json()["preferred_language"] == "fr"
    assert fhir_ok(client.get(f"/fhir/Patient/{pid}", headers=auth(token)))["communication"][0]["language"][
        "coding"][0]["code"] == "fr"
