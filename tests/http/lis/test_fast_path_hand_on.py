"""A message the driver pool's fast path hands on to the ORM's unit of work (shared.db.driver_uow.NeedsOrm:
here a known patient's phone that changes) is applied once: the
first attempt is rolled back whole before the second, so the stored row, the order, its results, the
patient's version, the audit row and the outbox rows are each written once — and the driver pool's path
is the one taken when nothing needs the ORM (a new patient, a known one unchanged or with one identifier
more)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.db import driver_uow
from shared.events import catalog
from shared.models import AuditEntry, ResourceVersion
from tests.http.lis.test_statement_budget import _oru, _patient
from tests.support import lis_db
from tests.support.lis_delivery import new_id, push


def _deliver(client, raw: bytes, monkeypatch) -> list[str]:  # noqa: ANN001
    """Deliver `raw`; the steps the driver pool's unit of work declined (NeedsOrm), in order."""
    declined: list[str] = []
    original = driver_uow.NeedsOrm.__init__

    def noted(self, *args):  # noqa: ANN001, ANN002, ANN202
        declined.append(args[0] if args else "")
        original(self, *args)

    monkeypatch.setattr(driver_uow.NeedsOrm, "__init__", noted)
    headers, body = push(raw, new_id())
    response = client.post("/", headers=headers, data=body)
    assert response.status_code == 200
    monkeypatch.undo()
    return declined


def test_a_message_handed_to_the_orm_is_applied_once(lis_client, monkeypatch):
    run = uuid.uuid4().hex[:8].upper()
    # A phone of its own: the budget tests' patients share the birth date and phone (a probable duplicate
    # to flag would take the ORM's path for the first message too).
    p = replace(_patient(run), phone=f"+1415{int(run, 16) % 10**7:07d}")
    assert _deliver(lis_client, _oru(p, run, 1), monkeypatch) == []  # a new patient: the driver pool's path
    patient_id = lis_db.patient_id_by_identifier(p.authority, p.mrn)
    assert _deliver(lis_client, _oru(p, run, 2), monkeypatch) == []  # known, unchanged: the same
    own = f"{p.mrn}^^^{p.authority}^MR".encode()
    more = _oru(p, run, 3).replace(own, own + f"~SSN{run}^^^SSA^SS".encode())
    assert _deliver(lis_client, more, monkeypatch) == []  # known, one identifier more: the same
    changed = replace(p, phone=f"+1416{int(run, 16) % 10**7:07d}")
    declined = _deliver(lis_client, _oru(changed, run, 4), monkeypatch)
    assert declined == ["the patient's demographics change"]

    stored = lis_db.patient(patient_id)
    assert (stored["phone"], stored["version"]) == (changed.phone, 2)
    assert stored["identifiers"] == {(p.mrn, p.authority, "MR"), (f"SSN{run}", "SSA", "SS")}
    orders = lis_db.orders(patient_id)
    assert [o["placer_number"] for o in orders] == [f"PBUD{run}{n}" for n in (1, 2, 3, 4)]
    assert all(len(lis_db.results(o["id"])) == 8 for o in orders)
    types = lis_db.outbox_types(patient_id)
    assert (types.count(catalog.LIS_PATIENT_CREATED), types.count(catalog.LIS_PATIENT_UPDATED),
            types.count(catalog.ORDER_CREATED), types.count(catalog.RESULT_AVAILABLE)) == (1, 1, 4, 4)
    with unit_of_work() as uow:
        changes = uow.session.execute(sa.select(ResourceVersion.change).where(
            ResourceVersion.resource_type == "patient", ResourceVersion.resource_id == patient_id)
            .order_by(ResourceVersion.version)).scalars().all()
        audits = uow.session.execute(sa.select(sa.func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "lis.message.apply", AuditEntry.patient_ids.contains([patient_id]))).scalar()
    assert changes == ["lis-create", "lis-update"] and audits == 4
    with unit_of_work() as uow:  # the version of the change holds the identifier the message before added
        [snapshot] = uow.session.execute(sa.select(ResourceVersion.snapshot).where(
            ResourceVersion.resource_id == patient_id, ResourceVersion.change == "lis-update")).scalars().all()
    assert {(i["system"], i["value"]) for i in snapshot["identifiers"]} >= {("SSA", f"SSN{run}")}
