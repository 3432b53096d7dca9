"""Which patient a message is about: identifiers only, never demographics; merges followed."""

import datetime as dt
import uuid

import sqlalchemy as sa

from shared.auth import SYSTEM_CLI
from shared.db import unit_of_work
from shared.lis import operator
from shared.models import PatientMerge
from shared.schemas.patients import PatientCreate
from shared.services.duplicates import find_duplicates
from shared.services.merge import merge_patients
from shared.services.patients import register_patient
from tests.support import lis_db
from tests.support.lis_ingest import Feed, hl7, one


def _oru(f: Feed, pid: str, order: str, value: str = "4.2", when: str = "20260101110000") -> bytes:
    return hl7(f.msh("ORU^R01", when), pid, f"ORC|RE|{f.id(order)}", f"OBR|1|{f.id(order)}||2823-3^K^LN",
               f"OBX|1|NM|2823-3^K^LN||{value}|mmol/L|||||F")


def test_a_new_identifier_joins_the_patient_that_holds_another_one(database_url):
    f = Feed()
    first = one(hl7(f.msh("ADT^A04", "20260101100000"), f.pid("MRN1")))
    second = one(hl7(f.msh("ADT^A08", "20260101110000"), f.pid("MRN1", extra=f"~{f.id('SSN')}^^^SSA^SS")))
    assert first.patient_id == second.patient_id and second.status == "processed"
    p = lis_db.patient(first.patient_id)
    assert p["identifiers"] == {(f.id("MRN1"), f.facility, "MR"), (f.id("SSN"), "SSA", "SS")}
    assert lis_db.outbox_types(first.patient_id)[0] == "org.patientmgt.lis.patient.created.v1"


def test_identifiers_of_two_patients_quarantine_until_an_operator_merges_them(database_url):
    f = Feed()
    a = one(hl7(f.msh("ADT^A04", "20260101100000"), f.pid("A")))
    b = one(hl7(f.msh("ADT^A04", "20260101100100"), f.pid("B")))
    both = one(_oru(f, f.pid("A", extra=f"~{f.id('B')}^^^{f.facility}^MR"), "ORD1"))
    assert (both.status, both.reason, both.patient_id) == ("quarantined", "identifier_conflict", None)
    assert lis_db.order_by_number(placer=f.id("ORD1")) is None  # nothing was filed
    row = lis_db.message(both.message_id)
    assert row.raw and row.message_type == "ORU^R01" and row.control_id.startswith(f.tag)
    with unit_of_work() as uow:
        merge_patients(uow, SYSTEM_CLI, b.patient_id, a.patient_id)
    outcome, replayed = operator.replay(SYSTEM_CLI, both.message_id)
    assert replayed and outcome.status == "processed" and outcome.patient_id == a.patient_id
    assert lis_db.order_by_number(placer=f.id("ORD1"))["patient_id"] == a.patient_id
    assert lis_db.message(both.message_id).attempts == 2


def test_a_message_for_a_merged_away_patient_goes_to_the_survivor(database_url):
    f = Feed()
    a = one(hl7(f.msh("ADT^A04", "20260101100000"), f.pid("A")))
    b = one(hl7(f.msh("ADT^A04", "20260101100100"), f.pid("B")))
    with unit_of_work() as uow:
        merge_patients(uow, SYSTEM_CLI, b.patient_id, a.patient_id)
    later = one(_oru(f, f.pid("B"), "ORD1"))
    assert later.patient_id == a.patient_id
    assert lis_db.order_by_number(placer=f.id("ORD1"))["patient_id"] == a.patient_id


def test_a40_merges_the_mrg_patient_into_the_pid_patient(database_url):
    f = Feed()
    survivor = one(hl7(f.msh("ADT^A04", "20260101100000"), f.pid("MR1", name="KEEP^ME")))
    duplicate = one(hl7(f.msh("ADT^A04", "20260101100100"), f.pid("MR2", name="KEEP^ME")))
    one(_oru(f, f.pid("MR2"), "ORD2"))
    merge = hl7(f.msh("ADT^A40^ADT_A39", "20260101120000"), "EVN|A40|20260101120000", f.pid("MR1"),
                f"MRG|{f.id('MR2')}^^^{f.facility}^MR")
    outcome = one(merge)
    assert (outcome.status, outcome.patient_id) == ("processed", survivor.patient_id)
    source = lis_db.patient(duplicate.patient_id)
    assert (source["status"], source["merged_into"]) == ("merged", survivor.patient_id)
    assert (f.id("MR2"), f.facility, "MR") in lis_db.patient(survivor.patient_id)["identifiers"]
    assert lis_db.order_by_number(placer=f.id("ORD2"))["patient_id"] == survivor.patient_id
    with unit_of_work() as uow:
        assert uow.session.get(PatientMerge, duplicate.patient_id).merged_by == "system:lis-consumer"
    # The same merge sent again (new control id): nothing left to merge.
    again = one(hl7(f.msh("ADT^A40^ADT_A39", "20260101120500"), f.pid("MR1"), f"MRG|{f.id('MR2')}^^^{f.facility}^MR"))
    assert again.status == "processed" and "merge_already_applied" in lis_db.message(again.message_id).warnings


