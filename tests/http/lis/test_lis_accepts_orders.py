"""The LIS accepts an order placed here in a later order message of its own (ORM^O01 / OML^O21 with
ORC-1 OK, or a filler number in ORC-3), delivered to the real lis_consumer function as Pub/Sub
pushes it: the order shows `lis_accepted_at` (the message's MSH-7, the earliest when several say so)
and the filler number; redeliveries change nothing; a refusal accepts nothing; every apply is audited."""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.events import catalog
from shared.models import AuditEntry
from tests.conftest import auth
from tests.http.registry.support import events_for, patient_body
from tests.support.lis_delivery import new_id, push
from tests.support.lis_ingest import hl7

GLUCOSE = {"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}


def _placed(client, token) -> tuple[dict, dict]:
    patient = client.post("/patients?allow_duplicate=true", json=patient_body(), headers=auth(token)).get_json()
    order = client.post(f"/patients/{patient['id']}/orders", json={"code": GLUCOSE}, headers=auth(token))
    assert order.status_code == 201
    return patient, order.get_json()


def _from_lis(kind: str, patient: dict, order: dict, *, control: str, filler: str | None, sent: str,
              control_id: str | None = None) -> bytes:
    """An order message the LIS writes about our order: PID-3 and ORC-2 echo what we sent it."""
    cx = "~".join(f"{i['value']}^^^{i['system']}" for i in patient["identifiers"])
    structure = {"ORM": "ORM^O01^ORM_O01", "OML": "OML^O21^OML_O21"}[kind]
    placer = f"{order['placer_number']}^{order['placer_namespace']}"
    filler_ei = f"{filler}^LAB" if filler else ""
    return hl7(f"MSH|^~\\&|LIS|LAB-{uuid.uuid4().hex[:6]}|PATIENT-MGT||{sent}||{structure}|{control_id or new_id()}|P|2.5.1",
               f"PID|1||{cx}||Doe^Jo",
               f"ORC|{control}|{placer}|{filler_ei}",
               f"OBR|1|{placer}|{filler_ei}|2345-7^Glucose^LN")


def _deliver(lis_client, raw: bytes, message_id: str | None = None) -> dict:
    headers, body = push(raw, message_id)
    resp = lis_client.post("/projects/patient-mgt-local/topics/lis-messages", headers=headers, data=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    [message] = resp.get_json()["messages"]
    return message


def _order(client, token, order_id: str) -> dict:
    return client.get(f"/orders/{order_id}", headers=auth(token)).get_json()


def _accepted_counts(patient_id: str) -> list[int]:
    with unit_of_work() as uow:
        rows = uow.session.scalars(sa.select(AuditEntry.details).where(
            AuditEntry.action == "lis.message.apply", AuditEntry.patient_ids.contains([uuid.UUID(patient_id)]))
            .order_by(AuditEntry.id)).all()
    return [d["orders_accepted"] for d in rows]


def test_an_orm_with_ok_and_a_filler_number_accepts_the_order_once(client, lis_client, admin_token):
    patient, order = _placed(client, admin_token)
    filler = f"F-{uuid.uuid4().hex[:8]}"
    raw = _from_lis("ORM", patient, order, control="OK", filler=filler, sent="20261204101500+0000")
    message_id = new_id()
    assert _deliver(lis_client, raw, message_id)["status"] == "processed"
    accepted = _order(client, admin_token, order["id"])
    assert accepted["lis_accepted_at"] == "2026-12-04T10:15:00Z"
    assert accepted["sent_to_lis_at"] == "2026-12-04T10:15:00Z"  # the LIS has it, whatever became of the ACK
    assert (accepted["filler_number"], accepted["filler_namespace"], accepted["version"]) == (filler, "LAB", 2)
    assert events_for(patient["id"])[-1] == (catalog.ORDER_UPDATED, {
        "patient_id": patient["id"], "order_id": order["id"], "status": "requested"})

    assert _deliver(lis_client, raw, message_id)["status"] == "duplicate"  # Pub/Sub redelivers
    again = _from_lis("ORM", patient, order, control="OK", filler=filler, sent="20261204111500+0000")
    assert _deliver(lis_client, again)["status"] == "processed"  # the LIS says it again, later
    assert _order(client, admin_token, order["id"]) == accepted  # the earliest acceptance stands; no new version
    assert _accepted_counts(patient["id"]) == [1, 0]

    # The lab accepted it: it can no longer be changed here (cancelling still can).
    changed = client.patch(f"/orders/{order['id']}", json={"priority": "stat"},
                           headers={**auth(admin_token), "If-Match": 'W/"2"'})
    assert changed.status_code == 409


def test_an_oml_arriving_late_moves_acceptance_to_the_earliest_message(client, lis_client, admin_token):
    patient, order = _placed(client, admin_token)
    # ORC-1 OK without a filler number: accepted, nothing to adopt.
    assert _deliver(lis_client, _from_lis("OML", patient, order, control="OK", filler=None,
                                          sent="20261204120000+0000"))["status"] == "processed"
    first = _order(client, admin_token, order["id"])
    assert (first["lis_accepted_at"], first["filler_number"], first["version"]) == ("2026-12-04T12:00:00Z", None, 2)
    assert client.patch(f"/orders/{order['id']}", json={"priority": "stat"},
                        headers={**auth(admin_token), "If-Match": 'W/"2"'}).status_code == 409
    # An earlier status message (ORC-1 SC) with the filler number arrives after it.
    filler = f"F-{uuid.uuid4().hex[:8]}"
    assert _deliver(lis_client, _from_lis("OML", patient, order, control="SC", filler=filler,
                                          sent="20261204113000+0000"))["status"] == "processed"
    later = _order(client, admin_token, order["id"])
    assert (later["lis_accepted_at"], later["filler_number"], later["version"]) == ("2026-12-04T11:30:00Z", filler, 3)
    assert later["sent_to_lis_at"] == "2026-12-04T12:00:00Z"  # set once, by the first message
    assert _accepted_counts(patient["id"]) == [1, 1]


def test_a_refusal_accepts_nothing(client, lis_client, admin_token):
    patient, order = _placed(client, admin_token)
    raw = _from_lis("ORM", patient, order, control="UA", filler=None, sent="20261204101500+0000")
    assert _deliver(lis_client, raw)["status"] == "processed"
    refused = _order(client, admin_token, order["id"])
    assert (refused["lis_accepted_at"], refused["sent_to_lis_at"], refused["filler_number"]) == (None, None, None)
    assert _accepted_counts(patient["id"]) == [0]


def test_an_order_the_lis_created_itself_is_not_marked_accepted(client, lis_client, admin_token):
    patient, order = _placed(client, admin_token)
    own = {"placer_number": f"LIS-{uuid.uuid4().hex[:8]}", "placer_namespace": "LAB"}
    filler = f"F-{uuid.uuid4().hex[:8]}"
    assert _deliver(lis_client, _from_lis("ORM", patient, own, control="NW", filler=filler,
                                          sent="20261204101500+0000"))["status"] == "processed"
    assert _deliver(lis_client, _from_lis("ORM", patient, own, control="OK", filler=filler,
                                          sent="20261204101600+0000"))["status"] == "processed"
    listed = client.get(f"/patients/{patient['id']}/orders", headers=auth(admin_token)).get_json()["items"]
    lis_order = next(o for o in listed if o["placer_number"] == own["placer_number"])
    assert (lis_order["lis_accepted_at"], lis_order["sent_to_lis_at"]) == (None, None)
    assert _order(client, admin_token, order["id"])["lis_accepted_at"] is None
    assert json.dumps(_accepted_counts(patient["id"])) == "[0, 0]"
