"""order.requested/changed/cancelled → the HL7 order message on the outbound topic (real Pub/Sub
emulator, real PostgreSQL), read back with python-hl7 (a parser no one here wrote)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import hl7
import pytest
from cloudevents.http import CloudEvent

from shared.db import unit_of_work
from shared.events import catalog
from shared.jobs.orders_out import send_order_to_lis
from shared.models import LabOrder, Patient, PatientIdentifier
from shared.settings import reset_settings
from tests.support.pubsub import running_emulator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def outbound(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    from google.cloud import pubsub_v1  # noqa: PLC0415

    from shared.events.publishing import pubsub_sink  # noqa: PLC0415

    with running_emulator(tmp_path_factory.mktemp("pubsub"), project=f"pm-out-{uuid.uuid4().hex[:6]}") as emu, \
            pytest.MonkeyPatch.context() as env:
        for name, value in {"PUBSUB_EMULATOR_HOST": emu.host, "LIS_OUTBOUND_TOPIC": "lis-outbound",
                            "GOOGLE_CLOUD_PROJECT": emu.project, "LIS_ORDER_MESSAGE_TYPE": "OML^O21"}.items():
            env.setenv(name, value)
        reset_settings()
        pubsub_sink._client = None  # a client bound to another emulator must not be reused
        emu.create_topic("lis-outbound")
        subscriber = pubsub_v1.SubscriberClient()
        subscription = subscriber.subscription_path(emu.project, "lis-outbound-test")
        subscriber.create_subscription(request={"name": subscription, "topic": emu.topic_path("lis-outbound")})
        try:
            yield subscriber, subscription
        finally:
            subscriber.close()
            pubsub_sink._client = None
            env.undo()
            reset_settings()


def _pull(subscriber, subscription) -> list:
    for _ in range(20):
        response = subscriber.pull(subscription=subscription, max_messages=10, timeout=10)
        if response.received_messages:
            subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages])
            return [m.message for m in response.received_messages]
    return []


def _order() -> tuple[uuid.UUID, uuid.UUID, str]:
    patient_id, order_id, lab_id = uuid.uuid4(), uuid.uuid4(), f"LAB-{uuid.uuid4().hex[:8]}"
    mrn = f"T{uuid.uuid4().hex[:10]}"
    with unit_of_work() as uow:
        uow.session.add(Patient(id=patient_id, mrn=mrn, family="Mensah", given=["Ama"], family_norm="mensah",
                                first_given_norm="ama", birth_date=date(1990, 5, 17), sex="female"))
        uow.flush()
        uow.session.add(PatientIdentifier(patient_id=patient_id, system="EVTLAB", value=lab_id, type="MR"))
        uow.session.add(LabOrder(id=order_id, patient_id=patient_id, placer_namespace="patient-mgt",
                                 placer_number=f"PM{uuid.uuid4().int % 10**9}", code_system="http://loinc.org", code="2345-7",
                                 code_display="Glucose", status="requested", priority="stat", source="api"))
    return patient_id, order_id, lab_id


def _event(event_type: str, patient_id: uuid.UUID, order_id: uuid.UUID) -> CloudEvent:
    return CloudEvent({"type": event_type, "source": "/patient-mgt/api", "id": str(uuid.uuid4()), "subject": str(patient_id)},
                      {"patient_id": str(patient_id), "order_id": str(order_id), "status": "requested"})


@pytest.mark.parametrize(("event_type", "control"), [(catalog.ORDER_REQUESTED, "NW"), (catalog.ORDER_CHANGED, "XO"),
                                                     (catalog.ORDER_CANCELLED, "CA")])
def test_each_order_event_is_published_as_an_oml_with_its_order_control(outbound, database_url, event_type, control):
    patient_id, order_id, lab_id = _order()
    event = _event(event_type, patient_id, order_id)
    with unit_of_work() as uow:
        assert send_order_to_lis(uow, event) == "published"
    [message] = _pull(*outbound)
    assert message.ordering_key == str(patient_id)  # one patient's order messages in order
    assert message.attributes["ce-id"] == event["id"]
    parsed = hl7.parse(message.data.decode())
    assert str(parsed.segment("MSH")[9]) == "OML^O21^OML_O21"
    assert str(parsed.segment("MSH")[10]) == event["id"].replace("-", "")[:20]
    assert str(parsed.segment("ORC")[1]) == control
    with unit_of_work() as uow:
        placer = uow.session.get(LabOrder, order_id).placer_number
    assert str(parsed.segment("ORC")[2][0][0]) == placer == str(parsed.segment("OBR")[2][0][0])
    pid3 = [(str(rep[0]), str(rep[3])) for rep in parsed.segment("PID")[3]]
    assert (lab_id, "EVTLAB") in pid3 and any(system == "urn:patient-mgt:mrn" for _, system in pid3)


def test_a_missing_order_is_acknowledged_and_nothing_published(outbound, database_url):
    with unit_of_work() as uow:
        assert send_order_to_lis(uow, _event(catalog.ORDER_REQUESTED, uuid.uuid4(), uuid.uuid4())) == "ignored"
    response = outbound[0].pull(subscription=outbound[1], max_messages=10, timeout=5)
    assert list(response.received_messages) == []
