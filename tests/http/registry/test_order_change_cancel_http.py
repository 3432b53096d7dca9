"""PATCH /orders/{id} and POST /orders/{id}/cancel: what may change before the lab accepts an order,
under If-Match, each change an event for the LIS; refusals change nothing."""

import uuid

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.events import catalog
from shared.models import LabOrder
from tests.conftest import auth
from tests.http.registry.support import assert_problem, audit_actions, error_fields, events_for, patient_body
from tests.integration.registry.factories import new_order_with_result

GLUCOSE = {"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}


def _placed(client, token) -> tuple[str, dict]:
    resp = client.post("/patients?allow_duplicate=true", json=patient_body(), headers=auth(token))
    pid = resp.get_json()["id"]
    order = client.post(f"/patients/{pid}/orders", json={"code": GLUCOSE, "notes": "fasting"}, headers=auth(token))
    assert order.status_code == 201
    return pid, order.get_json()


def _if_match(token, version: int) -> dict:
    return {**auth(token), "If-Match": f'W/"{version}"'}


def test_change_then_cancel_each_emit_their_event(client, admin_token):
    pid, order = _placed(client, admin_token)
    changed = client.patch(f"/orders/{order['id']}", json={"priority": "stat", "notes": None},
                           headers=_if_match(admin_token, 1))
    assert changed.status_code == 200 and changed.headers["ETag"] == 'W/"2"'
    body = changed.get_json()
    assert (body["priority"], body["notes"], body["code"], body["version"]) == ("stat", None, GLUCOSE, 2)
    assert events_for(pid)[-1] == (catalog.ORDER_CHANGED, {"patient_id": pid, "order_id": order["id"], "status": "requested"})

    cancelled = client.post(f"/orders/{order['id']}/cancel", headers=_if_match(admin_token, 2))
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert events_for(pid)[-1] == (catalog.ORDER_CANCELLED, {"patient_id": pid, "order_id": order["id"], "status": "cancelled"})
    assert {("order.update", "success"), ("order.cancel", "success")} <= set(audit_actions(pid))
    assert client.get(f"/orders/{order['id']}", headers=auth(admin_token)).get_json()["version"] == 3


def test_refusals_change_nothing(client, admin_token):
    pid, order = _placed(client, admin_token)
    url = f"/orders/{order['id']}"
    assert_problem(client.patch(url, json={"priority": "stat"}, headers=auth(admin_token)), 428)
    assert_problem(client.patch(url, json={"priority": "stat"}, headers=_if_match(admin_token, 7)), 412)
    assert error_fields(assert_problem(client.patch(url, json={}, headers=_if_match(admin_token, 1)), 422)) is not None
    assert_problem(client.patch(url, json={"priority": None}, headers=_if_match(admin_token, 1)), 422)
    assert_problem(client.patch(url, json={"status": "final"}, headers=_if_match(admin_token, 1)), 422)
    assert_problem(client.post(f"/orders/{uuid.uuid4()}/cancel", headers=_if_match(admin_token, 1)), 404)
    with unit_of_work() as uow:  # the lab accepted it: a filler number arrived
        uow.session.execute(sa.update(LabOrder).where(LabOrder.id == uuid.UUID(order["id"])).values(filler_number=f"F-{uuid.uuid4().hex[:8]}"))
    assert_problem(client.patch(url, json={"priority": "stat"}, headers=_if_match(admin_token, 1)), 409)
    assert client.post(f"{url}/cancel", headers=_if_match(admin_token, 1)).status_code == 200  # cancelling still is
    assert_problem(client.post(f"{url}/cancel", headers=_if_match(admin_token, 2)), 409)  # already cancelled
    current = client.get(url, headers=auth(admin_token)).get_json()
    assert (current["priority"], current["notes"], current["status"], current["version"]) == ("routine", "fasting", "cancelled", 2)
    assert [t for t, _ in events_for(pid)].count(catalog.ORDER_CHANGED) == 0


def test_an_order_from_the_lis_is_not_changed_here(client, admin_token):
    resp = client.post("/patients?allow_duplicate=true", json=patient_body(), headers=auth(admin_token))
    pid = uuid.UUID(resp.get_json()["id"])
    lis_order, _ = new_order_with_result(pid)
    assert_problem(client.post(f"/orders/{lis_order}/cancel", headers=_if_match(admin_token, 1)), 409)
    assert_problem(client.patch(f"/orders/{lis_order}", json={"priority": "stat"}, headers=_if_match(admin_token, 1)), 409)
