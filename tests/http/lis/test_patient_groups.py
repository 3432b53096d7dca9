"""Several PATIENT_RESULT groups in one ORU: each applied as its own unit, all in the message's
transaction. A group that is itself invalid is rolled back alone: the others stay applied, the
message is quarantined with the invalid group's reason (group<n>:<reason>) so an operator sees it,
and a replay after the fix applies the rest without applying the others twice. State is read
through the API. The message is two real Aidbox results under one MSH
(tests/fixtures/hl7-fidelity/derived__ORU-R01__two-patients.hl7)."""

import uuid

import sqlalchemy as sa

from shared.auth import SYSTEM_CLI
from shared.db import unit_of_work
from shared.models import AuditEntry
from shared.services.merge import merge_patients
from tests.support.lis_fidelity import Api, send

TWO = "derived__ORU-R01__two-patients.hl7"


def _api(client, make_token) -> Api:
    return Api(client, make_token("lis:read", "lis:admin", "patients:read"))


def _second_without_identifier(data: bytes) -> bytes:
    head, sep, tail = data.partition(b"\nPID|1||TEST-0002")
    return head + b"\nPID|1|||" + tail.split(b"|", 1)[1] if sep else data  # PID-3 emptied


def test_each_patient_of_a_batch_style_result_is_applied(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    outcome = send(TWO, run)
    stored = api.message(outcome.message_id)
    assert (stored["status"], stored["error_code"]) == ("processed", None)
    delta = api.patient_by_identifier("HOSPITAL", f"TEST-0004-{run}")
    beta = api.patient_by_identifier("HOSPITAL", f"TEST-0002-{run}")
    assert set(stored["patient_ids"]) == {delta["id"], beta["id"]} and stored["patient_id"] == delta["id"]
    assert api.results(delta["id"]) == {f"FIL002-{run}": [("56117", None, ">90", "F")]}
    assert api.results(beta["id"]) == {f"26ORM-005CH00006-{run}": [("1237770270", None, "6.2", "F")]}
    # Reading the message is audited for both patients it concerned.
    with unit_of_work() as uow:
        entry = uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "lis.message.read")
                                    .order_by(AuditEntry.id.desc()).limit(1)).one()
    assert set(map(str, entry.patient_ids)) == {delta["id"], beta["id"]}


def test_an_invalid_group_is_visible_and_the_valid_one_applied(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    outcome = send(TWO, run, edit=_second_without_identifier)
    stored = api.message(outcome.message_id)
    assert (stored["status"], stored["error_code"]) == ("quarantined", "group2:missing_field:PID-3")
    assert "patient_groups_applied:1/2" in stored["warnings"]
    delta = api.patient_by_identifier("HOSPITAL", f"TEST-0004-{run}")
    assert stored["patient_ids"] == [delta["id"]]
    assert api.results(delta["id"]) == {f"FIL002-{run}": [("56117", None, ">90", "F")]}
    assert api.patient_by_identifier("HOSPITAL", f"TEST-0002-{run}") is None
    listed = api.get("/lis/messages", status="quarantined", limit=500)["items"]
    assert str(outcome.message_id) in {m["id"] for m in listed}


def test_a_group_refused_while_applying_is_replayed_after_the_fix_and_the_rest_is_not_applied_twice(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    # Two registered patients; the message's second group names both (PID-3 repeated): it cannot
    # be filed until an operator merges them.
    send("hl7/aidbox__ORU-R01__3.hl7", run)
    send("hl7/aidbox__ORU-R01__3.hl7", f"{run}b")
    beta = api.patient_by_identifier("HOSPITAL", f"TEST-0002-{run}")
    other = api.patient_by_identifier("HOSPITAL", f"TEST-0002-{run}b")

    def both_identifiers(data: bytes) -> bytes:
        return data.replace(f"PID|1||TEST-0002-{run}^^^HOSPITAL^MR|".encode(),
                            f"PID|1||TEST-0002-{run}^^^HOSPITAL^MR~TEST-0002-{run}b^^^HOSPITAL^MR|".encode())

    outcome = send(TWO, run, edit=both_identifiers)
    stored = api.message(outcome.message_id)
    assert (stored["status"], stored["error_code"]) == ("quarantined", "group2:identifier_conflict")
    delta = api.patient_by_identifier("HOSPITAL", f"TEST-0004-{run}")
    [egfr] = api.orders(delta["id"])
    assert egfr["version"] == 1

    with unit_of_work() as uow:
        merge_patients(uow, SYSTEM_CLI, uuid.UUID(other["id"]), uuid.UUID(beta["id"]))
    replay = api.post(f"/lis/messages/{outcome.message_id}/replay")
    assert replay.status_code == 200, replay.get_data(as_text=True)
    assert replay.get_json()["replayed"] is True
    stored = api.message(outcome.message_id)
    assert (stored["status"], stored["error_code"]) == ("processed", None)
    assert set(stored["patient_ids"]) == {delta["id"], beta["id"]}
    [again] = api.orders(delta["id"])
    assert (again["version"], [r["value"] for r in again["results"]]) == (1, [">90"])
    hba1c = {o["filler_number"]: o for o in api.orders(beta["id"])}
    assert [r["value"] for r in hba1c[f"26ORM-005CH00006-{run}"]["results"]] == ["6.2"]


def test_when_no_group_can_be_applied_nothing_is(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]

    def no_identifiers(data: bytes) -> bytes:
        data = _second_without_identifier(data)
        head, sep, tail = data.partition(b"\nPID|1||TEST-0004")
        return head + b"\nPID|1|||" + tail.split(b"|", 1)[1]

    outcome = send(TWO, run, edit=no_identifiers)
    stored = api.message(outcome.message_id)
    assert (stored["status"], stored["error_code"], stored["patient_ids"]) == (
        "quarantined", "group1:missing_field:PID-3", [])
    assert api.patient_by_identifier("HOSPITAL", f"TEST-0004-{run}") is None
