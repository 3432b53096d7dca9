"""Test support for the notify function: a moto server that can go down and come back, patients with
results in PostgreSQL, and the CloudEvents the outbox holds for them.

Everything is created through the services (``register_patient``) or direct model inserts, and the
result-available event is the outbox row written in the same transaction as the result: the event a
final ORU produces.
"""

from __future__ import annotations

import json
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from cloudevents.http import CloudEvent

REGION = "us-east-1"
SENDER = "no-reply@lab.example.org"
PORTAL = "https://portal.example.org/lab"
FACILITY = "Quillfeather Clinic"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Moto:
    """moto's server on a fixed loopback port, so it can be stopped (provider down) and started again."""

    port: int = field(default_factory=free_port)
    server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def reset(self) -> None:
        """Forget every message and identity, then verify the sender (as SES requires)."""
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=10).close()
        import boto3

        boto3.client("sesv2", region_name=REGION, endpoint_url=self.url, aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_email_identity(EmailIdentity=SENDER)

    def sent(self) -> dict[str, list[dict[str, Any]]]:
        """What moto accepted: SES messages and SNS SMS (read from /moto-api/data.json)."""
        with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=10) as response:
            data = json.load(response)
        return {"email": data["ses"]["Message"], "sms": data["sns"]["SMS"]}

    def emails_to(self, address: str) -> list[dict[str, Any]]:
        return [m for m in self.sent()["email"] if address in m["destinations"]["ToAddresses"]]

    def sms_to(self, phone: str) -> list[dict[str, Any]]:
        return [m for m in self.sent()["sms"] if m["phone_number"] == phone]


@contextmanager
def running_moto(*, reset: bool = True) -> Iterator[Moto]:
    """moto's SES/SNS server, started (and reset, with the sender verified) and stopped after."""
    server = Moto()
    server.start()
    try:
        if reset:
            server.reset()
        yield server
    finally:
        server.stop()


@pytest.fixture()
def moto() -> Iterator[Moto]:
    """moto's SES/SNS server for one test, reset and with the sender verified (import it into a
    conftest or test module to use it)."""
    with running_moto() as server:
        yield server


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}


# No quiet hours (start == end): an SMS a test expects now must not depend on the time of day the suite
# runs at (from 21:00 to 08:00 the default window defers it); quiet hours have tests of their own with a
# pinned clock.
NO_QUIET_HOURS = {"QUIET_HOURS_START": "00:00", "QUIET_HOURS_END": "00:00"}


def notify_env(moto_url: str) -> dict[str, str]:
    """The environment of a notify process that sends through moto, with no quiet hours."""
    return {**AWS_ENV, "NOTIFY_PROVIDER": "aws", "AWS_ENDPOINT_URL": moto_url, "NOTIFY_EMAIL_FROM": SENDER,
            "PORTAL_URL": PORTAL, "NOTIFY_FACILITY_NAME": FACILITY, **NO_QUIET_HOURS}


def unique_contact() -> tuple[str, str]:
    """A fresh e-mail address and E.164 phone number, so tests never see each other's messages."""
    n = uuid.uuid4().int
    return f"pt{n % 10**12}@example.org", f"+3460{n % 10**7:07d}"


@dataclass(frozen=True)
class Patient:
    id: uuid.UUID
    given: str
    family: str
    email: str | None
    phone: str | None
    registered_event_id: uuid.UUID


