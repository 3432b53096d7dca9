"""The MRN's system is the registry's, in any letter case: no client identifier may use it (on
registration, on a change, through the FHIR view), so an MRN search never finds a second patient.

``urn:patient-mgt:mrn`` is a URN: its scheme and namespace compare case-insensitively, so
``URN:Patient-MGT:mrn`` names the same system and must be refused the same way.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import PatientIdentifier
from tests.conftest import auth
from tests.http.fhir.support import FHIR_JSON, fhir_patient
from tests.http.registry.support import assert_problem, error_fields, patient_body

VARIANTS = ["URN:patient-mgt:mrn", "urn:PATIENT-MGT:MRN", "Urn:Patient-Mgt:Mrn", " urn:patient-mgt:MRN "]
MERGE_PATCH = "application/merge-patch+json"


def _register(client, token: str, **overrides) -> dict:
    resp = client.post("/patients?allow_duplicate=true", json=patient_body(**overrides), headers=auth(token))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def _holders(value: str) -> list[tuple[str, str]]:
    """Every (patient, system) holding ``value`` in any MRN-like system."""
    with unit_of_work() as uow:
        rows = uow.session.execute(sa.select(PatientIdentifier.patient_id, PatientIdentifier.system).where(
            PatientIdentifier.value == value, sa.func.lower(sa.func.trim(PatientIdentifier.system)) == "urn:patient-mgt:mrn"))
        return sorted((str(r.patient_id), r.system) for r in rows)


def _mrn_search(client, token: str, query: str) -> list[str]:
    resp = client.get(f"/patients?{query}", headers=auth(token))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return [p["id"] for p in resp.get_json()["items"]]


@pytest.mark.parametrize("system", VARIANTS)
def test_registering_with_another_patients_mrn_in_any_case_is_refused(client, admin_token, system):
    owner = _register(client, admin_token)
    resp = client.post("/patients?allow_duplicate=true", headers=auth(admin_token),
                       json=patient_body(identifiers=[{"system": system, "value": owner["mrn"]}]))
    doc = assert_problem(resp, 422)
    assert error_fields(doc) == {"identifiers"}
    assert _holders(owner["mrn"]) == [(owner["id"], "urn:patient-mgt:mrn")]
    assert _mrn_search(client, admin_token, f"mrn={owner['mrn']}") == [owner["id"]]


@pytest.mark.parametrize("system", VARIANTS)
def test_adding_another_patients_mrn_in_any_case_by_a_change_is_refused(client, admin_token, system):
    owner = _register(client, admin_token)
    other = _register(client, admin_token)
    patch = {"identifiers": [*other["identifiers"], {"system": system, "value": owner["mrn"]}]}
    resp = client.patch(f"/patients/{other['id']}", data=json.dumps(patch),
                        headers={**auth(admin_token), "Content-Type": MERGE_PATCH, "If-Match": 'W/"1"'})
    doc = assert_problem(resp, 422)
    assert error_fields(doc) == {f"identifiers.{len(other['identifiers'])}"}
    assert _holders(owner["mrn"]) == [(owner["id"], "urn:patient-mgt:mrn")]
    assert client.get(f"/patients/{other['id']}", headers=auth(admin_token)).get_json()["version"] == 1


def test_echoing_the_own_mrn_in_another_case_changes_nothing(client, admin_token):
    p = _register(client, admin_token)
    idents = [{**i, "system": "URN:PATIENT-MGT:MRN"} if i["system"] == "urn:patient-mgt:mrn" else i for i in p["identifiers"]]
    resp = client.patch(f"/patients/{p['id']}", data=json.dumps({"identifiers": idents}),
                        headers={**auth(admin_token), "Content-Type": MERGE_PATCH, "If-Match": 'W/"1"'})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["identifiers"] == p["identifiers"] and resp.get_json()["version"] == 1


@pytest.mark.parametrize("system", VARIANTS)
def test_a_fhir_create_with_another_patients_mrn_in_any_case_is_refused(client, admin_token, system):
    owner = _register(client, admin_token)
    body = fhir_patient(identifier=[{"system": system.strip(), "value": owner["mrn"]}])
    resp = client.post("/fhir/Patient", data=json.dumps(body), headers={**auth(admin_token), "Content-Type": FHIR_JSON})
    assert resp.status_code == 422 and resp.mimetype == FHIR_JSON, resp.get_data(as_text=True)
    assert [i.get("expression") for i in resp.get_json()["issue"][1:]] == [["Patient.identifier"]]
    assert _holders(owner["mrn"]) == [(owner["id"], "urn:patient-mgt:mrn")]


def test_an_identifier_search_in_the_mrns_system_in_any_case_finds_the_mrns_owner(client, admin_token):
    owner = _register(client, admin_token)
    for system in VARIANTS:
        assert _mrn_search(client, admin_token, f"identifier={system.strip()}|{owner['mrn']}") == [owner["id"]], system
        resp = client.get(f"/fhir/Patient?identifier={system.strip()}|{owner['mrn']}", headers=auth(admin_token))
        assert [e["resource"]["id"] for e in resp.get_json().get("entry", [])] == [owner["id"]], system
