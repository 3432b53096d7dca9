"""The SQL statements an ORU^R01 with 8 OBX costs the consumer, counted as they are sent (issue 15:
≤ 6 for a known patient), with everything the message must leave behind.

Statements are counted in pg8000 (``tests.support.statements.counting``, as ``bench.anatomy`` counts), never time.
Each run uses a family name, identifiers and order numbers of its own, so no other test's patient is
a probable duplicate of this one (that would add the flag's writes).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, timedelta

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.events import catalog
from shared.models import AuditEntry, PatientNameToken, ResourceVersion
from shared.services.name_index import name_tokens
from shared.services.patients import load_patient, to_resource
from tests.support import lis_db
from tests.support.hl7_gen import START, GenOrder, GenPatient, oru_r01, results_for
from tests.support.lis_delivery import new_id, push
from tests.support.statements import counting

# What these paths take today (the budget for an 8-OBX ORU is 6): a change that adds one fails.
KNOWN_PATIENT_BUDGET = 4  # row insert (+ claim lock), claim with the patient, order, final statement with every write
NEW_PATIENT_BUDGET = 6  # + the MRN's number (with the birth date's lock) and the probable-duplicate search
# The row's insert conflicts (the claim and the order lookup sent in the same write find it had
# none, and write nothing), its delivery count is bumped.
REDELIVERY_BUDGET = 4


@contextmanager
def statements() -> Iterator[list[str]]:
    """The statements sent while the block runs (transaction control apart), counted in pg8000 as
    ``bench.anatomy`` counts them: the fast path runs on the driver pool, below SQLAlchemy's events."""
    sent: list[str] = []
    with counting() as counter:
        yield sent
        sent.extend(["statement"] * counter["statements"])


def _patient(run: str) -> GenPatient:
    return GenPatient(mrn=f"BUD{run}", authority=f"HOSP-BUD{run}", family=f"Budgetova{run}", given=f"Oksana{run}",
                      middle="", birth_date=date(1951, 3, 4), sex="F", phone="+14155550000", street="1 Main St",
                      city="Köln", postal="50667")


def _oru(p: GenPatient, run: str, n: int) -> bytes:
    rng = random.Random(n)
    when = START + timedelta(hours=n)
    order = GenOrder(placer=f"PBUD{run}{n}", filler=f"FBUD{run}{n}", panel="BMP", ordered_at=when)
    order.values = results_for(rng, order)
    return oru_r01(p, order, "F", f"LAB-BUD{run}", f"BUD{run}{n:04d}", when, rng)


def _deliver(client, raw: bytes, message_id: str) -> tuple[list[str], object]:  # noqa: ANN001
    headers, body = push(raw, message_id)
    with statements() as sent:
        response = client.post("/", headers=headers, data=body)
    assert response.status_code == 200
    [row] = lis_db.messages(pubsub_message_id=message_id)
    return sent, row


def _audit_of(message_id: uuid.UUID) -> list[object]:
    with unit_of_work() as uow:
        return list(uow.session.execute(sa.select(AuditEntry.__table__).where(
            AuditEntry.action == "lis.message.apply", AuditEntry.details["lis_message_id"].astext == str(message_id))).all())


