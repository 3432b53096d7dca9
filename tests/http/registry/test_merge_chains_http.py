"""Merge chains are one hop (flattened on merge, a cycle impossible even by hand or by concurrent
merges), and unmerge undoes a merge made in error."""

import threading
import uuid

import pytest
import sqlalchemy as sa

from shared.db import unit_of_work
from shared.events import catalog
from shared.models import DuplicateFlag, Patient, PatientMerge
from shared.notify.delivery import load_recipient
from shared.services.duplicate_flags import pair
from tests.conftest import auth
from tests.http.registry.support import assert_problem, audit_actions, events_for, patient_body, unique_family


def create(client, token, **overrides):
    resp = client.post("/patients?allow_duplicate=true", json=patient_body(**overrides), headers=auth(token))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def merge(client, token, source, target):
    return client.post(f"/patients/{source}/merge", json={"target_id": target}, headers=auth(token))


def get(client, token, path):
    resp = client.get(path, headers=auth(token))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def chains_longer_than_one_hop(ids):
    """Merged patients (among ids) pointing at a merged patient."""
    with unit_of_work() as uow:
        target = sa.orm.aliased(Patient)
        return uow.session.scalar(sa.select(sa.func.count()).select_from(Patient).join(target, target.id == Patient.merged_into)
                                  .where(Patient.id.in_(ids), target.status == "merged"))


def test_merging_into_a_record_that_is_merged_later_flattens_the_chain(client, admin_token):
    a, b, c = (create(client, admin_token) for _ in range(3))
    assert merge(client, admin_token, a["id"], b["id"]).status_code == 200
    resp = merge(client, admin_token, b["id"], c["id"])
    assert resp.status_code == 200, resp.get_data(as_text=True)

    got = get(client, admin_token, f"/patients/{a['id']}")
    assert (got["status"], got["merged_into"], got["version"]) == ("merged", c["id"], 3)
    versions = get(client, admin_token, f"/patients/{a['id']}/versions")["items"]
    assert (versions[0]["version"], versions[0]["change"], versions[0]["snapshot"]["merged_into"]) == (3, "merge-flatten", c["id"])
    assert versions[1]["snapshot"]["merged_into"] == b["id"]
    # one audit entry for the B → C merge names A too, and says one record was flattened
    with unit_of_work() as uow:
        from shared.models import AuditEntry  # noqa: PLC0415
        details = uow.session.scalars(sa.select(AuditEntry.details).where(
            AuditEntry.action == "patient.merge", AuditEntry.patient_ids.contains([uuid.UUID(b["id"]), uuid.UUID(a["id"])])
        ).order_by(AuditEntry.id)).all()
    assert [d["flattened"] for d in details] == [0, 1]
    # FHIR: A links straight to C
    fhir = get(client, admin_token, f"/fhir/Patient/{a['id']}")
    assert fhir["active"] is False
    assert fhir["link"] == [{"other": {"reference": f"Patient/{c['id']}"}, "type": "replaced-by"}]
    assert chains_longer_than_one_hop([a["id"], b["id"], c["id"]]) == 0


def test_a_chain_or_cycle_written_by_hand_is_refused_at_commit(client, admin_token):
    a, b, c = (create(client, admin_token) for _ in range(3))
    assert merge(client, admin_token, a["id"], b["id"]).status_code == 200
    ids = {k: uuid.UUID(v["id"]) for k, v in (("a", a), ("b", b), ("c", c))}
    attempts = [
        # B → A: a cycle (A is merged into B)
        [sa.update(Patient).where(Patient.id == ids["b"]).values(status="merged", merged_into=ids["a"])],
        # C → A: into a merged patient (a chain C → A → B)
        [sa.update(Patient).where(Patient.id == ids["c"]).values(status="merged", merged_into=ids["a"])],
        # B merged into C while A still points at B (a chain A → B → C)
        [sa.update(Patient).where(Patient.id == ids["b"]).values(status="merged", merged_into=ids["c"])],
    ]
    for statements in attempts:
        with pytest.raises(sa.exc.DatabaseError, match="23514.*one hop"):
            with unit_of_work() as uow:
                for statement in statements:
                    uow.session.execute(statement)
    with unit_of_work() as uow:
        rows = {r.id: (r.status, r.merged_into) for r in uow.session.execute(
            sa.select(Patient.id, Patient.status, Patient.merged_into).where(Patient.id.in_(list(ids.values()))))}
    assert rows == {ids["a"]: ("merged", ids["b"]), ids["b"]: ("active", None), ids["c"]: ("active", None)}


def _run_together(calls):
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_merges_never_make_a_chain_or_a_cycle(api_app, admin_token):
    clients = [api_app.test_client() for _ in range(3)]
    created = []
    for _ in range(4):
        a, b, c = (create(clients[0], admin_token) for _ in range(3))
        created += [a["id"], b["id"], c["id"]]
        # crossed (A → B and B → A) and chained (A → B, B → C, C → A) at the same moment
        codes = _run_together([
            lambda a=a, b=b: merge(clients[0], admin_token, a["id"], b["id"]).status_code,
            lambda b=b, c=c: merge(clients[1], admin_token, b["id"], c["id"]).status_code,
            lambda c=c, a=a: merge(clients[2], admin_token, c["id"], a["id"]).status_code,
        ])
        assert all(code in (200, 409, 503) for code in codes), codes
        assert 200 in codes
    assert chains_longer_than_one_hop(created) == 0
    with unit_of_work() as uow:
        merged = uow.session.execute(sa.select(Patient.id, Patient.merged_into).where(
            Patient.id.in_(created), Patient.status == "merged")).all()
    survivors = {row.merged_into for row in merged}
    assert survivors and not survivors & {row.id for row in merged}


