"""Probable duplicates looked for on every change of the matching fields (API PATCH and the LIS
feed): the change is kept, the pair flagged, listed at GET …/duplicates, and reviewed (not a
duplicate — remembered — or merged)."""

import json
import uuid

import sqlalchemy as sa

from shared.auth import SYSTEM_LIS
from shared.db import unit_of_work
from shared.models import AuditEntry, DuplicateFlag
from shared.services.duplicate_flags import pair
from tests.conftest import auth
from tests.http.registry.support import assert_problem, audit_actions, patient_body, unique_family
from tests.support.lis_ingest import hl7, one

MERGE_PATCH = "application/merge-patch+json"


def create(client, token, **overrides):
    resp = client.post("/patients?allow_duplicate=true", json=patient_body(**overrides), headers=auth(token))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def patch(client, token, patient, body):
    resp = client.patch(f"/patients/{patient['id']}", data=json.dumps(body), headers={
        **auth(token), "Content-Type": MERGE_PATCH, "If-Match": f'W/"{patient["version"]}"'})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def flag_row(a, b):
    low, high = pair(uuid.UUID(str(a)), uuid.UUID(str(b)))
    with unit_of_work() as uow:
        return uow.session.scalar(sa.select(DuplicateFlag).where(DuplicateFlag.patient_a == low, DuplicateFlag.patient_b == high))


def duplicates(client, token, pid):
    resp = client.get(f"/patients/{pid}/duplicates", headers=auth(token))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["items"]


def review(client, token, pid, candidate, **body):
    return client.post(f"/patients/{pid}/duplicates/{candidate}/review", json=body, headers=auth(token))


def test_a_patch_that_makes_a_duplicate_is_kept_flagged_listed_and_reviewed_once_for_good(client, admin_token):
    family = unique_family()
    first = create(client, admin_token, name={"family": family, "given": ["Ana"]}, birth_date="1971-03-04")
    other = create(client, admin_token, name={"family": unique_family(), "given": ["Bea"]}, birth_date="1971-03-04")
    assert duplicates(client, admin_token, other["id"]) == []

    # The typo "fixed" into someone else's record: kept (If-Match matched), and flagged.
    changed = patch(client, admin_token, other, {"name": {"family": family.upper(), "given": ["ana"]}})
    assert (changed["name"]["family"], changed["version"]) == (family.upper(), 2)
    [listed] = duplicates(client, admin_token, other["id"])
    assert (listed["patient_id"], listed["reason"]) == (first["id"], "name_and_birth_date")
    assert (listed["flag"]["status"], listed["flag"]["origin"], listed["flag"]["reviewed_at"]) == ("open", "api", None)
    assert [d["patient_id"] for d in duplicates(client, admin_token, first["id"])] == [other["id"]]
    row = flag_row(first["id"], other["id"])
    assert (row.status, row.reason, row.flagged_patient_id, row.origin) == (
        "open", "name_and_birth_date", uuid.UUID(other["id"]), "api")
    versions = client.get(f"/patients/{other['id']}/versions", headers=auth(admin_token)).get_json()["items"]
    assert (versions[0]["version"], versions[0]["change"], versions[0]["snapshot"]["name"]["family"]) == (
        2, "update", family.upper())
    assert ("patient.duplicates.flag", "success") in audit_actions(other["id"])
    assert ("patient.duplicates.flag", "success") in audit_actions(first["id"])

    # Another change of a matching field finds the same pair: still one flag, not a second one.
    changed = patch(client, admin_token, changed, {"phone": "+15550001111"})
    with unit_of_work() as uow:
        flags = uow.session.scalar(sa.select(sa.func.count()).select_from(DuplicateFlag).where(
            DuplicateFlag.patient_a == row.patient_a, DuplicateFlag.patient_b == row.patient_b))
    assert flags == 1

    # Reviewed: not the same person. The list leaves the pair out, and it is never flagged again.
    resp = review(client, admin_token, other["id"], first["id"], decision="not_duplicate")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json() == {"patient_id": other["id"], "candidate_id": first["id"], "status": "not_duplicate",
                               "merge": None}
    assert duplicates(client, admin_token, other["id"]) == [] and duplicates(client, admin_token, first["id"]) == []
    reviewed = flag_row(first["id"], other["id"])
    assert (reviewed.status, reviewed.reviewed_at is not None, reviewed.reviewed_by) == ("not_duplicate", True, reviewed.reviewed_by)
    assert reviewed.reviewed_by.startswith("test-")
    changed = patch(client, admin_token, changed, {"name": {"family": "Else" + family, "given": ["Ana"]}})
    changed = patch(client, admin_token, changed, {"name": {"family": family, "given": ["Ana"]}})
    assert changed["version"] == 5
    assert flag_row(first["id"], other["id"]).status == "not_duplicate"
    assert duplicates(client, admin_token, other["id"]) == []
    assert ("patient.duplicates.review", "success") in audit_actions(other["id"])
    # Reviewing again is the same answer.
    assert review(client, admin_token, first["id"], other["id"], decision="not_duplicate").status_code == 200


