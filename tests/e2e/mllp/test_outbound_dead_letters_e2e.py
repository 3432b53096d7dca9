"""Orders the LIS never accepts, the whole way on `make dev`'s stack: POST an order → jobs renders it →
the outbound topic (Pub/Sub emulator) → the MLLP adapter → a fake LIS that refuses it (AE) or stays
silent. Each delivery is sent LIS_OUTBOUND_ATTEMPTS times with backoff, Pub/Sub redelivers it, then
moves it to lis-outbound-dead-letter; the adapter drains that topic's hold subscription into
`dead_letters`, so the api lists it (GET /events/dead-letters) and /metrics counts it. A re-drive once
the LIS accepts sends it again and the order shows its acceptance."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import pytest
import requests
import sqlalchemy as sa

from shared.devtools.devrun import DevStack
from shared.models import DeadLetter
from tests.http.registry.support import patient_body
from tests.support.fake_lis import FakeLis
from tests.support.waiting import wait_for

from .conftest import orders_out_stack

pytestmark = pytest.mark.e2e

ATTEMPTS, DELIVERIES = 2, 5  # sends per delivery (LIS_OUTBOUND_ATTEMPTS); deliveries before dead-lettering (emulator wiring)


@pytest.fixture(scope="module")
def dev(database_url: str, fake_lis: FakeLis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    with orders_out_stack(database_url, fake_lis, tmp_path_factory.mktemp("outdead"), LIS_OUTBOUND_ATTEMPTS=str(ATTEMPTS),
                          LIS_OUTBOUND_BACKOFF_SECONDS="0.1", LIS_ACK_TIMEOUT_SECONDS="1",
                          OTEL_METRICS_EXPORTER="prometheus") as stack:
        yield stack


def _token() -> str:
    from shared.auth import create_api_key  # noqa: PLC0415
    from shared.db import unit_of_work  # noqa: PLC0415

    with unit_of_work() as uow:
        _key, token = create_api_key(uow, f"e2e-outbound-dead-{uuid.uuid4().hex[:8]}", ["admin", "metrics:read"])
    return token


def _rows() -> list[DeadLetter]:
    from shared.db import unit_of_work  # noqa: PLC0415

    with unit_of_work() as uow:
        rows = list(uow.session.scalars(sa.select(DeadLetter).where(DeadLetter.event_source.like("%/lis-outbound-dead-letter"))
                                        .order_by(DeadLetter.seq)))
        uow.session.expunge_all()
    return rows


def _sent(lis: FakeLis, placer: str) -> int:
    return sum(f"|{placer}^".encode() in raw for raw in list(lis.received))


def test_refused_and_unanswered_orders_are_dead_lettered_listed_counted_and_redriven(dev: DevStack, fake_lis: FakeLis):
    lis = fake_lis
    api, headers = dev.url("api"), {"Authorization": f"Bearer {_token()}"}
    patient = requests.post(f"{api}/patients?allow_duplicate=true", headers=headers, timeout=30, json=patient_body())
    assert patient.status_code == 201, patient.text
    pid = patient.json()["id"]
    orders = {}
    for mode in ("refuse", "silent"):
        placed = requests.post(f"{api}/patients/{pid}/orders", headers=headers, timeout=30,
                               json={"code": {"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}})
        assert placed.status_code == 201, placed.text
        lis.command(placed.json()["placer_number"], mode)
        orders[mode] = placed.json()

    rows = wait_for(lambda: (r if len(r := _rows()) == 2 else None), timeout=240, interval=1,
                    what="both order messages dead-lettered and stored")
    for order in orders.values():  # every delivery used its sends with backoff, then Pub/Sub gave up
        assert _sent(lis, order["placer_number"]) == ATTEMPTS * DELIVERIES
        shown = requests.get(f"{api}/orders/{order['id']}", headers=headers, timeout=30).json()
        assert (shown["sent_to_lis_at"], shown["lis_accepted_at"], shown["version"]) == (None, None, 1)
    for row in rows:
        assert (row.origin, row.event_subject, row.redriven_at) == ("pubsub", pid, None)
        assert row.redrive_target == f"projects/{dev.project}/topics/lis-outbound"
        # Attributes carry ids only; the message (patient data) stays in the row's data.
        assert set(row.attributes) <= {"specversion", "id", "source", "type", "datacontenttype", "time", "subject"}
        message = json.loads(row.data or b"{}")["message"]
        assert base64.b64decode(message["data"]) in lis.received and message["orderingKey"] == pid
        assert row.delivery_attempts == DELIVERIES

    listed = requests.get(f"{api}/events/dead-letters", headers=headers, timeout=30).json()["items"]
    mine = {item["id"]: item for item in listed if item["id"] in {str(r.id) for r in rows}}
    assert len(mine) == 2
    for item in mine.values():
        assert item["redrivable"] and item["data"] is None  # an order message holds patient data: not shown
        assert item["event"]["source"].endswith("/topics/lis-outbound-dead-letter")
    metrics = requests.get(f"{api}/metrics", headers=headers, timeout=30)
    assert metrics.status_code == 200, metrics.text
    [pending] = [line for line in metrics.text.splitlines() if line.startswith("patient_mgt_dead_letters_pending ")]
    assert float(pending.split()[1]) >= 2

    # The LIS is fixed: re-drive both; they are sent again and the orders show the LIS's acceptance.
    for order in orders.values():
        lis.command(order["placer_number"], "accept")
    for row in rows:
        redriven = requests.post(f"{api}/events/dead-letters/{row.id}/redrive", headers=headers, timeout=30)
        assert redriven.status_code == 200, redriven.text
    for order in orders.values():
        shown = wait_for(lambda o=order: (b if (b := requests.get(f"{api}/orders/{o['id']}", headers=headers, timeout=30)
                                                   .json())["lis_accepted_at"] else None),
                         timeout=90, interval=0.5, what="the re-driven order accepted")
        assert shown["sent_to_lis_at"] and shown["filler_number"]
    assert all(row.redriven_at is not None for row in _rows())
