"""Helpers for the FHIR view's HTTP tests."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import AuditEntry, LabOrder, LabResult, PatientIdentifier
from shared.settings import get_settings
from tests.conftest import auth
from tests.support.fhir import validate

FHIR_JSON = "application/fhir+json"
# What a client (or an attacker relaying a victim) may claim: links must never be built on it.
HOSTILE_HOST = {"Host": "evil.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}


def fhir_base() -> str:
    """The FHIR base every link is built on: PUBLIC_BASE_URL + /fhir."""
    return get_settings().public_base_url + "/fhir"


def unique_family() -> str:
    return "Fhir" + uuid.uuid4().hex[:10]


def rest_patient(client: Any, token: str, **overrides: Any) -> dict[str, Any]:
    """Register through the registry's own REST route (what the FHIR view then reads)."""
    body: dict[str, Any] = {
        "name": {"family": unique_family(), "given": ["Ana", "María"]},
        "birth_date": "1981-02-03",
        "identifiers": [{"system": "urn:test:hospital", "value": uuid.uuid4().hex, "type": "PI"}],
    }
    body.update(overrides)
    resp = client.post("/patients?allow_duplicate=true", json=body, headers=auth(token))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def fhir_patient(family: str | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:test:partner", "value": uuid.uuid4().hex}],
        "name": [{"family": family or unique_family(), "given": ["Kofi"]}],
        "gender": "male",
        "birthDate": "1990-07-08",
    }
    body.update(overrides)
    return body


def fhir_ok(resp: Any, status: int = 200) -> dict[str, Any]:
    """A FHIR JSON response with ``status`` whose body validates; the body."""
    assert resp.status_code == status, resp.get_data(as_text=True)[:500]
    assert resp.mimetype == FHIR_JSON
    doc = resp.get_json()
    validate(doc)
    return doc


def outcome(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """An OperationOutcome with ``status`` (and first issue ``code``)."""
    doc = fhir_ok(resp, status)
    assert doc["resourceType"] == "OperationOutcome"
    if code is not None:
        assert doc["issue"][0]["code"] == code, doc
    return doc


def audit_rows(patient_id: Any, action: str) -> list[AuditEntry]:
    with unit_of_work() as uow:
        rows = list(uow.session.scalars(sa.select(AuditEntry).where(
            AuditEntry.patient_ids.contains([uuid.UUID(str(patient_id))]), AuditEntry.action == action)))
        uow.session.expunge_all()
    return rows


def patients_with_identifier(system: str, value: str) -> list[uuid.UUID]:
    with unit_of_work() as uow:
        return list(uow.session.scalars(sa.select(PatientIdentifier.patient_id).where(
            PatientIdentifier.system == system, PatientIdentifier.value == value)))


def add_order(patient_id: Any, *, status: str = "final", code: tuple[str, str, str] = ("LN", "24323-8", "CMP"),
              results: list[dict[str, Any]] = ()) -> uuid.UUID:
    """A lab order and its results as the LIS consumer stores them (HL7 v2 vocabularies)."""
    now = datetime.now(timezone.utc)
    order_id = uuid.uuid4()
    with unit_of_work() as uow:
        uow.session.add(LabOrder(
            id=order_id, patient_id=uuid.UUID(str(patient_id)), placer_namespace="HIS", placer_number=f"P{uuid.uuid4().hex[:8]}",
            filler_namespace="LAB", filler_number=f"F{uuid.uuid4().hex[:8]}", code_system=code[0], code=code[1],
            code_display=code[2], status=status, priority="stat", ordered_at=now, source="lis", version=1,
            created_at=now, updated_at=now))
        uow.flush()
        for n, r in enumerate(results):
            uow.session.add(LabResult(
                id=uuid.uuid4(), order_id=order_id, patient_id=uuid.UUID(str(patient_id)), result_key=f"k{n}",
                version=1, created_at=now, updated_at=now, **r))
    return order_id