def test_unmerge_restores_the_source_from_its_versions_and_is_honoured_downstream(client, admin_token):
    ident = {"system": "urn:test:hospital", "value": f"H-{uuid.uuid4().hex}"}
    family = unique_family()
    source = create(client, admin_token, name={"family": family, "given": ["Fay"]}, identifiers=[ident],
                    phone="+15551230000", email=f"{family.lower()}@example.org", communication={"email": True, "sms": False})
    target = create(client, admin_token)
    earlier = create(client, admin_token)  # merged into the source first: it must follow the source back
    assert merge(client, admin_token, earlier["id"], source["id"]).status_code == 200
    before = get(client, admin_token, f"/patients/{source['id']}")
    assert merge(client, admin_token, source["id"], target["id"]).status_code == 200
    assert get(client, admin_token, f"/patients/{earlier['id']}")["merged_into"] == target["id"]

    resp = client.post(f"/patients/{source['id']}/unmerge", headers=auth(admin_token))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    outcome = resp.get_json()
    assert outcome["restored"] == {"identifiers": len(before["identifiers"]), "identifiers_kept": 0, "records": 1}
    restored = get(client, admin_token, f"/patients/{source['id']}")
    for field in ("status", "name", "birth_date", "phone", "email", "communication", "mrn"):
        assert restored[field] == before[field], field
    assert restored["merged_into"] is None and restored["version"] == before["version"] + 2
    assert sorted(map(str, restored["identifiers"])) == sorted(map(str, before["identifiers"]))
    survivor = get(client, admin_token, f"/patients/{target['id']}")
    assert not {(i["system"], i["value"]) for i in survivor["identifiers"]} & {(i["system"], i["value"]) for i in before["identifiers"]}
    found = get(client, admin_token, f"/patients?identifier={ident['system']}|{ident['value']}")["items"]
    assert [p["id"] for p in found] == [source["id"]]
    assert get(client, admin_token, f"/patients/{earlier['id']}")["merged_into"] == source["id"]

    # versions, the merge record, the pair remembered, audit and events
    versions = get(client, admin_token, f"/patients/{source['id']}/versions")["items"]
    assert [v["change"] for v in versions[:2]] == ["unmerge", "merge"]
    assert get(client, admin_token, f"/patients/{target['id']}/versions")["items"][0]["change"] == "unmerge-target"
    assert get(client, admin_token, f"/patients/{earlier['id']}/versions")["items"][0]["change"] == "unmerge-flatten"
    with unit_of_work() as uow:
        assert uow.session.get(PatientMerge, uuid.UUID(source["id"])) is None
        low, high = pair(uuid.UUID(source["id"]), uuid.UUID(target["id"]))
        assert uow.session.scalar(sa.select(DuplicateFlag.status).where(
            DuplicateFlag.patient_a == low, DuplicateFlag.patient_b == high)) == "not_duplicate"
    assert ("patient.unmerge", "success") in audit_actions(source["id"])
    assert ("patient.unmerge", "success") in audit_actions(earlier["id"])
    [(kind, data)] = [e for e in events_for(source["id"]) if e[0] == catalog.PATIENT_UNMERGED]
    assert data == {"patient_id": source["id"], "target_id": target["id"], "version": restored["version"],
                    "restored": outcome["restored"]}
    assert (catalog.PATIENT_UPDATED, {"patient_id": target["id"], "version": survivor["version"], "changed": ["identifiers"]}) \
        in events_for(target["id"])

    # the FHIR view and notify see a patient of its own again
    fhir = get(client, admin_token, f"/fhir/Patient/{source['id']}")
    assert fhir["active"] is True and "link" not in fhir
    with unit_of_work() as uow:
        recipient = load_recipient(uow, uuid.UUID(source["id"]), follow_merge=True, purpose="test")
    assert (str(recipient.patient_id), recipient.status, recipient.email) == (source["id"], "active", before["email"])

    # not merged any more: a second unmerge is refused; a new merge of the pair is possible
    assert_problem(client.post(f"/patients/{source['id']}/unmerge", headers=auth(admin_token)), 409)
    assert merge(client, admin_token, source["id"], target["id"]).status_code == 200


def test_unmerge_refusals(client, admin_token, make_token):
    a = create(client, admin_token)
    assert_problem(client.post(f"/patients/{a['id']}/unmerge", headers=auth(admin_token)), 409)
    assert_problem(client.post(f"/patients/{uuid.uuid4()}/unmerge", headers=auth(admin_token)), 404)
    b = create(client, admin_token)
    assert merge(client, admin_token, a["id"], b["id"]).status_code == 200
    assert client.post(f"/patients/{a['id']}/unmerge", headers=auth(make_token("patients:read"))).status_code == 403
    assert get(client, admin_token, f"/patients/{a['id']}")["status"] == "merged"
