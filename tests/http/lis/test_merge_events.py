"""ADT A34, A36, A39 and A40 applied as merges with the guarantees of the API's merge: the MRG patient
merged into the PID patient (identifiers, orders and results moved), versions and an audit entry
written, the merged_into chain followed, idempotent. The message is a real IHE Connectathon PIX
merge (tests/fixtures/hl7-fidelity/ihe__ADT-A40__pix-merge.hl7) — for A34/A36/A39 with MSH-9
rewritten, nothing else. State is read through the API."""

import uuid

import pytest
import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import AuditEntry
from tests.support.lis_fidelity import Api, send
from tests.support.lis_ingest import hl7, one

MERGE = "ihe__ADT-A40__pix-merge.hl7"
SYSTEM = "IBOT"
EVENTS = {"A40": b"ADT^A40^ADT_A39", "A39": b"ADT^A39^ADT_A39", "A34": b"ADT^A34^ADT_A30", "A36": b"ADT^A36^ADT_A30"}


def _api(client, make_token) -> Api:
    return Api(client, make_token("lis:read", "patients:read", "patients:write"))


def _as(event: str):
    return lambda data: data.replace(b"ADT^A40^ADT_A39", EVENTS[event])


def _register(run: str, number: str, family: str) -> uuid.UUID:
    outcome = one(hl7(f"MSH|^~\\&|REG|IBM|PIX|ALLSCRIPTS|20090224104000||ADT^A04^ADT_A01|{uuid.uuid4().hex}|P|2.3.1",
                      f"PID|||{number}-{run}^^^{SYSTEM}&1.3.6.1.4.1.21367.2009.1.2.370&ISO||{family}^MARION||19661109|F"))
    assert outcome.status == "processed"
    return outcome.patient_id


def _result_for(run: str, number: str) -> None:
    outcome = one(hl7(f"MSH|^~\\&|LAB|IBM|PIX|ALLSCRIPTS|20090224104100||ORU^R01|{uuid.uuid4().hex}|P|2.3.1",
                      f"PID|||{number}-{run}^^^{SYSTEM}", f"OBR|1|ORD-{run}|FIL-{run}|GLU^Glucose^L",
                      "OBX|1|NM|GLU^Glucose^L||5.5|mmol/L|||||F"))
    assert outcome.status == "processed"


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_the_merge_event_merges_the_mrg_patient_into_the_pid_patient(client, make_token, event):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    target, source = _register(run, "103", "OTHER_IBM_BRIDGE"), _register(run, "102", "DUPLICATE")
    _result_for(run, "102")
    outcome = send(MERGE, run, edit=_as(event))
    stored = api.message(outcome.message_id)
    assert (stored["status"], stored["message_type"]) == ("processed", f"ADT^{event}")
    assert "merge_not_applied" not in " ".join(stored["warnings"])

    merged = api.get(f"/patients/{source}")
    assert (merged["status"], merged["merged_into"]) == ("merged", str(target))
    survivor = api.get(f"/patients/{target}")
    assert {(i["system"], i["value"]) for i in survivor["identifiers"]} >= {(SYSTEM, f"102-{run}"), (SYSTEM, f"103-{run}")}
    assert api.results(target) == {f"FIL-{run}": [("GLU", None, "5.5", "F")]}
    assert [v["change"] for v in api.get(f"/patients/{source}/versions")["items"]][0] == "merge"
    assert "merge-target" in [v["change"] for v in api.get(f"/patients/{target}/versions")["items"]]
    with unit_of_work() as uow:
        audited = uow.session.scalars(sa.select(AuditEntry.principal).where(
            AuditEntry.action == "patient.merge", AuditEntry.patient_ids.contains([source, target]))).all()
    assert audited == ["system:lis-consumer"]

    # The same message again is a duplicate; the merge sent once more (another control id) finds it done.
    assert api.message(send(MERGE, run, edit=_as(event)).message_id)["status"] == "duplicate"
    again = send(MERGE, run, edit=lambda b: _as(event)(b).replace(b"|4143361005927619863-", b"|4143361005927619864-"))
    stored = api.message(again.message_id)
    assert stored["status"] == "processed" and "merge_already_applied" in stored["warnings"]
    versions = api.get(f"/patients/{target}/versions")["items"]
    assert [v["change"] for v in versions].count("merge-target") == 1


def test_a_merge_naming_a_merged_patient_follows_the_chain_to_the_survivor(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    target, source = _register(run, "103", "OTHER_IBM_BRIDGE"), _register(run, "102", "DUPLICATE")
    survivor = _register(run, "200", "SURVIVOR")
    # 103 was merged into 200 through the API; then the LIS sends A39 103 ← 102.
    response = api.post(f"/patients/{target}/merge", json={"target_id": str(survivor)})
    assert response.status_code == 200, response.get_data(as_text=True)
    outcome = send(MERGE, run, edit=_as("A39"))
    assert outcome.status == "processed" and outcome.patient_id == survivor
    merged = api.get(f"/patients/{source}")
    assert (merged["status"], merged["merged_into"]) == ("merged", str(survivor))


def test_other_merge_events_update_demographics_only(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    target, source = _register(run, "103", "OTHER_IBM_BRIDGE"), _register(run, "102", "DUPLICATE")
    outcome = send(MERGE, run, edit=lambda b: b.replace(b"ADT^A40^ADT_A39", b"ADT^A35^ADT_A30"))
    stored = api.message(outcome.message_id)
    assert stored["status"] == "processed" and "merge_not_applied:A35" in stored["warnings"]
    assert api.get(f"/patients/{source}")["status"] == "active"
    assert api.get(f"/patients/{target}")["status"] == "active"
