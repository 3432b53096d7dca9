"""Orders out, the whole way on `make dev`'s stack: POST an order to the api → order.requested →
Trigger → jobs renders ORM^O01 → the outbound topic (Pub/Sub emulator) → the MLLP adapter → a fake
LIS that accepts with an ORR; the order then shows sent_to_lis_at, lis_accepted_at and the LIS's
filler number. A cancel reaches the LIS as ORC-1 CA."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import hl7
import pytest
import requests

from shared.devtools.devrun import DevStack
from tests.http.registry.support import patient_body
from tests.support.fake_lis import FakeLis
from tests.support.waiting import wait_for

from .conftest import orders_out_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def dev(database_url: str, fake_lis: FakeLis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    with orders_out_stack(database_url, fake_lis, tmp_path_factory.mktemp("ordersout")) as stack:
        yield stack


def _token() -> str:
    from shared.auth import create_api_key  # noqa: PLC0415
    from shared.db import unit_of_work  # noqa: PLC0415

    with unit_of_work() as uow:
        _key, token = create_api_key(uow, f"e2e-orders-out-{uuid.uuid4().hex[:8]}", ["admin"])
    return token


def _sent_with(lis: FakeLis, placer: str, control: str) -> list[hl7.Message]:
    parsed = [hl7.parse(raw.decode()) for raw in list(lis.received)]
    return [m for m in parsed if str(m.segment("ORC")[2][0][0]) == placer and str(m.segment("ORC")[1]) == control]


def test_an_order_placed_reaches_the_lis_and_shows_its_acceptance_then_a_cancel_follows(dev: DevStack, fake_lis: FakeLis):
    lis = fake_lis
    api, headers = dev.url("api"), {"Authorization": f"Bearer {_token()}"}
    patient = requests.post(f"{api}/patients?allow_duplicate=true", headers=headers, timeout=30,
                            json=patient_body(sex="female"))
    assert patient.status_code == 201, patient.text
    order = requests.post(f"{api}/patients/{patient.json()['id']}/orders", headers=headers, timeout=30,
                          json={"code": {"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}})
    assert order.status_code == 201, order.text
    placed = order.json()

    def accepted():
        body = requests.get(f"{api}/orders/{placed['id']}", headers=headers, timeout=30).json()
        return body if body["lis_accepted_at"] else None

    shown = wait_for(accepted, timeout=90, interval=0.3, what="the LIS to accept the order")
    [sent] = _sent_with(lis, placed["placer_number"], "NW")
    assert str(sent.segment("MSH")[9]) == "ORM^O01^ORM_O01"
    assert shown["sent_to_lis_at"] and shown["filler_number"] == f"F-{sent.segment('MSH')[10]}"

    cancel = requests.post(f"{api}/orders/{placed['id']}/cancel", timeout=30,
                           headers={**headers, "If-Match": f'W/"{shown["version"]}"'})
    assert cancel.status_code == 200, cancel.text
    [cancelled] = wait_for(lambda: _sent_with(lis, placed["placer_number"], "CA"), timeout=90, what="the cancel at the LIS")
    assert str(cancelled.segment("ORC")[3]).split("^")[0] == shown["filler_number"]  # the lab's number travels with it
