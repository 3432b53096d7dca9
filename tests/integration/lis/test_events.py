"""What the LIS feed announces, in the same transaction as its writes (ids and codes only)."""

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import OutboxEvent
from tests.support.lis_ingest import Feed, hl7, one

P = "org.patientmgt."


def _events(patient_id):
    with unit_of_work() as uow:
        rows = uow.session.execute(sa.select(OutboxEvent.type, OutboxEvent.data).where(
            OutboxEvent.subject == str(patient_id)).order_by(OutboxEvent.seq)).all()
    return [(r.type.removeprefix(P), r.data) for r in rows]


def test_the_life_of_an_order_in_events(database_url):
    f = Feed()
    order = f"ORC|NW|{f.id('ORD1')}|||SC"
    created = one(hl7(f.msh("ORM^O01", "20260101090000"), f.pid("A"), order, f"OBR|1|{f.id('ORD1')}||GLU^Glucose^L"))
    pid = created.patient_id
    prelim = hl7(f.msh("ORU^R01", "20260101100000"), f.pid("A"), f"OBR|1|{f.id('ORD1')}||GLU^Glucose^L|||||||||||||||||||||P",
                 "OBX|1|NM|GLU^Glucose^L||99|mg/dL|||||P")
    final = hl7(f.msh("ORU^R01", "20260101110000"), f.pid("A", name="DOE^JANET"),
                f"OBR|1|{f.id('ORD1')}||GLU^Glucose^L|||||||||||||||||||||F", "OBX|1|NM|GLU^Glucose^L||101|mg/dL|H||||F")
    one(prelim)
    one(final)
    one(final.replace(b"|P|2.5.1", b"|P|2.5.1", 1))  # the same message again: a duplicate, announces nothing
    events = _events(pid)
    kinds = [k for k, _ in events]
    assert kinds == ["lis.patient.created.v1", "order.created.v1", "order.updated.v1", "lis.patient.updated.v1",
                     "order.updated.v1", "result.available.v1"]
    assert events[0][1] == {"patient_id": str(pid), "version": 1, "origin": "lis"}
    assert events[1][1]["status"] == "scheduled" and events[2][1]["status"] == "preliminary"
    assert events[3][1]["changed"] == ["name"]
    available = events[5][1]
    assert available["status"] == "final" and len(available["result_ids"]) == 1
    assert all("DOE" not in str(data) and "101" not in str(data) for _, data in events)