def test_a_probable_duplicate_is_flagged_not_merged(database_url):
    family = f"Dup{uuid.uuid4().hex[:8]}"
    with unit_of_work() as uow:
        existing = register_patient(uow, SYSTEM_CLI, PatientCreate.model_validate_json(
            f'{{"name": {{"family": "{family}", "given": ["Ana"]}}, "birth_date": "1970-05-06"}}'))
    f = Feed()
    outcome = one(hl7(f.msh("ADT^A04", "20260101100000"), f.pid("LISMRN", name=f"{family}^Ana", born="19700506")))
    assert outcome.status == "processed" and outcome.patient_id != existing.id
    assert "probable_duplicate" in lis_db.message(outcome.message_id).warnings
    assert lis_db.patient(existing.id)["status"] == "active"
    with unit_of_work() as uow:
        created = uow.session.get(type(existing), outcome.patient_id)
        assert [d.patient_id for d in find_duplicates(uow, created)] == [existing.id]


def test_a_patient_without_name_or_birth_date_is_still_created(database_url):
    f = Feed()
    outcome = one(hl7(f.msh("ORU^R01", "20260101100000"), f"PID|1||{f.id('X')}^^^{f.facility}",
                      f"OBR|1|{f.id('O')}||GLU^Glucose^L", "OBX|1|NM|GLU^Glucose^L||99|mg/dL|||||F"))
    p = lis_db.patient(outcome.patient_id)
    assert (p["family"], p["given"], p["birth_date"], p["sex"], p["source"]) == ("", [], None, "unknown", "lis")


def test_an_order_under_another_patient_is_never_refiled(database_url):
    f = Feed()
    one(_oru(f, f.pid("A"), "ORD1"))
    other = one(_oru(f, f.pid("B"), "ORD1", value="9.9", when="20260101120000"))
    assert (other.status, other.reason) == ("quarantined", "order_patient_mismatch")
    order = lis_db.order_by_number(placer=f.id("ORD1"))
    assert [r["value"] for r in lis_db.results(order["id"])] == ["4.2"]
    assert lis_db.patient_id_by_identifier(f.facility, f.id("B")) is None  # rolled back with the message


def test_a_message_with_a_second_patient_applies_each_to_its_own_patient(database_url):
    # Was quarantined whole (multiple_patient_groups); each PATIENT_RESULT group is now its own unit.
    f = Feed()
    outcome = one(hl7(f.msh("ORU^R01", "20260101100000"), f.pid("A"), f"OBR|1|{f.id('O1')}||GLU^G^L",
                      "OBX|1|NM|GLU^G^L||1|||||F", f.pid("B"), f"OBR|1|{f.id('O2')}||GLU^G^L", "OBX|1|NM|GLU^G^L||2|||||F"))
    assert (outcome.status, outcome.reason) == ("processed", None)
    a, b = (lis_db.patient_id_by_identifier(f.facility, f.id(x)) for x in ("A", "B"))
    assert a is not None and b is not None and a != b
    assert [(o["placer_number"], [r["value"] for r in lis_db.results(o["id"])]) for o in lis_db.orders(a)] == [(f.id("O1"), ["1"])]
    assert [(o["placer_number"], [r["value"] for r in lis_db.results(o["id"])]) for o in lis_db.orders(b)] == [(f.id("O2"), ["2"])]
    assert set(lis_db.message(outcome.message_id).patient_ids) == {a, b}


def test_orders_without_a_pid_use_the_known_order_patient(database_url):
    f = Feed()
    created = one(hl7(f.msh("ORM^O01", "20260101100000"), f.pid("A"), f"ORC|NW|{f.id('ORD1')}",
                      f"OBR|1|{f.id('ORD1')}||GLU^G^L"))
    oul = one(hl7(f.msh("OUL^R22", "20260101110000"), f"OBR|1|{f.id('ORD1')}||GLU^G^L",
                  "OBX|1|NM|GLU^G^L||101|mg/dL|||||F"))
    assert (oul.status, oul.patient_id) == ("processed", created.patient_id)
    unknown = one(hl7(f.msh("OUL^R22", "20260101110000"), f"OBR|1|{f.id('NOPE')}||GLU^G^L", "OBX|1|NM|GLU^G^L||1|||||F"))
    assert (unknown.status, unknown.reason) == ("quarantined", "missing_segment:PID")


def test_unsupported_types_are_ignored_with_the_reason(database_url):
    f = Feed()
    outcome = one(hl7(f.msh("SIU^S12", "20260101100000"), f.pid("A")))
    assert (outcome.status, outcome.reason) == ("ignored", "unsupported_type:SIU^S12")
    assert lis_db.patient_id_by_identifier(f.facility, f.id("A")) is None


def test_time_zone_of_msh7_is_honoured(database_url):
    f = Feed()
    outcome = one(hl7(f.msh("ADT^A04", "20260101100000+0200"), f.pid("A")))
    row = lis_db.message(outcome.message_id)
    assert row.message_time == dt.datetime(2026, 1, 1, 8, tzinfo=dt.timezone.utc)
    with unit_of_work() as uow:
        assert uow.session.execute(sa.text("select 1")).scalar() == 1
