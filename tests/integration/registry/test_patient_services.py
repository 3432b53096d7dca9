"""Update and deactivate against PostgreSQL: conditional writes, identifiers, name index, versions."""

import uuid

import pytest
import sqlalchemy as sa

from shared.auth import SYSTEM_CLI
from shared.db import unit_of_work
from shared.errors import Conflict, DuplicateIdentifier, PreconditionFailed, ValidationFailed
from shared.events import catalog
from shared.models import MRN_SYSTEM, OutboxEvent, PatientIdentifier, PatientNameToken, ResourceVersion
from shared.services.patients import deactivate_patient, load_patient, update_patient
from tests.integration.registry.factories import new_patient, run_in_thread, unique_family, wait_until_blocked


def versions_of(pid):
    with unit_of_work() as uow:
        return uow.session.execute(
            sa.select(ResourceVersion.version, ResourceVersion.change, ResourceVersion.snapshot)
            .where(ResourceVersion.resource_type == "patient", ResourceVersion.resource_id == pid)
            .order_by(ResourceVersion.version)).all()


def test_a_writer_blocked_behind_a_commit_from_the_same_version_gets_412(database_url):
    """The second writer passes the early version check (the first has not committed), then its
    ``UPDATE … WHERE version = 1`` waits on the row lock and finds 0 rows once the first commits."""
    pid = new_patient()
    with unit_of_work() as first:
        update_patient(first, SYSTEM_CLI, pid, {"phone": "+14155550100"}, expected_version=1)
        thread, out = run_in_thread(lambda: _patch(pid, {"phone": "+14155550199"}, 1))
        wait_until_blocked()
    thread.join(30)
    assert isinstance(out.get("error"), PreconditionFailed)
    with unit_of_work() as uow:
        patient = load_patient(uow, pid)
        assert (patient.version, patient.phone) == (2, "+14155550100")
    assert [v.change for v in versions_of(pid)] == ["create", "update"]


def _patch(pid, patch, version):
    with unit_of_work() as uow:
        return update_patient(uow, SYSTEM_CLI, pid, patch, expected_version=version).version


def test_identifiers_are_replaced_as_a_list_and_the_mrn_is_kept(database_url):
    keep, drop, new = (uuid.uuid4().hex for _ in range(3))
    pid = new_patient(identifiers=[{"system": "urn:a", "value": keep}, {"system": "urn:b", "value": drop}])
    _patch(pid, {"identifiers": [{"system": "urn:a", "value": keep, "type": "XX"}, {"system": "urn:c", "value": new}]}, 1)
    with unit_of_work() as uow:
        rows = set(uow.session.execute(sa.select(PatientIdentifier.system, PatientIdentifier.value, PatientIdentifier.type)
                                       .where(PatientIdentifier.patient_id == pid)).all())
        mrn = load_patient(uow, pid).mrn
    assert rows == {(MRN_SYSTEM, mrn, "MR"), ("urn:a", keep, "XX"), ("urn:c", new, None)}


def test_an_identifier_of_another_patient_is_a_409_and_changes_nothing(database_url):
    taken = uuid.uuid4().hex
    owner = new_patient(identifiers=[{"system": "urn:a", "value": taken}])
    pid = new_patient()
    with pytest.raises(DuplicateIdentifier) as info:
        _patch(pid, {"phone": "+14155550111", "identifiers": [{"system": "urn:a", "value": taken}]}, 1)
    assert info.value.extensions["existing_patient_id"] == str(owner)
    with unit_of_work() as uow:
        patient = load_patient(uow, pid)
        assert (patient.version, patient.phone) == (1, None)


def test_mrn_identifiers_cannot_be_added_and_merged_patients_cannot_change(database_url):
    pid = new_patient()
    with pytest.raises(ValidationFailed) as info:
        _patch(pid, {"identifiers": [{"system": MRN_SYSTEM, "value": "100000009"}]}, 1)
    assert info.value.errors[0]["field"] == "identifiers.0"
    with unit_of_work() as uow:
        mrn = load_patient(uow, pid).mrn
    # Echoing the patient's own MRN back is fine and changes nothing.
    assert _patch(pid, {"identifiers": [{"system": MRN_SYSTEM, "value": mrn, "type": "MR"}]}, 1) == 1


