"""Rows and PingSource ticks for the jobs tests.

Patients are inserted directly (not through the API): the data-quality job exists to find data the
API would refuse today (older imports, LIS feeds, rules that tightened), so the tests need such rows.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from shared.models import LabOrder, LabResult, Patient
from shared.models.job_runs import JobRun
from shared.normalize import fold

PING_TYPE = "dev.knative.sources.ping"


def make_patient(uow: Any, *, id: uuid.UUID | None = None, family: str | None = None, given: str | None = None,
                 birth_date: date | None = date(1980, 5, 6), phone: str | None = None, email: str | None = None,
                 status: str = "active") -> uuid.UUID:
    family = family or f"Fam{uuid.uuid4().hex[:12]}"
    given = given or f"Giv{uuid.uuid4().hex[:12]}"
    pid = id or uuid.uuid4()
    uow.session.execute(sa.insert(Patient).values(
        id=pid, mrn=f"T{uuid.uuid4().hex[:20]}", status=status, family=family, given=[given], prefix=[], suffix=[],
        family_norm=fold(family), first_given_norm=fold(given), birth_date=birth_date, sex="unknown",
        phone=phone, email=email, preferred_language="en", timezone="UTC", comm_email=False, comm_sms=False,
        source="lis", version=1,
    ))
    return pid


def make_order(uow: Any, patient_id: uuid.UUID, *, ordered_at: datetime | None, status: str = "requested",
               with_result: bool = False) -> uuid.UUID:
    oid = uuid.uuid4()
    uow.session.execute(sa.insert(LabOrder).values(
        id=oid, patient_id=patient_id, placer_namespace="TEST", placer_number=uuid.uuid4().hex, filler_namespace="",
        status=status, ordered_at=ordered_at, source="lis", version=1,
    ))
    if with_result:
        uow.session.execute(sa.insert(LabResult).values(
            id=uuid.uuid4(), order_id=oid, patient_id=patient_id, result_key="LN|718-7|", status="F",
            abnormal_flags=[], notes=[], version=1, previous_versions=[],
        ))
    return oid


_SESSION_BASE = datetime(2100, 1, 1, tzinfo=timezone.utc) + timedelta(days=random.randrange(0, 365 * 3000))
_calls = itertools.count()


def unique_minute() -> datetime:
    """A scheduled minute no other call uses, at :05 (the hourly job's minute), in a ten-day window of its own:
    tests may add hours or a few days to it for later ticks without meeting another test's slots, even for
    the nightly jobs whose slot is a day."""
    return _SESSION_BASE + timedelta(days=10 * next(_calls), hours=random.randrange(0, 24), minutes=5)


def tick(job: str, sent_at: datetime, *, event_id: str | None = None, namespace: str = "patient-mgt") -> CloudEvent:
    """A PingSource CloudEvent as the mt-ping adapter sends it (time = send time, a moment after the minute)."""
    return CloudEvent({
        "type": PING_TYPE,
        "source": f"/apis/v1/namespaces/{namespace}/pingsources/{job}",
        "id": event_id or str(uuid.uuid4()),
        "time": sent_at.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
    }, {"job": job})


def binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    return to_binary(event)


def structured_base64(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """Structured mode with the payload as data_base64 and no datacontenttype (a re-serialising hop)."""
    headers, body = to_structured(event)
    doc = json.loads(body)
    payload = json.dumps(doc.pop("data")).encode()
    doc.pop("datacontenttype", None)
    doc["data_base64"] = base64.b64encode(payload).decode()
    return {"Content-Type": "application/cloudevents+json"}, json.dumps(doc).encode()


def runs_of(uow: Any, job: str, slot: datetime) -> list[JobRun]:
    return list(uow.session.scalars(sa.select(JobRun).where(JobRun.job == job, JobRun.slot == slot)))


@dataclass
class SwitchableSink:
    """The test HTTP sink (``tests.support.sink``) answering 202 while ``accept`` is set, 503 otherwise."""

    url: str = ""
    accept: bool = True
    accepted: list[str] = field(default_factory=list)  # ce-id of each accepted delivery
    refused: list[str] = field(default_factory=list)


@contextmanager
def switchable_sink() -> Iterator[SwitchableSink]:
    from tests.support.sink import http_sink  # noqa: PLC0415

    state = SwitchableSink()

    def respond(received: Any) -> int:
        (state.accepted if state.accept else state.refused).append(received.header("ce-id") or "")
        return 202 if state.accept else 503

    with http_sink(respond) as sink:
        state.url = sink.url
        yield state
