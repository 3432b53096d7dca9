"""Medical history and lab orders over HTTP."""

import uuid

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.events import catalog
from shared.models import LabOrder
from tests.conftest import auth
from tests.http.registry.support import assert_problem, audit_actions, error_fields, events_for, patient_body
from tests.integration.registry.factories import new_order_with_result

ALLERGY = {"category": "allergy", "code": {"system": "http://snomed.info/sct", "code": "91936005",
                                           "display": "Allergy to penicillin"}, "onset": "2001-02-03", "notes": "rash"}


def patient(client, token):
    resp = client.post("/patients?allow_duplicate=true", json=patient_body(), headers=auth(token))
    assert resp.status_code == 201
    return resp.get_json()["id"]


def test_history_add_read_change_and_filter(client, admin_token):
    pid = patient(client, admin_token)
    resp = client.post(f"/patients/{pid}/history", json=ALLERGY, headers=auth(admin_token))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    entry = resp.get_json()
    assert resp.headers["Location"] == f"/patients/{pid}/history/{entry['id']}" and resp.headers["ETag"] == 'W/"1"'
    assert entry["recorded_by"].startswith("test-") and entry["status"] == "active" and entry["code"] == ALLERGY["code"]
    client.post(f"/patients/{pid}/history", json={"category": "condition", "notes": "hypertension"}, headers=auth(admin_token))

    url = f"/patients/{pid}/history/{entry['id']}"
    assert_problem(client.patch(url, json={"status": "resolved"}, headers=auth(admin_token)), 428)
    assert_problem(client.patch(url, json={"status": "resolved"}, headers={**auth(admin_token), "If-Match": 'W/"5"'}), 412)
    doc = assert_problem(client.patch(url, json={"abatement": "2000-01-01"},
                                      headers={**auth(admin_token), "If-Match": 'W/"1"'}), 422)  # before onset
    assert doc["errors"][0]["message"].endswith("abatement must not be before onset")
    doc = assert_problem(client.patch(url, json={"recorded_by": "me", "category": "hobby"},
                                      headers={**auth(admin_token), "If-Match": 'W/"1"'}), 422)
    assert error_fields(doc) == {"recorded_by", "category"}
    changed = client.patch(url, json={"status": "entered-in-error", "code": {"display": "Penicillin allergy"}},
                           headers={**auth(admin_token), "If-Match": 'W/"1"'})
    assert changed.status_code == 200 and changed.headers["ETag"] == 'W/"2"'
    assert changed.get_json()["code"] == {**ALLERGY["code"], "display": "Penicillin allergy"}
    assert client.get(url, headers=auth(admin_token)).get_json() == changed.get_json()

    def listed(query=""):
        return [(e["category"], e["status"]) for e in
                client.get(f"/patients/{pid}/history{query}", headers=auth(admin_token)).get_json()["items"]]
    assert listed() == [("condition", "active"), ("allergy", "entered-in-error")]
    assert listed("?category=allergy") == [("allergy", "entered-in-error")]
    assert listed("?status=active") == [("condition", "active")]
    assert_problem(client.get(f"/patients/{pid}/history?category=hobby", headers=auth(admin_token)), 422)
    assert_problem(client.delete(url, headers=auth(admin_token)), 405)  # entries are never deleted
    assert [t for t, _ in events_for(pid)][-3:] == [catalog.HISTORY_ADDED, catalog.HISTORY_ADDED, catalog.HISTORY_CHANGED]
    actions = [a for a, _ in audit_actions(pid)]
    assert {"history.create", "history.update", "history.read"} <= set(actions)


def test_history_of_unknown_patient_or_entry_is_404(client, admin_token):
    pid = patient(client, admin_token)
    assert_problem(client.post(f"/patients/{uuid.uuid4()}/history", json=ALLERGY, headers=auth(admin_token)), 404)
    assert_problem(client.get(f"/patients/{uuid.uuid4()}/history", headers=auth(admin_token)), 404)
    assert_problem(client.get(f"/patients/{pid}/history/{uuid.uuid4()}", headers=auth(admin_token)), 404)


def test_orders_place_list_and_read_with_results(client, admin_token):
    pid = patient(client, admin_token)
    lis_order, result_id = new_order_with_result(uuid.UUID(pid))  # as the LIS consumer writes them
    body = {"code": {"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}, "priority": "stat"}
    resp = client.post(f"/patients/{pid}/orders", json=body, headers=auth(admin_token))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    placed = resp.get_json()
    assert resp.headers["Location"] == f"/orders/{placed['id']}"
    assert (placed["status"], placed["priority"], placed["results"]) == ("requested", "stat", [])
    assert placed["placer_number"].startswith("PM") and placed["code"] == body["code"]
    assert events_for(pid)[-1] == (catalog.ORDER_REQUESTED, {"patient_id": pid, "order_id": placed["id"],
                                                             "status": "requested"})
    with unit_of_work() as uow:
        row = uow.session.get(LabOrder, uuid.UUID(placed["id"]))
        assert (row.placer_namespace, row.source) == ("patient-mgt", "api")

    page = client.get(f"/patients/{pid}/orders", headers=auth(admin_token)).get_json()
    assert [o["id"] for o in page["items"]] == [placed["id"], str(lis_order)]
    lis = client.get(f"/orders/{lis_order}", headers=auth(admin_token)).get_json()
    assert lis["results"] == [{
        "id": str(result_id), "code": {"system": "LN", "code": "2345-7", "display": "Glucose"}, "value": "5.4",
        "value_type": "NM", "units": "mmol/L", "reference_range": "3.9-5.5", "abnormal_flags": [], "status": "F",
        "observed_at": lis["results"][0]["observed_at"], "notes": [], "sub_id": None}]
    first = client.get(f"/patients/{pid}/orders?limit=1", headers=auth(admin_token)).get_json()
    second = client.get(f"/patients/{pid}/orders?limit=1&cursor={first['next_cursor']}", headers=auth(admin_token)).get_json()
    assert [o["id"] for o in first["items"] + second["items"]] == [placed["id"], str(lis_order)]
    assert second["next_cursor"] is None
    assert ("order.create", "success") in audit_actions(pid) and ("order.read", "success") in audit_actions(pid)


def test_order_refusals(client, admin_token):
    pid = patient(client, admin_token)
    good = {"code": {"system": "http://loinc.org", "code": "718-7"}}
    doc = assert_problem(client.post(f"/patients/{pid}/orders", json={"code": {"system": "x"}, "priority": "now"},
                                     headers=auth(admin_token)), 422)
    assert error_fields(doc) == {"code.code", "priority"}
    assert_problem(client.get(f"/orders/{uuid.uuid4()}", headers=auth(admin_token)), 404)
    assert_problem(client.post(f"/patients/{uuid.uuid4()}/orders", json=good, headers=auth(admin_token)), 404)
    assert client.delete(f"/patients/{pid}", headers={**auth(admin_token), "If-Match": 'W/"1"'}).status_code == 204
    assert_problem(client.post(f"/patients/{pid}/orders", json=good, headers=auth(admin_token)), 409)
    with unit_of_work() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(LabOrder)
                                  .where(LabOrder.patient_id == uuid.UUID(pid))) == 0