def test_a_change_of_a_field_the_rules_do_not_read_does_not_search(client, admin_token):
    family = unique_family()
    first = create(client, admin_token, name={"family": family, "given": ["Cy"]}, birth_date="1980-01-01")
    twin = create(client, admin_token, name={"family": family, "given": ["Cy"]}, birth_date="1980-01-01")
    # registered with allow_duplicate (registration's own rule), then a change of the language only
    patch(client, admin_token, twin, {"preferred_language": "es"})
    assert flag_row(first["id"], twin["id"]) is None
    [listed] = duplicates(client, admin_token, twin["id"])  # the search still lists it, unflagged
    assert (listed["patient_id"], listed["flag"]) == (first["id"], None)


def test_a_review_can_merge_the_pair(client, admin_token):
    family, phone = unique_family(), "+1555" + str(uuid.uuid4().int)[:7]
    keep = create(client, admin_token, name={"family": family, "given": ["Dee"]}, birth_date="1990-05-06", phone=phone)
    dup = create(client, admin_token, birth_date="1990-05-06")
    patch(client, admin_token, dup, {"phone": phone})
    [listed] = duplicates(client, admin_token, dup["id"])
    assert (listed["patient_id"], listed["reason"], listed["flag"]["status"]) == (keep["id"], "phone_and_birth_date", "open")

    assert_problem(review(client, admin_token, dup["id"], keep["id"], decision="merge"), 422)
    assert_problem(review(client, admin_token, dup["id"], keep["id"], decision="merge", survivor_id=str(uuid.uuid4())), 422)
    resp = review(client, admin_token, dup["id"], keep["id"], decision="merge", survivor_id=keep["id"])
    assert resp.status_code == 200, resp.get_data(as_text=True)
    outcome = resp.get_json()
    assert outcome["status"] == "merged"
    assert (outcome["merge"]["source"]["id"], outcome["merge"]["source"]["merged_into"]) == (dup["id"], keep["id"])
    assert flag_row(keep["id"], dup["id"]).status == "merged"
    assert client.get(f"/patients/{dup['id']}", headers=auth(admin_token)).get_json()["status"] == "merged"
    assert {"patient.merge", "patient.duplicates.review"} <= {a for a, _ in audit_actions(dup["id"])}
    # a merged pair is not "not a duplicate" (unmerge is the way back)
    assert_problem(review(client, admin_token, dup["id"], keep["id"], decision="not_duplicate"), 409)


def test_review_refusals_change_nothing(client, admin_token, make_token):
    a = create(client, admin_token)
    b = create(client, admin_token)
    reader = make_token("patients:read")
    assert review(client, reader, a["id"], b["id"], decision="not_duplicate").status_code == 403
    assert_problem(review(client, admin_token, a["id"], str(uuid.uuid4()), decision="not_duplicate"), 404)
    assert_problem(review(client, admin_token, str(uuid.uuid4()), b["id"], decision="not_duplicate"), 404)
    assert_problem(review(client, admin_token, a["id"], a["id"], decision="not_duplicate"), 422)
    assert_problem(review(client, admin_token, a["id"], b["id"], decision="maybe"), 422)
    assert_problem(review(client, admin_token, a["id"], b["id"], decision="not_duplicate", survivor_id=a["id"]), 422)
    assert flag_row(a["id"], b["id"]) is None


