"""The FHIR view in a real functions-framework process on 127.0.0.1, used by real clients:
SMART on FHIR's ``fhirclient`` (capability statement, create, read, paged searches) and
concurrent conditional creates over real HTTP."""

import threading
import uuid

import pytest
import requests
from fhirclient.models.diagnosticreport import DiagnosticReport
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRServer, FHIRUnauthorizedException

from tests.http.fhir.support import add_order, audit_rows, patients_with_identifier
from tests.support.fhir import validate

pytestmark = pytest.mark.e2e


def _server(api_url: str, token: str | None) -> FHIRServer:
    """fhirclient's server object with our bearer API key on its requests session (no SMART launch)."""
    server = FHIRServer(None, base_uri=f"{api_url}/fhir")
    if token:
        server.session.headers["Authorization"] = f"Bearer {token}"
    return server


def test_fhirclient_reads_creates_and_pages_through_searches(start_fn, make_token):
    api = start_fn("api", ready_path="/readyz")
    token = make_token("patients:read", "patients:write")
    server = _server(api.url, token)

    capability = server.capabilityStatement
    assert capability.fhirVersion == "4.0.1"
    patient_caps = next(r for r in capability.rest[0].resource if r.type == "Patient")
    assert {i.code for i in patient_caps.interaction} == {"read", "vread", "search-type", "history-instance", "create"}

    family = "Client" + uuid.uuid4().hex[:8]
    created = []
    for given, born in (("Akua", "1971-01-01"), ("Yaa", "1982-02-02"), ("Adwoa", "1993-03-03")):
        p = Patient({"name": [{"family": family, "given": [given]}], "birthDate": born, "gender": "female",
                     "identifier": [{"system": "urn:test:fhirclient", "value": uuid.uuid4().hex}]})
        doc = p.create(server)
        validate(doc)
        created.append(doc["id"])

    read = Patient.read(created[1], server)
    assert read.id == created[1] and read.name[0].family == family and read.name[0].given == ["Yaa"]
    assert read.birthDate.isostring == "1982-02-02" and read.meta.versionId == "1"
    assert any(i.system == "urn:patient-mgt:mrn" for i in read.identifier)

    search = Patient.where(struct={"family": family, "_count": "2"})
    bundles = list(search.perform_iter(server))
    assert len(bundles) == 2 and all(b.total == 3 for b in bundles)  # fhirclient followed the next link
    for b in bundles:
        validate(b.as_json())
    assert sorted(r.id for r in search.perform_resources_iter(server)) == sorted(created)
    assert [r.id for r in Patient.where(struct={"family": family, "birthdate": "ge1990"}).perform_resources_iter(server)] \
        == [created[2]]
    assert len(audit_rows(created[1], "patient.read")) == 1
    # each patient is on one page of each of the two full searches; the third also matched birthdate=ge1990
    assert [len(audit_rows(pid, "patient.search")) for pid in created] == [2, 2, 3]

    add_order(created[0], results=[{"code_system": "LN", "code": "718-7", "code_display": "Hemoglobin", "value_type": "NM",
                                    "value": "13.50", "units": "g/dL", "reference_range": "12.0-15.5", "abnormal_flags": ["N"],
                                    "status": "F"}])
    [obs] = list(Observation.where(struct={"patient": created[0], "code": "http://loinc.org|718-7"})
                 .perform_resources_iter(server))
    assert obs.status == "final" and obs.valueQuantity.value == 13.5 and obs.valueQuantity.code == "g/dL"
    assert obs.interpretation[0].coding[0].code == "N" and obs.referenceRange[0].high.value == 15.5

    with pytest.raises(FHIRUnauthorizedException):
        Patient.read(created[0], _server(api.url, None))
    assert family not in api.logs()  # no patient data in the process's log lines


def test_fhirclient_reads_a_report_with_its_results_vreads_and_pages_a_code_search(start_fn, make_token):
    api = start_fn("api", ready_path="/readyz")
    server = _server(api.url, make_token("patients:read", "patients:write"))
    p = Patient({"name": [{"family": "Report" + uuid.uuid4().hex[:8], "given": ["Esi"]}], "birthDate": "1975-05-05",
                 "identifier": [{"system": "urn:test:fhirclient", "value": uuid.uuid4().hex}]})
    pid = p.create(server)["id"]
    code = "X" + uuid.uuid4().hex[:8]  # a code no other test uses: the code search spans every patient
    results = [{"code_system": "LN", "code": code, "code_display": "Test", "value_type": "NM", "value": str(n),
                "units": "g/dL", "status": "F"} for n in range(3)]
    order = add_order(pid, results=results)

    search = DiagnosticReport.where(struct={"patient": pid}).include("result")
    found = search.perform_resources(server)
    [report] = [r for r in found if r.resource_type == "DiagnosticReport"]
    included = sorted(r.id for r in found if r.resource_type == "Observation")
    assert report.id == str(order) and sorted(ref.reference.split("/")[1] for ref in report.result) == included
    assert len(included) == 3 and report.basedOn[0].reference == f"ServiceRequest/{order}"
    for bundle in search.perform_iter(server):
        validate(bundle.as_json())

    based_on = Observation.read(included[0], server).basedOn[0].reference
    assert based_on == f"ServiceRequest/{order}"

    v1 = Patient.read_from(f"Patient/{pid}/_history/1", server)
    assert v1.id == pid and v1.meta.versionId == "1"

    pages = list(Observation.where(struct={"code": f"http://loinc.org|{code}", "_count": "1"}).perform_iter(server))
    assert len(pages) == 3 and all(b.total == 3 for b in pages)
    for bundle in pages:
        validate(bundle.as_json())


def test_concurrent_conditional_creates_make_exactly_one_patient(start_fn, make_token):
    api = start_fn("api", ready_path="/readyz", env={"THREADS": "8"})
    token = make_token("patients:write")
    system, value = "urn:test:concurrent", uuid.uuid4().hex
    body = {"resourceType": "Patient", "identifier": [{"system": system, "value": value}],
            "name": [{"family": "Race" + uuid.uuid4().hex[:8], "given": ["Kwesi"]}], "birthDate": "1977-07-07"}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json",
               "If-None-Exist": f"identifier={system}|{value}"}
    n = 12
    barrier = threading.Barrier(n)
    responses: list = [None] * n

    def create(i: int) -> None:
        session = requests.Session()
        barrier.wait()
        responses[i] = session.post(f"{api.url}/fhir/Patient", json=body, headers=headers, timeout=60)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (n - 1) + [201], [r.text[:200] for r in responses]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    for r in responses:
        assert r.headers["Content-Type"].startswith("application/fhir+json") and r.headers["ETag"] == 'W/"1"'
        validate(r.json())
    [pid] = ids
    assert patients_with_identifier(system, value) == [uuid.UUID(pid)]
    assert len(audit_rows(pid, "patient.create")) == 1
