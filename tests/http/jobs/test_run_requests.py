"""The jobs function runs what the console's Run now requested (``job.run.requested``, written to the
outbox by ``shared.jobs.manual.request_run``): through the runner with ``trigger = console``, once per
request however often the request is delivered."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from cloudevents.http import from_http
from sqlalchemy import exc as sa_exc

from shared.auth import Principal, create_api_key
from shared.db import unit_of_work
from shared.events import catalog
from shared.events.publishing.envelope import from_outbox_row, to_http_binary
from shared.jobs import manual, registry
from shared.jobs.context import JobContext, JobResult
from shared.models import OutboxEvent
from shared.models.base import utcnow
from shared.models.job_runs import JobRun
from shared.notify import runtime
from shared.notify.service import queue_notification
from shared.settings import reset_settings
from tests.support.jobs_data import binary, runs_of, structured_base64
from tests.support.notify import create_patient, make_event, notification_rows


@pytest.fixture()
def provider_files(tmp_path, monkeypatch):
    """notifications-due sends through the console provider, into a directory of this test's own."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NOTIFY_PROVIDER", "console")
    reset_settings()
    runtime.reset_provider()
    yield tmp_path / "outbox"
    monkeypatch.undo()
    reset_settings()
    runtime.reset_provider()


def _operator() -> Principal:
    with unit_of_work() as uow:
        key, _token = create_api_key(uow, f"ops-{uuid.uuid4().hex[:8]}", ["admin"])
        return Principal(key_id=key.id, name=key.name, scopes=frozenset({"admin"}))


def _request(job: str) -> tuple[tuple[dict[str, str], bytes], uuid.UUID, datetime]:
    """Run now for ``job``, and the request as the publisher sends it to the Broker (HTTP binary mode)."""
    with unit_of_work() as uow:
        event_id, requested_at = manual.request_run(uow, _operator(), job)
    with unit_of_work() as uow:
        return to_http_binary(from_outbox_row(uow.session.get(OutboxEvent, event_id))), event_id, requested_at


def _post(client, headers: dict[str, str], body: bytes):  # noqa: ANN001, ANN202
    return client.post("/", headers=headers, data=body)


def test_a_requested_notifications_due_runs_once_with_trigger_console_however_often_delivered(jobs_client, provider_files):
    patient = create_patient(with_phone=False)
    key = f"reminder-{uuid.uuid4()}"
    with unit_of_work() as uow:
        queue_notification(uow, patient_id=patient.id, kind="reminder", source="/tests/jobs", key=key,
                           send_after=utcnow() - timedelta(minutes=1), channels=("email",))
    (headers, body), event_id, requested_at = _request("notifications-due")
    deliveries = [(headers, body), (headers, body), structured_base64(from_http(headers, body))]  # a redelivery, a re-serialising hop
    assert [_post(jobs_client, h, b).status_code for h, b in deliveries] == [200, 200, 200]
    with unit_of_work() as uow:
        runs = runs_of(uow, "notifications-due", requested_at)
    assert [(r.status, r.trigger, r.event_id, r.attempt) for r in runs] == [("succeeded", "console", str(event_id), 1)]
    assert runs[0].counts.get("sent", 0) >= 1
    [row] = notification_rows(event_id=key)
    assert row.status == "sent" and any(provider_files.rglob("*")), "the console provider wrote the message"


_attempts: list[uuid.UUID] = []


def flaky(ctx: JobContext) -> JobResult:
    """A job whose first run meets a database outage."""
    _attempts.append(ctx.run_id)
    if len(_attempts) == 1:
        raise sa_exc.OperationalError("SELECT 1", {}, ConnectionError("server closed the connection"))
    return JobResult()


def test_a_transient_fault_is_503_and_the_redelivered_request_runs_the_job(jobs_client, monkeypatch):
    name = f"flaky-{uuid.uuid4().hex[:6]}"
    _attempts.clear()
    monkeypatch.setitem(registry.JOBS, name, registry.Job(name, "* * * * *", "Etc/UTC", "test", f"{__name__}:flaky"))
    (headers, body), event_id, requested_at = _request(name)
    first = _post(jobs_client, headers, body)
    assert first.status_code == 503 and first.get_json() == {"status": "retry", "reason": "database_unavailable"}
    assert _post(jobs_client, headers, body).status_code == 200
    with unit_of_work() as uow:
        runs = runs_of(uow, name, requested_at)
    assert [(r.status, r.trigger, r.event_id, r.attempt) for r in runs] == [("succeeded", "console", str(event_id), 2)]


@pytest.mark.parametrize("data", [
    {"job": "retention"},  # no requested_at: no slot to claim
    {"job": "retention", "requested_by": None, "requested_at": "2026-12-04T10:00:00"},  # a moment without its offset
    {"job": f"defrag-{uuid.uuid4().hex[:6]}", "requested_by": None, "requested_at": "2026-12-04T10:00:00Z"},  # no such job
])
def test_a_request_that_names_no_job_or_no_moment_is_acknowledged_and_runs_nothing(jobs_client, data):
    before = utcnow()
    event = make_event(catalog.JOB_RUN_REQUESTED, data, source="/patient-mgt/api")
    assert _post(jobs_client, *binary(event)).status_code == 200
    with unit_of_work() as uow:
        ran = uow.session.scalar(sa.select(sa.func.count()).select_from(JobRun)
                                 .where(JobRun.event_id == event["id"], JobRun.started_at >= before))
    assert ran == 0