def _adt(facility, control, when, ident, family, given, birth_date):
    return hl7(f"MSH|^~\\&|LIS|{facility}|PM|HOSP|{when}||ADT^A08^ADT_A01|{control}|P|2.5.1",
               f"EVN|A08|{when}",
               f"PID|1||{ident}^^^{facility}^MR||{family}^{given}||{birth_date}|F")


def test_a_lis_update_that_makes_a_duplicate_is_kept_and_flagged(client, admin_token):
    family, tag = unique_family(), uuid.uuid4().hex[:8]
    facility, ident = f"LAB{tag}", f"P-{tag}"
    existing = create(client, admin_token, name={"family": family, "given": ["Eva"]}, birth_date="1966-07-08")
    created = one(_adt(facility, f"{tag}-1", "20260101100000", ident, "Other" + family, "Eva", "19660708"))
    assert created.status == "processed"
    found = client.get("/patients", query_string={"identifier": f"{facility}|{ident}"}, headers=auth(admin_token)).get_json()
    [lis_patient] = found["items"]
    assert flag_row(existing["id"], lis_patient["id"]) is None

    updated = one(_adt(facility, f"{tag}-2", "20260102100000", ident, family, "Eva", "19660708"))
    assert updated.status == "processed"
    now = client.get(f"/patients/{lis_patient['id']}", headers=auth(admin_token)).get_json()
    assert (now["name"]["family"], now["version"]) == (family, 2)  # the change is kept
    row = flag_row(existing["id"], lis_patient["id"])
    assert (row.status, row.origin, row.flagged_by, row.flagged_patient_id) == (
        "open", "lis", SYSTEM_LIS.name, uuid.UUID(lis_patient["id"]))
    [listed] = duplicates(client, admin_token, existing["id"])
    assert (listed["patient_id"], listed["flag"]["origin"]) == (lis_patient["id"], "lis")
    versions = client.get(f"/patients/{lis_patient['id']}/versions", headers=auth(admin_token)).get_json()["items"]
    assert [v["change"] for v in versions][:2] == ["lis-update", "lis-create"]
    with unit_of_work() as uow:
        audited = uow.session.execute(sa.select(AuditEntry.principal, AuditEntry.details).where(
            AuditEntry.action == "patient.duplicates.flag",
            AuditEntry.patient_ids.contains([uuid.UUID(lis_patient["id"])]))).one()
    assert audited.details == {"flagged": 1, "origin": "lis"}


def test_a_merge_carries_the_sources_open_flags_over_to_the_target(client, admin_token):
    family = unique_family()
    x = create(client, admin_token, name={"family": family, "given": ["Gil"]}, birth_date="1958-09-10")
    source = create(client, admin_token, birth_date="1958-09-10")
    target = create(client, admin_token, birth_date="1958-09-10")
    patch(client, admin_token, source, {"name": {"family": family, "given": ["Gil"]}})
    assert flag_row(x["id"], source["id"]).status == "open"
    assert merge_ok(client, admin_token, source["id"], target["id"])

    assert flag_row(x["id"], source["id"]).status == "merged"
    carried = flag_row(x["id"], target["id"])
    assert (carried.status, carried.reason, carried.origin, carried.flagged_patient_id) == (
        "open", "name_and_birth_date", "api", uuid.UUID(target["id"]))
    assert [(d["patient_id"], d["flag"]["status"]) for d in duplicates(client, admin_token, x["id"])] == [(target["id"], "open")]


def merge_ok(client, token, source, target):
    resp = client.post(f"/patients/{source}/merge", json={"target_id": target}, headers=auth(token))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return True
