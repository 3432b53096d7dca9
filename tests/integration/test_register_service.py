import json
import uuid

import pytest
import sqlalchemy as sa

from shared.auth import SYSTEM_CLI
from shared.db import unit_of_work
from shared.errors import DuplicateIdentifier
from shared.events import catalog
from shared.models import AuditEntry, OutboxEvent, Patient, PatientIdentifier
from shared.mrn import is_valid_mrn
from shared.schemas.patients import PatientCreate
from shared.services.patients import register_patient


def new_patient(**extra):
    return PatientCreate.model_validate_json(
        json.dumps({"name": {"family": "Doe", "given": ["Jane"]}, "birth_date": "1980-05-06", **extra})
    )


def test_register_writes_patient_identifiers_audit_and_outbox_in_one_transaction(database_url):
    ident = {"system": "urn:test", "value": uuid.uuid4().hex}
    with unit_of_work() as uow:
        patient = register_patient(uow, SYSTEM_CLI, new_patient(identifiers=[ident]))
        pid, mrn = patient.id, patient.mrn
    assert is_valid_mrn(mrn)
    with unit_of_work() as uow:
        systems = set(uow.session.scalars(sa.select(PatientIdentifier.system).where(PatientIdentifier.patient_id == pid)))
        assert systems == {"urn:patient-mgt:mrn", "urn:test"}
        audit_rows = uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.patient_ids.contains([pid]))).all()
        assert [(a.action, a.outcome) for a in audit_rows] == [("patient.create", "success")]
        events = uow.session.scalars(sa.select(OutboxEvent).where(OutboxEvent.subject == str(pid))).all()
        assert [e.type for e in events] == [catalog.PATIENT_REGISTERED]
        assert events[0].data == {"patient_id": str(pid), "version": 1, "origin": "api"}
        assert events[0].published_at is None


def test_a_failed_registration_leaves_nothing_behind(database_url):
    ident = {"system": "urn:test", "value": uuid.uuid4().hex}
    with unit_of_work() as uow:
        first = register_patient(uow, SYSTEM_CLI, new_patient(identifiers=[ident])).id
    email = f"{uuid.uuid4().hex}@example.org"
    with pytest.raises(DuplicateIdentifier) as info, unit_of_work() as uow:
        register_patient(uow, SYSTEM_CLI, new_patient(identifiers=[ident], email=email))
    assert info.value.extensions["existing_patient_id"] == str(first)
    with unit_of_work() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(Patient).where(Patient.email == email)) == 0