def test_an_8_obx_oru_stays_within_its_statement_budget_and_leaves_everything_behind(lis_client):
    run = uuid.uuid4().hex[:8].upper()
    p = _patient(run)
    first_id, second_id = new_id(), new_id()

    sent, first = _deliver(lis_client, _oru(p, run, 1), first_id)
    assert (first.status, first.error_code) == ("processed", None)
    assert len(sent) <= NEW_PATIENT_BUDGET, sent
    sent, second = _deliver(lis_client, _oru(p, run, 2), second_id)
    assert (second.status, second.error_code) == ("processed", None)
    assert len(sent) <= KNOWN_PATIENT_BUDGET, sent
    sent, again = _deliver(lis_client, _oru(p, run, 2), second_id)  # Pub/Sub redelivers the second
    assert (again.status, again.delivery_count) == ("processed", 2)
    assert len(sent) <= REDELIVERY_BUDGET, sent

    patient_id = lis_db.patient_id_by_identifier(p.authority, p.mrn)
    assert patient_id is not None and first.patient_id == second.patient_id == patient_id
    stored = lis_db.patient(patient_id)
    assert (stored["family"], stored["source"], stored["version"]) == (p.family, "lis", 1)
    assert stored["identifiers"] == {(p.mrn, p.authority, "MR")} and len(stored["mrn_identifier"]) == 1
    orders = lis_db.orders(patient_id)
    assert [o["placer_number"] for o in orders] == [f"PBUD{run}1", f"PBUD{run}2"]
    for order, message in zip(orders, (first, second), strict=True):
        results = lis_db.results(order["id"])
        assert len(results) == 8 and {r["status"] for r in results} == {"F"}
        assert {r["lis_message_id"] for r in results} == {message.id} and all(r["version"] == 1 for r in results)
        assert order["status"] == "final"
        types = lis_db.outbox_types(patient_id)
        assert types.count(catalog.RESULT_AVAILABLE) == 2 and types.count(catalog.ORDER_CREATED) == 2
        assert types.count(catalog.LIS_PATIENT_CREATED) == 1
        assert len(_audit_of(message.id)) == 1
    with unit_of_work() as uow:
        [version] = uow.session.execute(sa.select(ResourceVersion.__table__).where(
            ResourceVersion.resource_type == "patient", ResourceVersion.resource_id == patient_id)).all()
        # The version's snapshot is the patient as the registry reads it back.
        assert version.snapshot == to_resource(load_patient(uow, patient_id)).model_dump(mode="json")
        assert (version.version, version.change) == (1, "lis-create")
        # The name index a search reads (sent with the final statement).
        tokens = uow.session.execute(sa.select(PatientNameToken.kind, PatientNameToken.token).where(
            PatientNameToken.patient_id == patient_id)).all()
        assert set(tokens) == name_tokens(p.family, [p.given]) != set()


# Round trips to PostgreSQL (each wait for the server's answer, COMMIT included), the connection warm:
# every statement prepared on it once (shared.prepared), the BEGIN sent with the first statement, the
# row's insert, the claim and the order lookup in one write (``shared.lis.ingest.Ahead``), and the
# COMMIT in the same write as the final statement (``RowMeta.commits``).
KNOWN_PATIENT_ROUND_TRIPS = 2  # the row with its reads, the final statement with its COMMIT
NEW_PATIENT_ROUND_TRIPS = 4  # + the MRN's number and the probable-duplicate search
REDELIVERY_ROUND_TRIPS = 3  # the row with its reads, the delivery count, COMMIT


@contextmanager
def round_trips(monkeypatch) -> Iterator[list[int]]:  # noqa: ANN001
    """Waits for the server's answer, counted in pg8000 as ``bench.anatomy`` counts them — each write
    flushed to the server, whatever reads its answer (pg8000's ``handle_messages`` or
    ``shared.db.wire``'s reader of a pipeline) — not those preparing a statement (once per connection
    and text)."""
    import pg8000.core as core  # noqa: PLC0415

    waits = [0]
    preparing = [0]
    flush, prepare = core._flush, core.CoreConnection.prepare_statement

    def counted(sock):  # noqa: ANN001, ANN202
        if not preparing[0]:
            waits[0] += 1
        return flush(sock)

    def prepared(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        preparing[0] += 1
        try:
            return prepare(self, *args, **kwargs)
        finally:
            preparing[0] -= 1

    monkeypatch.setattr(core, "_flush", counted)
    monkeypatch.setattr(core.CoreConnection, "prepare_statement", prepared)
    yield waits


def test_an_8_obx_oru_takes_two_round_trips_its_reads_with_the_row_and_its_commit_with_the_writes(lis_client, monkeypatch):
    run = uuid.uuid4().hex[:8].upper()
    # Phones of their own: the same birth date and phone would make them probable duplicates of
    # the other test's patient (the flag's writes are not this path).
    warm, p = (replace(_patient(run + tag), phone=f"+1415{tag}{int(run, 16) % 10**7:07d}") for tag in ("1", "2"))
    _deliver(lis_client, _oru(warm, run + "W", 1), new_id())  # the pool's connection, its statements prepared
    new_id_, known_id = new_id(), new_id()
    for raw, message_id, budget in ((_oru(p, run, 1), new_id_, NEW_PATIENT_ROUND_TRIPS),
                                    (_oru(p, run, 2), known_id, KNOWN_PATIENT_ROUND_TRIPS),
                                    (_oru(p, run, 2), known_id, REDELIVERY_ROUND_TRIPS)):
        headers, body = push(raw, message_id)
        with round_trips(monkeypatch) as waits:
            response = lis_client.post("/", headers=headers, data=body)
        assert response.status_code == 200
        assert waits[0] == budget, (waits[0], budget)
    [row] = lis_db.messages(pubsub_message_id=known_id)
    assert (row.status, row.delivery_count) == ("processed", 2)