def test_a_name_change_rewrites_the_search_tokens(database_url):
    old, new = unique_family(), unique_family()
    pid = new_patient(name={"family": old, "given": ["Zoë"]})
    _patch(pid, {"name": {"family": new + "-Núñez"}}, 1)
    with unit_of_work() as uow:
        tokens = set(uow.session.execute(sa.select(PatientNameToken.kind, PatientNameToken.token)
                                         .where(PatientNameToken.patient_id == pid)).all())
    assert tokens == {("family", new.lower()), ("family", "nunez"), ("family", new.lower() + "nunez"), ("given", "zoe")}


def test_update_records_versions_and_an_event_naming_fields_only(database_url):
    pid = new_patient(phone="+14155550123")
    _patch(pid, {"phone": None, "communication": {"sms": True}}, 1)
    recorded = versions_of(pid)
    assert [(v.version, v.change) for v in recorded] == [(1, "create"), (2, "update")]
    assert recorded[0].snapshot["phone"] == "+14155550123" and recorded[1].snapshot["phone"] is None
    with unit_of_work() as uow:
        events = uow.session.execute(sa.select(OutboxEvent.type, OutboxEvent.data)
                                     .where(OutboxEvent.subject == str(pid)).order_by(OutboxEvent.seq)).all()
    assert events[-1] == (catalog.PATIENT_UPDATED, {"patient_id": str(pid), "version": 2,
                                                    "changed": ["communication", "phone"]})


def test_a_missing_version_row_is_kept_as_baseline_before_the_change(database_url):
    """A patient whose current version was written without a version row (an older path) still
    keeps that version when it next changes."""
    pid = new_patient()
    with unit_of_work() as uow:
        uow.session.execute(sa.text("ALTER TABLE resource_versions DISABLE TRIGGER resource_versions_append_only"))
        uow.session.execute(sa.delete(ResourceVersion).where(ResourceVersion.resource_id == pid))
        uow.session.execute(sa.text("ALTER TABLE resource_versions ENABLE TRIGGER resource_versions_append_only"))
    _patch(pid, {"sex": "female"}, 1)
    assert [(v.version, v.change, v.snapshot["sex"]) for v in versions_of(pid)] == [(1, "baseline", "unknown"),
                                                                                    (2, "update", "female")]


def test_versions_are_append_only(database_url):
    pid = new_patient()
    with pytest.raises(sa.exc.DBAPIError), unit_of_work() as uow:
        uow.session.execute(sa.update(ResourceVersion).where(ResourceVersion.resource_id == pid).values(change="x"))
    with pytest.raises(sa.exc.DBAPIError), unit_of_work() as uow:
        uow.session.execute(sa.delete(ResourceVersion).where(ResourceVersion.resource_id == pid))
    assert [v.change for v in versions_of(pid)] == ["create"]


def test_deactivate_is_conditional_and_idempotent(database_url):
    pid = new_patient()
    with pytest.raises(PreconditionFailed), unit_of_work() as uow:
        deactivate_patient(uow, SYSTEM_CLI, pid, expected_version=7)
    for _ in range(2):
        with unit_of_work() as uow:
            patient = deactivate_patient(uow, SYSTEM_CLI, pid, expected_version=None)
            assert (patient.status, patient.version) == ("inactive", 2)
    with unit_of_work() as uow:
        types = uow.session.scalars(sa.select(OutboxEvent.type).where(OutboxEvent.subject == str(pid))).all()
    assert types.count(catalog.PATIENT_DEACTIVATED) == 1
    # reactivation is a patch
    assert _patch(pid, {"status": "active"}, 2) == 3
    with pytest.raises(Conflict):
        with unit_of_work() as uow:
            uow.session.execute(sa.text("UPDATE patients SET status='merged', merged_into=:t WHERE id=:p"),
                                {"t": new_patient(), "p": pid})
        _patch(pid, {"sex": "male"}, 4)


def test_a_partial_address_written_by_another_path_still_reads(database_url):
    from shared.services.patients import to_resource  # noqa: PLC0415

    pid = new_patient()
    with unit_of_work() as uow:
        uow.session.execute(sa.text("UPDATE patients SET address = '{\"city\": \"Lima\"}' WHERE id = :p"), {"p": pid})
    with unit_of_work() as uow:
        address = to_resource(load_patient(uow, pid)).address
    assert address is not None and address.model_dump() == {"line": [], "city": "Lima", "state": None,
                                                              "postal_code": None, "country": None}
