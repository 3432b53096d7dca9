"""ORU^R01 parsed by the structure of its version: patient-level observations (PATIENT_OBSERVATION)
are stored for the patient and shown as observations and as FHIR Observations without basedOn;
order results land on their order; specimen observations stay with their order; a quarantine
reason names what is really wrong. State is read through the API."""

import uuid

from tests.support.lis_fidelity import Api, send
from tests.unit.hl7.test_message_structure import _v28

OBS = "derived__ORU-R01__patient-observations.hl7"


def _api(client, make_token) -> Api:
    return Api(client, make_token("lis:read", "patients:read"))


def _patient(api: Api, run: str) -> dict:
    patient = api.patient_by_identifier("NIST MPI", f"PATID1234-{run}")
    assert patient is not None
    return patient


def test_patient_level_observations_are_the_patients_and_order_results_the_orders(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    outcome = send(OBS, run)
    assert (outcome.status, outcome.reason) == ("processed", None)  # was missing_segment:OBR
    patient = _patient(api, run)
    observations = api.observations(patient["id"])
    assert sorted((o["code"]["code"], o["value"], o["units"], o["notes"], o["status"], o["observed_at"])
                  for o in observations) == [
        ("82810-3", "Not pregnant", None, [], "F", "2011-03-31T22:05:51Z"),
        ("8302-2", "183", "cm", ["Measured at intake."], "F", "2011-03-31T22:05:51Z")]
    assert all(o["patient_id"] == patient["id"] and o["version"] == 1 for o in observations)
    assert api.results(patient["id"]) == {f"R-783274-{run}": [("30341-2", None, "10", "F")]}

    bundle = api.get("/fhir/Observation", patient=patient["id"])
    by_code = {e["resource"]["code"]["coding"][0]["code"]: e["resource"] for e in bundle["entry"]}
    assert set(by_code) == {"8302-2", "82810-3", "30341-2"}
    assert "basedOn" not in by_code["8302-2"] and "basedOn" not in by_code["82810-3"]
    [order] = api.orders(patient["id"])
    assert by_code["30341-2"]["basedOn"] == [{"reference": f"ServiceRequest/{order['id']}"}]
    assert by_code["8302-2"]["valueQuantity"]["value"] == 183


def test_a_v28_message_with_prt_ctd_ft1_cti_txa_lands_the_same(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    outcome = send(OBS, run, edit=lambda b: _v28(b))
    assert outcome.status == "processed"
    patient = _patient(api, run)
    assert sorted(o["code"]["code"] for o in api.observations(patient["id"])) == ["82810-3", "8302-2"]
    [order] = api.orders(patient["id"])
    [esr] = order["results"]
    assert (esr["value"], esr["notes"]) == ("10", ["Result note after PRT."])
    assert order["notes"] == "Patient is extremely anxious about needles used for drawing blood."


def test_a_corrected_patient_observation_is_a_new_version_of_it_and_a_resend_changes_nothing(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    send(OBS, run)
    corrected = send(OBS, f"{run}", edit=lambda b: b.replace(b"|NIST-LRI-GU-001.00-", b"|NIST-LRI-GU-001.01-")
                     .replace(b"||183|cm^centimeter^UCUM|||||F|", b"||181|cm^centimeter^UCUM|||||C|"))
    assert corrected.status == "processed"
    patient = _patient(api, run)
    height = [o for o in api.observations(patient["id"]) if o["code"]["code"] == "8302-2"]
    assert [(o["value"], o["status"], o["version"]) for o in height] == [("181", "C", 2)]
    again = send(OBS, run, edit=lambda b: b.replace(b"|NIST-LRI-GU-001.00-", b"|NIST-LRI-GU-001.02-"))
    assert again.status == "processed"  # the original again, under another control id: older class, no new value
    height = [o for o in api.observations(patient["id"]) if o["code"]["code"] == "8302-2"]
    assert [(o["value"], o["status"]) for o in height] == [("181", "C")]


def test_specimen_observations_are_results_of_their_order(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    outcome = send("aidbox__ORU-R01__with-specimen.hl7", run,
                   edit=lambda b: b.rstrip(b"\n") + b"\nOBX|1|NM|SPVOL^Specimen volume^L||3|mL|||||F\n")
    assert outcome.status == "processed"
    patient = api.patient_by_identifier("HOSPITAL", f"TEST-0003-{run}")
    assert api.results(patient["id"]) == {f"FIL-SPECIMEN-001-{run}": [("51998", None, "4.2", "F"),
                                                                       ("SPVOL", None, "3", "F")]}


def test_a_message_without_an_order_is_quarantined_as_missing_its_obr(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    outcome = send("hl7/aidbox__ORU-R01__4.hl7", run)  # PID and an OBX, no OBR: not a legal ORU_R01
    stored = api.message(outcome.message_id)
    assert (stored["status"], stored["error_code"], stored["patient_id"]) == ("quarantined", "missing_segment:OBR", None)
