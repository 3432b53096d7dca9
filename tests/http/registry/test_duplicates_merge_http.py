"""Probable duplicates on registration, GET …/duplicates, merge and versions over HTTP."""

import uuid

from shared.events import catalog
from tests.conftest import auth
from tests.http.registry.support import assert_problem, audit_actions, error_fields, events_for, patient_body, unique_family


def post(client, token, body, query=""):
    return client.post(f"/patients{query}", json=body, headers=auth(token))


def test_probable_duplicate_is_a_409_listing_candidates_unless_allowed(client, admin_token):
    family = unique_family()
    phone = "+1555" + str(uuid.uuid4().int)[:7]
    first = post(client, admin_token, patient_body(name={"family": f"Pérez-{family}", "given": ["José María"]},
                                                   birth_date="1966-06-16", phone=phone)).get_json()
    same_name = patient_body(name={"family": f"perez {family.upper()}", "given": ["jose maria"]}, birth_date="1966-06-16")
    doc = assert_problem(post(client, admin_token, same_name), 409)
    assert doc["type"].endswith("/probable-duplicate")
    assert doc["candidate_ids"] == [first["id"]]
    assert doc["candidates"] == [{"patient_id": first["id"], "reason": "name_and_birth_date"}]
    same_phone = patient_body(birth_date="1966-06-16", phone=phone)
    assert assert_problem(post(client, admin_token, same_phone), 409)["candidates"] == [
        {"patient_id": first["id"], "reason": "phone_and_birth_date"}]
    # nothing was created by the refusals; allow_duplicate registers anyway
    second = post(client, admin_token, same_name, "?allow_duplicate=true")
    assert second.status_code == 201
    dupes = client.get(f"/patients/{second.get_json()['id']}/duplicates", headers=auth(admin_token))
    assert dupes.status_code == 200
    assert dupes.get_json() == {"items": [{"patient_id": first["id"], "reason": "name_and_birth_date", "flag": None}]}
    assert ("patient.duplicates", "success") in audit_actions(first["id"])
    assert_problem(client.post("/patients?allow_duplicate=maybe", json=same_name, headers=auth(admin_token)), 422)


def test_merge_flow_over_http(client, admin_token):
    ident = {"system": "urn:test:hospital", "value": f"H-{uuid.uuid4().hex}"}
    source = post(client, admin_token, patient_body(identifiers=[ident]), "?allow_duplicate=true").get_json()
    target = post(client, admin_token, patient_body(), "?allow_duplicate=true").get_json()
    entry = client.post(f"/patients/{source['id']}/history", json={"category": "allergy", "notes": "latex"},
                        headers=auth(admin_token)).get_json()

    resp = client.post(f"/patients/{source['id']}/merge", json={"target_id": target["id"]}, headers=auth(admin_token))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    outcome = resp.get_json()
    assert outcome["moved"] == {"identifiers": 2, "history": 1, "orders": 0, "results": 0}
    assert outcome["source"]["status"] == "merged" and outcome["source"]["merged_into"] == target["id"]
    assert {(i["system"], i["value"]) for i in outcome["target"]["identifiers"]} >= {
        (ident["system"], ident["value"]), ("urn:patient-mgt:mrn", source["mrn"])}

    # the source still answers; a moved identifier (and the source's MRN) finds the target
    got = client.get(f"/patients/{source['id']}", headers=auth(admin_token)).get_json()
    assert (got["status"], got["merged_into"]) == ("merged", target["id"])
    for query in ({"identifier": f"{ident['system']}|{ident['value']}"}, {"mrn": source["mrn"]}):
        found = client.get("/patients", query_string=query, headers=auth(admin_token)).get_json()["items"]
        assert [p["id"] for p in found] == [target["id"]]
    history = client.get(f"/patients/{target['id']}/history", headers=auth(admin_token)).get_json()["items"]
    assert [(h["id"], h["patient_id"], h["version"]) for h in history] == [(entry["id"], target["id"], 2)]

    # idempotent: same answer; another target or a merged target is a conflict; self is invalid
    again = client.post(f"/patients/{source['id']}/merge", json={"target_id": target["id"]}, headers=auth(admin_token))
    assert again.status_code == 200
    assert {k: again.get_json()[k] for k in ("moved", "merged_at")} == {k: outcome[k] for k in ("moved", "merged_at")}
    third = post(client, admin_token, patient_body(), "?allow_duplicate=true").get_json()
    assert_problem(client.post(f"/patients/{source['id']}/merge", json={"target_id": third["id"]},
                               headers=auth(admin_token)), 409)
    assert_problem(client.post(f"/patients/{third['id']}/merge", json={"target_id": source["id"]},
                               headers=auth(admin_token)), 409)
    doc = assert_problem(client.post(f"/patients/{third['id']}/merge", json={"target_id": third["id"]},
                                     headers=auth(admin_token)), 422)
    assert error_fields(doc) == {"target_id"}
    assert_problem(client.post(f"/patients/{third['id']}/merge", json={"target_id": "nope"}, headers=auth(admin_token)), 422)
    # a merged record is read-only
    assert_problem(client.patch(f"/patients/{source['id']}", json={"sex": "male"},
                                headers={**auth(admin_token), "If-Match": 'W/"2"'}), 409)
    assert_problem(client.post(f"/patients/{source['id']}/history", json={"category": "note", "notes": "x"},
                               headers=auth(admin_token)), 409)
    assert [t for t, _ in events_for(source["id"])].count(catalog.PATIENT_MERGED) == 1


def test_versions_list_patient_and_history_changes(client, admin_token):
    pid = post(client, admin_token, patient_body(), "?allow_duplicate=true").get_json()["id"]
    entry = client.post(f"/patients/{pid}/history", json={"category": "condition", "notes": "asthma"},
                        headers=auth(admin_token)).get_json()
    assert client.patch(f"/patients/{pid}/history/{entry['id']}", json={"status": "resolved"},
                        headers={**auth(admin_token), "If-Match": 'W/"1"'}).status_code == 200
    assert client.patch(f"/patients/{pid}", json={"sex": "female"},
                        headers={**auth(admin_token), "If-Match": 'W/"1"'}).status_code == 200
    page = client.get(f"/patients/{pid}/versions", headers=auth(admin_token)).get_json()
    assert [(v["resource_type"], v["version"], v["change"]) for v in page["items"]] == [
        ("patient", 2, "update"), ("history", 2, "update"), ("history", 1, "create"), ("patient", 1, "create")]
    assert page["items"][0]["snapshot"]["sex"] == "female" and page["items"][-1]["snapshot"]["sex"] == "unknown"
    assert page["items"][1]["snapshot"]["status"] == "resolved" and page["items"][2]["snapshot"]["status"] == "active"
    only = client.get(f"/patients/{pid}/versions?resource_type=history&limit=1", headers=auth(admin_token)).get_json()
    assert [v["version"] for v in only["items"]] == [2] and only["next_cursor"]
    rest = client.get(f"/patients/{pid}/versions?resource_type=history&limit=1&cursor={only['next_cursor']}",
                      headers=auth(admin_token)).get_json()
    assert [v["version"] for v in rest["items"]] == [1] and rest["next_cursor"] is None
    assert_problem(client.get(f"/patients/{uuid.uuid4()}/versions", headers=auth(admin_token)), 404)
