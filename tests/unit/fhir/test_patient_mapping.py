"""Registry Patient ↔ FHIR Patient (pure)."""

import json
import uuid
from datetime import datetime, timezone

import pytest

from shared.errors import ValidationFailed
from shared.fhir.patient import to_fhir_patient
from shared.fhir.patient_input import parse_fhir_patient, to_patient_create
from shared.schemas.patients import Patient as PatientResource
from tests.support.fhir import validate

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=timezone.utc)


def resource(**fields) -> PatientResource:
    base = {"id": uuid.uuid4(), "mrn": "100000018", "status": "active", "merged_into": None,
            "name": {"family": "Osei", "given": ["Ama"], "prefix": ["Dr"], "suffix": []}, "birth_date": "1970-01-02",
            "sex": "unknown", "identifiers": [{"system": "urn:patient-mgt:mrn", "value": "100000018", "type": "MR"}],
            "phone": None, "email": None, "address": None, "preferred_language": "en", "timezone": "Africa/Accra",
            "communication": {"email": False, "sms": True}, "version": 4, "created_at": NOW, "updated_at": NOW}
    base.update(fields)
    return PatientResource.model_validate(base)


def test_minimal_patient():
    doc = to_fhir_patient(resource())
    validate(doc)
    assert doc["meta"] == {"versionId": "4", "lastUpdated": "2026-11-25T09:30:00+00:00"}
    assert doc["name"] == [{"use": "official", "family": "Osei", "given": ["Ama"], "prefix": ["Dr"]}]
    assert doc["identifier"] == [{"use": "usual", "type": {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR", "display": "Medical record number"}]},
        "system": "urn:patient-mgt:mrn", "value": "100000018"}]
    assert "telecom" not in doc and "address" not in doc and "link" not in doc
    assert doc["gender"] == "unknown" and doc["active"] is True
    assert "timezone" not in json.dumps(doc) and "Africa/Accra" not in json.dumps(doc)


def test_a_patient_without_a_name_has_no_name_element():
    doc = to_fhir_patient(resource(name={"family": "", "given": [], "prefix": [], "suffix": []}))
    validate(doc)
    assert "name" not in doc
    assert to_fhir_patient(resource(name={"family": "", "given": ["Ama"], "prefix": [], "suffix": []}))["name"] == [
        {"use": "official", "given": ["Ama"]}]


def test_identifier_systems_that_are_not_uris_are_wrapped_and_types_outside_v2_0203_are_text():
    doc = to_fhir_patient(resource(identifiers=[
        {"system": "urn:oid:2.16.840.1.113883.19.5", "value": "A1", "type": "MR"},
        {"system": "HOSP A", "value": "B2", "type": "local-kind"},
        {"system": "http://hospital.example.org/ids", "value": "C3", "type": None}]))
    validate(doc)
    assert doc["identifier"][0]["system"] == "urn:oid:2.16.840.1.113883.19.5"
    assert doc["identifier"][1] == {"type": {"text": "local-kind"}, "system": "urn:patient-mgt:identifier-system:HOSP%20A",
                                    "value": "B2"}
    assert doc["identifier"][2] == {"system": "http://hospital.example.org/ids", "value": "C3"}


@pytest.mark.parametrize("status", ["inactive", "merged"])
def test_inactive_and_merged(status):
    target = uuid.uuid4()
    doc = to_fhir_patient(resource(status=status, merged_into=target if status == "merged" else None))
    validate(doc)
    assert doc["active"] is False
    if status == "merged":
        assert doc["link"] == [{"other": {"reference": f"Patient/{target}"}, "type": "replaced-by"}]
    else:
        assert "link" not in doc


def fhir_body(**fields):
    body = {"resourceType": "Patient", "name": [{"family": "Mensah", "given": ["Kojo"]}], "birthDate": "1988-08-08"}
    body.update(fields)
    return body


def test_fhir_input_maps_to_the_registry_body():
    data = to_patient_create(parse_fhir_patient(fhir_body(
        gender="male", identifier=[{"system": "urn:patient-mgt:identifier-system:HOSP%20A", "value": "9",
                                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PI"}]}},
                                   {"system": "urn:x", "value": "1", "type": {"text": "custom"}}],
        telecom=[{"system": "email", "value": "KOJO@example.org"}, {"system": "phone", "value": "+233201234567"}],
        communication=[{"language": {"coding": [{"code": "ak"}]}}])))
    assert data.name.family == "Mensah" and data.sex == "male" and data.birth_date.isoformat() == "1988-08-08"
    assert [(i.system, i.value, i.type) for i in data.identifiers] == [("HOSP A", "9", "PI"), ("urn:x", "1", "custom")]
    assert (data.phone, str(data.email), data.preferred_language) == ("+233201234567", "KOJO@example.org", "ak")


def fields(body) -> set[str]:
    with pytest.raises(ValidationFailed) as err:
        to_patient_create(parse_fhir_patient(body))
    return {e["field"] for e in err.value.errors}


def test_input_errors_name_fhir_paths():
    assert fields(fhir_body(photo=[{"url": "x"}])) == {"Patient.photo"}
    assert fields(fhir_body(name=[{"given": ["x"]}])) == {"Patient.name[0].family"}
    assert fields(fhir_body(birthDate="1988-02-30")) == {"Patient.birthDate"}
    assert fields(fhir_body(address=[{"city": "Accra", "state": "GA", "postalCode": "00233", "country": "gh"}])) == {
        "Patient.address[0].country"}
    assert fields(fhir_body(telecom=[{"system": "sms", "value": "+233201234567"}])) == {"Patient.telecom[0].system"}
    assert fields(fhir_body(communication=[{"language": {"text": "Twi"}}])) == {"Patient.communication[0].language"}
    assert fields(fhir_body(identifier=[{"system": "urn:x", "value": "1"}, {"system": "urn:x", "value": "1"}])) == {
        "Patient.identifier"}
    assert fields(fhir_body(_birthDate={"extension": []})) == {"Patient._birthDate"}