def create_patient(
    *,
    email_opt_in: bool = True,
    sms_opt_in: bool = True,
    language: str = "en",
    timezone_name: str = "UTC",
    with_email: bool = True,
    with_phone: bool = True,
) -> Patient:
    """Register a patient through the service (which also writes the patient-registered event)."""
    from shared.auth import SYSTEM_CLI
    from shared.db import unit_of_work
    from shared.events import catalog
    from shared.models import OutboxEvent
    from shared.schemas.patients import PatientCreate
    from shared.services.patients import register_patient

    email, phone = unique_contact()
    tag = uuid.uuid4().hex[:8]
    given, family = f"Xiomarita{tag}", f"Quillfeather{tag}"
    body = PatientCreate.model_validate_json(json.dumps({
        "name": {"family": family, "given": [given]},
        "birth_date": "1971-03-09",
        "email": email if with_email else None,
        "phone": phone if with_phone else None,
        "preferred_language": language,
        "timezone": timezone_name,
        "communication": {"email": email_opt_in, "sms": sms_opt_in},
    }))
    with unit_of_work() as uow:
        patient = register_patient(uow, SYSTEM_CLI, body)
        event_id = uow.session.scalar(
            sa.select(OutboxEvent.id).where(OutboxEvent.type == catalog.PATIENT_REGISTERED,
                                            OutboxEvent.subject == str(patient.id))
        )
    return Patient(patient.id, given, family, email if with_email else None, phone if with_phone else None, event_id)


RESULT_VALUE = "7.3917"  # distinctive: must never appear in a notification
TEST_NAME = "Glycated haemoglobin Zorblax"


def create_final_result(patient_id: uuid.UUID, *, status: str = "final") -> uuid.UUID:
    """An order with one final result (distinctive value and test name) and the result-available
    event written with it in one transaction, as the LIS consumer does for a final ORU. Returns the event id."""
    from shared.db import unit_of_work
    from shared.events import catalog
    from shared.events.outbox import emit
    from shared.models import LabOrder, LabResult

    now = datetime.now(timezone.utc)
    with unit_of_work() as uow:
        order = LabOrder(id=uuid.uuid4(), patient_id=patient_id, placer_number=f"PL{uuid.uuid4().hex[:10]}",
                         code_system="http://loinc.org", code="4548-4", code_display=TEST_NAME, status="completed",
                         ordered_at=now, created_at=now, updated_at=now)
        uow.session.add(order)
        uow.flush()
        result = LabResult(id=uuid.uuid4(), order_id=order.id, patient_id=patient_id, result_key="http://loinc.org|4548-4|",
                           code_system="http://loinc.org", code="4548-4", code_display=TEST_NAME, value_type="NM",
                           value=RESULT_VALUE, units="%", status="F", observed_at=now, created_at=now, updated_at=now)
        uow.session.add(result)
        uow.flush()
        return emit(uow, catalog.RESULT_AVAILABLE, patient_id,
                    catalog.ResultAvailable(patient_id=patient_id, order_id=order.id, result_ids=[result.id],
                                            status=status))  # type: ignore[arg-type]


def outbox_cloudevent(event_id: uuid.UUID) -> CloudEvent:
    """The CloudEvent an outbox row carries (id, source, type, subject, time, data)."""
    from shared.db import unit_of_work
    from shared.models import OutboxEvent

    with unit_of_work() as uow:
        row = uow.session.get(OutboxEvent, event_id)
        assert row is not None
        attributes = {"id": str(row.id), "source": row.source, "type": row.type, "subject": row.subject,
                      "time": row.time.isoformat(), "datacontenttype": "application/json"}
        return CloudEvent(attributes, dict(row.data))


def make_event(event_type: str, data: Any, *, source: str = "/tests/notify", event_id: str | None = None) -> CloudEvent:
    return CloudEvent({"type": event_type, "source": source, "id": event_id or str(uuid.uuid4()),
                       "datacontenttype": "application/json"}, data)


def notification_rows(*, event_id: str | uuid.UUID | None = None, patient_id: uuid.UUID | None = None) -> list[Any]:
    """Notification rows of an event or a patient, ordered by channel."""
    from shared.db import unit_of_work
    from shared.models import Notification

    stmt = sa.select(Notification).order_by(Notification.channel, Notification.kind)
    if event_id is not None:
        stmt = stmt.where(Notification.event_id == str(event_id))
    if patient_id is not None:
        stmt = stmt.where(Notification.patient_id == patient_id)
    with unit_of_work() as uow:
        rows = list(uow.session.scalars(stmt))
        uow.session.expunge_all()
    return rows


def at(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=timezone.utc)

