"""merge_patients against PostgreSQL: what moves, idempotency, refusals, and real concurrency."""

import threading
import uuid

import pytest
import sqlalchemy as sa

from shared.auth import SYSTEM_CLI
from shared.db import unit_of_work
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.events import catalog
from shared.models import (
    AuditEntry, HistoryEntry, LabOrder, LabResult, OutboxEvent, PatientIdentifier, PatientMerge, ResourceVersion,
)
from shared.services.merge import merge_patients, resolve_merged
from shared.services.patients import deactivate_patient, load_patient
from tests.integration.registry.factories import (
    new_entry, new_order_with_result, new_patient, run_in_thread, wait_until_blocked,
)


def merge(source, target):
    with unit_of_work() as uow:
        return merge_patients(uow, SYSTEM_CLI, source, target)


def test_merge_moves_everything_and_records_it(database_url):
    ident = uuid.uuid4().hex
    source = new_patient(identifiers=[{"system": "urn:lab", "value": ident}])
    target = new_patient()
    entry = new_entry(source)
    order_id, result_id = new_order_with_result(source)
    with unit_of_work() as uow:
        source_mrn = load_patient(uow, source).mrn

    result = merge(source, target)

    assert result.moved == {"identifiers": 2, "history": 1, "orders": 1, "results": 1} and not result.already_merged
    assert (result.source.status, result.source.merged_into, result.source.version) == ("merged", target, 2)
    assert result.target.version == 2
    with unit_of_work() as uow:
        s = uow.session
        owners = dict(s.execute(sa.select(PatientIdentifier.value, PatientIdentifier.patient_id)
                                .where(PatientIdentifier.value.in_([ident, source_mrn]))).all())
        assert owners == {ident: target, source_mrn: target}
        assert s.get(HistoryEntry, entry).patient_id == target and s.get(HistoryEntry, entry).version == 2
        assert s.get(LabOrder, order_id).patient_id == target and s.get(LabResult, result_id).patient_id == target
        record = s.get(PatientMerge, source)
        assert (record.target_id, record.merged_by, record.moved) == (target, SYSTEM_CLI.name, result.moved)
        changes = s.execute(sa.select(ResourceVersion.resource_id, ResourceVersion.version, ResourceVersion.change)
                            .where(ResourceVersion.resource_id.in_([source, target, entry]))).all()
        assert {(source, 2, "merge"), (target, 2, "merge-target"), (entry, 2, "move")} <= set(changes)
        merged_event = s.execute(sa.select(OutboxEvent.data).where(OutboxEvent.subject == str(source),
                                                                   OutboxEvent.type == catalog.PATIENT_MERGED)).scalar_one()
        assert merged_event == {"patient_id": str(source), "target_id": str(target), "moved": result.moved}
        audited = s.execute(sa.select(AuditEntry.patient_ids, AuditEntry.details)
                            .where(AuditEntry.action == "patient.merge", AuditEntry.patient_ids.contains([source]))).one()
        assert audited.patient_ids == [source, target] and audited.details == {"moved": result.moved, "flattened": 0}
    with unit_of_work() as uow:
        assert resolve_merged(uow, source) == target and resolve_merged(uow, target) == target


def test_repeating_a_merge_answers_the_same_and_moves_nothing(database_url):
    source, target = new_patient(), new_patient()
    first = merge(source, target)
    again = merge(source, target)
    assert again.already_merged and again.moved == first.moved and again.merged_at == first.merged_at
    assert again.source.version == first.source.version
    with unit_of_work() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent).where(
            OutboxEvent.subject == str(source), OutboxEvent.type == catalog.PATIENT_MERGED)) == 1


def test_refusals(database_url):
    source, target, other = new_patient(), new_patient(), new_patient()
    with pytest.raises(ValidationFailed) as info:
        merge(source, source)
    assert info.value.errors[0]["code"] == "merge_into_self"
    with pytest.raises(NotFound):
        merge(uuid.uuid4(), target)
    with pytest.raises(ValidationFailed) as info:
        merge(source, uuid.uuid4())
    assert info.value.errors[0]["field"] == "target_id"
    merge(source, target)
    with pytest.raises(Conflict) as info:
        merge(source, other)  # already merged elsewhere
    assert info.value.extensions["merged_into"] == str(target)
    with pytest.raises(Conflict) as info:
        merge(other, source)  # into a merged patient
    assert info.value.extensions["target_merged_into"] == str(target)
    with unit_of_work() as uow:
        deactivate_patient(uow, SYSTEM_CLI, target, expected_version=None)
    with pytest.raises(Conflict):
        merge(other, target)  # into an inactive patient
    with unit_of_work() as uow:
        assert load_patient(uow, other).status == "active"


def _race(*pairs):
    barrier = threading.Barrier(len(pairs))
    outcomes: list = [None] * len(pairs)

    def run(i, s, t):
        barrier.wait()
        try:
            outcomes[i] = merge(s, t)
        except Conflict as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i, s, t)) for i, (s, t) in enumerate(pairs)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    return outcomes


def test_concurrent_merges_of_one_source_into_two_targets_one_wins(database_url):
    source, b, c = new_patient(), new_patient(), new_patient()
    outcomes = _race((source, b), (source, c))
    wins = [o for o in outcomes if not isinstance(o, Conflict)]
    assert len(wins) == 1 and sum(isinstance(o, Conflict) for o in outcomes) == 1
    with unit_of_work() as uow:
        assert load_patient(uow, source).merged_into == wins[0].target.id


def test_crossed_concurrent_merges_do_not_deadlock_and_one_wins(database_url):
    a, b = new_patient(), new_patient()
    outcomes = _race((a, b), (b, a))
    assert sum(isinstance(o, Conflict) for o in outcomes) == 1
    with unit_of_work() as uow:
        statuses = sorted(load_patient(uow, p).status for p in (a, b))
    assert statuses == ["active", "merged"]


def test_concurrent_identical_merges_both_answer_the_same(database_url):
    source, target = new_patient(), new_patient()
    outcomes = _race((source, target), (source, target))
    assert sorted(o.already_merged for o in outcomes) == [False, True]
    assert outcomes[0].moved == outcomes[1].moved


def test_history_added_during_a_merge_waits_and_is_refused(database_url):
    """add_entry takes FOR KEY SHARE on the patient: it waits for the merge, then sees it merged."""
    source, target = new_patient(), new_patient()
    with unit_of_work() as uow:
        merge_patients(uow, SYSTEM_CLI, source, target)
        thread, out = run_in_thread(lambda: new_entry(source))
        wait_until_blocked()
    thread.join(30)
    assert isinstance(out.get("error"), Conflict)
    with unit_of_work() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(HistoryEntry)
                                  .where(HistoryEntry.patient_id == source)) == 0
