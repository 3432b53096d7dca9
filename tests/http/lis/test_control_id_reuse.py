"""A reused control id (MSH-4 + MSH-10) with different content is applied as its own message, with the
warning control_id_reused naming the earlier message; the same content again stays a duplicate.

The issue's case: three real messages from sending facility HOSPITAL, all with MSH-10 TEST-MSG-001
(Aidbox's test fixtures), about three patients — the second an HbA1c. Every test tags the control
id, identifiers and order numbers with one run tag, so all three still share one control id.
"""

import threading
import uuid

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import LisControlId
from tests.support.hl7_tag import tag
from tests.support.lis_fidelity import Api, raw, send
from tests.support.lis_ingest import one

EGFR, HBA1C, SPECIMEN = "hl7/aidbox__ORU-R01__2.hl7", "hl7/aidbox__ORU-R01__3.hl7", "aidbox__ORU-R01__with-specimen.hl7"


def _api(client, make_token) -> Api:
    return Api(client, make_token("lis:read", "patients:read"))


def test_a_different_message_under_a_used_control_id_is_applied_with_a_warning(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    before = api.get("/lis/status")["warnings"]["control_id_reused"]
    first, second = send(EGFR, run), send(HBA1C, run)
    assert (first.status, second.status) == ("processed", "processed")

    stored = api.message(second.message_id)
    assert stored["control_id"] == f"TEST-MSG-001-{run}" == api.message(first.message_id)["control_id"]
    assert stored["sending_facility"] == "HOSPITAL"
    assert f"control_id_reused:{first.message_id}" in stored["warnings"]
    assert stored["duplicate_of"] is None and stored["error_code"] is None
    assert not [w for w in api.message(first.message_id)["warnings"] if w.startswith("control_id_reused")]

    # The second patient and the HbA1c exist, filed under that patient.
    patient = api.patient_by_identifier("HOSPITAL", f"TEST-0002-{run}")
    assert patient is not None and stored["patient_id"] == patient["id"]
    assert (patient["name"]["family"], patient["birth_date"]) == ("TESTPATIENT", "2000-02-02")
    assert api.results(patient["id"]) == {f"26ORM-005CH00006-{run}": [("1237770270", None, "6.2", "F")]}
    eGFR_patient = api.patient_by_identifier("HOSPITAL", f"TEST-0004-{run}")
    assert api.results(eGFR_patient["id"]) == {f"FIL002-{run}": [("56117", None, ">90", "F")]}

    after = api.get("/lis/status")["warnings"]["control_id_reused"]
    assert after["total"] == before["total"] + 1 and after["last_24h"] == before["last_24h"] + 1
    listed = api.get("/lis/messages", warning="control_id_reused", limit=500)["items"]
    ids = {m["id"] for m in listed}
    assert str(second.message_id) in ids and str(first.message_id) not in ids
    assert all(any(w.startswith("control_id_reused") for w in m["warnings"]) for m in listed)


def test_every_later_message_names_the_first_one_under_that_control_id(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    first, second, third = send(EGFR, run), send(HBA1C, run), send(SPECIMEN, run)
    assert [o.status for o in (first, second, third)] == ["processed"] * 3
    assert f"control_id_reused:{first.message_id}" in api.message(third.message_id)["warnings"]
    patient = api.patient_by_identifier("HOSPITAL", f"TEST-0003-{run}")
    assert api.results(patient["id"]) == {f"FIL-SPECIMEN-001-{run}": [("51998", None, "4.2", "F")]}


def test_the_same_content_again_stays_a_duplicate_whatever_its_terminators_and_framing(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    first = send(EGFR, run)
    copies = [
        send(EGFR, run, edit=lambda b: b.replace(b"\n", b"\r\n")),
        send(EGFR, run, edit=lambda b: b"\x0b" + b.replace(b"\n", b"\r") + b"\x1c\r"),
        send(EGFR, run, edit=lambda b: b.replace(b"\n", b"\r") + b"\r\r"),
    ]
    for copy in copies:
        stored = api.message(copy.message_id)
        assert (stored["status"], stored["error_code"], stored["duplicate_of"]) == (
            "duplicate", "same_control_id", str(first.message_id))
        assert not [w for w in stored["warnings"] if w.startswith("control_id_reused")]
    patient = api.patient_by_identifier("HOSPITAL", f"TEST-0004-{run}")
    [order] = api.orders(patient["id"])
    assert [r["value"] for r in order["results"]] == [">90"] and order["version"] == 1


def test_a_quarantined_message_claims_nothing_and_its_fixed_copy_applies_without_a_warning(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    broken = send(EGFR, run, edit=lambda b: b.replace(b"\nOBR|", b"\nZZZ|").replace(b"\nORC|", b"\nZZY|"))
    assert (broken.status, broken.reason) == ("quarantined", "missing_segment:OBR")
    fixed = send(EGFR, run)
    stored = api.message(fixed.message_id)
    assert stored["status"] == "processed"
    assert not [w for w in stored["warnings"] if w.startswith("control_id_reused")]


def test_two_different_messages_under_one_control_id_at_once_are_both_applied_and_one_warns(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    messages = [tag(raw(name), run) for name in (EGFR, HBA1C)]
    barrier, outcomes = threading.Barrier(2), [None, None]

    def deliver(i: int) -> None:
        barrier.wait()
        outcomes[i] = one(messages[i])

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [o.status for o in outcomes] == ["processed", "processed"]
    warned = [(o, w) for o in outcomes for w in api.message(o.message_id)["warnings"] if w.startswith("control_id_reused")]
    assert len(warned) == 1
    [(late, warning)] = warned
    [early] = [o for o in outcomes if o is not late]
    assert warning == f"control_id_reused:{early.message_id}"


def test_a_claim_made_before_digests_is_compared_by_its_stored_bytes(client, make_token):
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]
    first = send(EGFR, run)
    with unit_of_work() as uow:  # as migration 0010 left the claims it found
        uow.session.execute(sa.update(LisControlId).where(LisControlId.message_id == first.message_id)
                            .values(content_sha256=""))
    again = send(EGFR, run, edit=lambda b: b.replace(b"\n", b"\r"))
    assert api.message(again.message_id)["duplicate_of"] == str(first.message_id)
    other = send(HBA1C, run)
    assert f"control_id_reused:{first.message_id}" in api.message(other.message_id)["warnings"]
    with unit_of_work() as uow:
        digests = uow.session.scalars(sa.select(LisControlId.content_sha256).where(
            LisControlId.control_id == f"TEST-MSG-001-{run}")).all()
    assert len(digests) == 2 and "" not in digests


def test_orders_without_numbers_of_two_messages_under_one_control_id_stay_apart(client, make_token):
    # Such an order is keyed by (MSH-4, MSH-10, position); the second message's must not be the first's.
    api, run = _api(client, make_token), uuid.uuid4().hex[:8]

    def numberless(data: bytes) -> bytes:
        lines = [line for line in data.split(b"\n") if not line.startswith(b"ORC|")]
        return b"\n".join(b"OBR|1|||" + line.split(b"|", 4)[4] if line.startswith(b"OBR|") else line for line in lines)

    first, second = send(EGFR, run, edit=numberless), send(HBA1C, run, edit=numberless)
    assert (first.status, second.status) == ("processed", "processed")
    for outcome, value in ((first, ">90"), (second, "6.2")):
        [order] = api.orders(outcome.patient_id)
        assert order["placer_number"] is None and [r["value"] for r in order["results"]] == [value]


def test_the_warning_filter_takes_a_warning_code_only(client, make_token):
    api = _api(client, make_token)
    assert api.client.get("/lis/messages", query_string={"warning": "x' OR 1=1"}, headers=api.headers).status_code == 422
    assert api.get("/lis/messages", warning="no_such_warning")["items"] == []
