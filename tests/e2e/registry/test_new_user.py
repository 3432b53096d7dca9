"""A new user tries the registry over real HTTP against a real functions-framework process,
touching every endpoint: discover, register, find, change, deduplicate, merge, history, orders,
versions, deactivate, audit. Nothing is faked but the LIS, whose result row is written the way
the LIS consumer writes it."""

import json
import uuid

import pytest
import requests

from tests.integration.registry.factories import new_order_with_result

pytestmark = pytest.mark.e2e


class Client:
    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def __getattr__(self, method):  # get/post/patch/delete with a relative path
        def call(path, **kwargs):
            return self.session.request(method.upper(), self.base + path, timeout=15, **kwargs)
        return call


def problem(resp, status):
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    return resp.json()


def test_a_new_user_walks_through_the_registry(start_fn, admin_token):
    api = start_fn("api", ready_path="/readyz")
    tag = uuid.uuid4().hex[:8]

    # 1. Discover: health, readiness and the API description are public; everything else wants a key.
    assert requests.get(f"{api.url}/healthz", timeout=5).json() == {"status": "ok"}
    assert requests.get(f"{api.url}/readyz", timeout=5).status_code == 200
    spec = requests.get(f"{api.url}/openapi.json", timeout=5).json()
    assert spec["openapi"] == "3.1.0" and "/patients/{patient_id}/merge" in spec["paths"]
    problem(requests.get(f"{api.url}/patients", timeout=5), 401)
    c = Client(api.url, admin_token)

    # 2. Register: 201, Location, ETag, an MRN that is also an identifier.
    body = {"name": {"family": f"Núñez-{tag}", "given": ["Inés", "María"]}, "birth_date": "1984-02-29",
            "sex": "female", "phone": "+34600" + str(uuid.uuid4().int)[:6], "email": f"ines.{tag}@example.org",
            "identifiers": [{"system": "urn:oid:2.16.724.4.40", "value": f"TSI-{tag}", "type": "NI"}],
            "address": {"line": ["Calle Mayor 1"], "city": "Madrid", "state": "MD", "postal_code": "28013", "country": "ES"},
            "preferred_language": "es", "timezone": "Europe/Madrid", "communication": {"email": True, "sms": False}}
    created = c.post("/patients", json=body)
    assert created.status_code == 201, created.text
    ines = created.json()
    assert created.headers["Location"] == f"/patients/{ines['id']}" and created.headers["ETag"] == 'W/"1"'
    assert {"system": "urn:patient-mgt:mrn", "value": ines["mrn"], "type": "MR"} in ines["identifiers"]
    read = c.get(created.headers["Location"])
    assert read.json() == ines and read.headers["ETag"] == 'W/"1"'

    # 3. Find her by every search parameter (case and accents ignored for names).
    def found(**params):
        resp = c.get("/patients", params=params)
        assert resp.status_code == 200, resp.text
        return [p["id"] for p in resp.json()["items"]]
    for params in ({"name": f"NUNEZ {tag}"}, {"name": f"ines {tag}"}, {"family": f"nun {tag}"}, {"given": "mar", "name": tag},
                   {"birth_date": "1984-02-29", "name": tag}, {"identifier": f"urn:oid:2.16.724.4.40|TSI-{tag}"},
                   {"identifier": f"TSI-{tag}"}, {"mrn": ines["mrn"]}, {"phone": body["phone"]},
                   {"email": body["email"].upper()}, {"status": "active", "name": tag}):
        assert found(**params) == [ines["id"]], params
    assert problem(c.get("/patients", params={"limit": 100000}), 422)["errors"][0]["field"] == "limit"

    # 4. Change her with a merge patch: If-Match is required, a stale one is refused.
    problem(c.patch(f"/patients/{ines['id']}", json={"phone": None}), 428)
    changed = c.patch(f"/patients/{ines['id']}", data=json.dumps({"phone": None, "communication": {"sms": True}}),
                      headers={"If-Match": 'W/"1"', "Content-Type": "application/merge-patch+json"})
    assert changed.status_code == 200 and changed.headers["ETag"] == 'W/"2"'
    assert changed.json()["phone"] is None and changed.json()["communication"] == {"email": True, "sms": True}
    problem(c.patch(f"/patients/{ines['id']}", json={"sex": "other"}, headers={"If-Match": 'W/"1"'}), 412)
    problem(c.patch(f"/patients/{ines['id']}", json={"mrn": "1"}, headers={"If-Match": 'W/"2"'}), 422)

    # 5. The front desk registers her again by mistake: a probable duplicate.
    again = {"name": {"family": f"NUNEZ {tag}", "given": ["ines"]}, "birth_date": "1984-02-29"}
    dup = problem(c.post("/patients", json=again), 409)
    assert dup["candidate_ids"] == [ines["id"]]
    twin = c.post("/patients?allow_duplicate=true", json=again).json()
    assert c.get(f"/patients/{twin['id']}/duplicates").json() == {
        "items": [{"patient_id": ines["id"], "reason": "name_and_birth_date", "flag": None}]}

    # 6. Meanwhile the twin got history and an order (with a result from the LIS).
    entry = c.post(f"/patients/{twin['id']}/history", json={
        "category": "allergy", "code": {"system": "http://snomed.info/sct", "code": "300916003", "display": "Latex allergy"},
        "onset": "2010-05-01"})
    assert entry.status_code == 201 and entry.headers["ETag"] == 'W/"1"'
    entry = entry.json()
    order = c.post(f"/patients/{twin['id']}/orders", json={"code": {"system": "http://loinc.org", "code": "718-7",
                                                                      "display": "Hemoglobin"}, "priority": "urgent"})
    assert order.status_code == 201 and order.json()["status"] == "requested"
    lis_order, _ = new_order_with_result(uuid.UUID(twin["id"]))

    # 7. Merge the twin into Inés: everything moves, the twin still answers, the merge is idempotent.
    merged = c.post(f"/patients/{twin['id']}/merge", json={"target_id": ines["id"]})
    assert merged.status_code == 200, merged.text
    assert merged.json()["moved"] == {"identifiers": 1, "history": 1, "orders": 2, "results": 1}
    assert c.post(f"/patients/{twin['id']}/merge", json={"target_id": ines["id"]}).json() == merged.json()
    assert c.get(f"/patients/{twin['id']}").json()["merged_into"] == ines["id"]
    assert found(mrn=twin["mrn"]) == [ines["id"]]
    assert found(name=tag) == [ines["id"]] and sorted(found(name=tag, status="active,merged")) == sorted([ines["id"], twin["id"]])

    # 8. History on the survivor: list, filter, read, change under If-Match.
    history = c.get(f"/patients/{ines['id']}/history", params={"category": "allergy"}).json()["items"]
    assert [h["id"] for h in history] == [entry["id"]]
    one = c.get(f"/patients/{ines['id']}/history/{entry['id']}")
    assert one.headers["ETag"] == 'W/"2"'  # the move was a version
    resolved = c.patch(f"/patients/{ines['id']}/history/{entry['id']}", json={"status": "resolved", "abatement": "2020-01-01"},
                       headers={"If-Match": one.headers["ETag"]})
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert c.get(f"/patients/{ines['id']}/history", params={"status": "active"}).json()["items"] == []

    # 9. Orders with results on the survivor, and one order by id.
    orders = c.get(f"/patients/{ines['id']}/orders").json()["items"]
    assert {o["id"] for o in orders} == {order.json()["id"], str(lis_order)}
    lis = c.get(f"/orders/{lis_order}").json()
    assert lis["patient_id"] == ines["id"] and lis["results"][0]["value"] == "5.4" and lis["results"][0]["status"] == "F"

    # 10. Every version was kept.
    versions = c.get(f"/patients/{ines['id']}/versions").json()["items"]
    assert [(v["resource_type"], v["version"], v["change"]) for v in versions] == [
        ("history", 3, "update"), ("patient", 3, "merge-target"), ("history", 2, "move"), ("history", 1, "create"),
        ("patient", 2, "update"), ("patient", 1, "create")]

    # 11. Deactivate (If-Match), and read who did what in the audit trail.
    etag = c.get(f"/patients/{ines['id']}").headers["ETag"]
    assert c.delete(f"/patients/{ines['id']}", headers={"If-Match": etag}).status_code == 204
    assert c.get(f"/patients/{ines['id']}").json()["status"] == "inactive"
    actions = [e["action"] for e in c.get("/audit", params={"patient_id": ines["id"], "limit": 200}).json()["items"]]
    for action in ("patient.create", "patient.read", "patient.search", "patient.update", "patient.merge",
                   "history.read", "history.update", "order.read", "patient.versions.read", "patient.deactivate"):
        assert action in actions, action

    # No patient data in the process's logs.
    logs = api.logs()
    for secret in (tag, body["phone"], "Inés", "Núñez", "1984-02-29"):
        assert secret not in logs
