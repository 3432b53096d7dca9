"""Notification outcomes by channel and status, and job runs by job and status with durations,
through the notify and jobs functions."""

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from functions_framework import create_app

from shared.auth import SYSTEM_CLI
from shared.db import unit_of_work
from shared.events import catalog
from shared.schemas.patients import PatientCreate
from shared.services.patients import register_patient
from tests.support.jobs_data import binary, tick, unique_minute

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture()
def notify_client(database_url, tmp_path, monkeypatch):
    from shared.notify.runtime import reset_provider
    from shared.settings import reset_settings

    monkeypatch.setenv("NOTIFY_PROVIDER", "console")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    reset_settings()
    reset_provider()
    app = create_app(target="notify", source=str(ROOT / "functions" / "notify" / "main.py"), signature_type="cloudevent")
    yield app.test_client()
    monkeypatch.undo()
    reset_settings()
    reset_provider()


@pytest.fixture(scope="module")
def jobs_client(database_url):
    app = create_app(target="jobs", source=str(ROOT / "functions" / "jobs" / "main.py"), signature_type="cloudevent")
    return app.test_client()


def _patient_with_email_consent():
    body = {"name": {"family": f"Notif-{uuid.uuid4().hex[:8]}", "given": ["Ola"]}, "birth_date": "1977-07-07",
            "email": f"{uuid.uuid4().hex[:10]}@example.org", "communication": {"email": True, "sms": False}}
    with unit_of_work() as uow:
        return register_patient(uow, SYSTEM_CLI, PatientCreate.model_validate_json(json.dumps(body))).id


def test_notification_outcomes_are_counted_by_channel_status_and_kind(notify_client, cap):
    patient_id = _patient_with_email_consent()
    event = CloudEvent({"type": catalog.PATIENT_REGISTERED, "source": "/tests/telemetry", "id": str(uuid.uuid4()),
                        "subject": str(patient_id)}, {"patient_id": str(patient_id), "version": 1, "origin": "api"})
    headers, body = to_binary(event)
    assert notify_client.post("/", headers=headers, data=body).status_code == 200
    assert notify_client.post("/", headers=headers, data=body).status_code == 200  # redelivery: nothing new

    data = cap.collect()
    assert cap.value("patient_mgt.notifications", data, channel="email", status="sent", kind="welcome") == 1
    assert cap.value("patient_mgt.notifications", data, channel="sms", status="skipped", kind="welcome") == 1
    assert cap.value("patient_mgt.notifications", data) == 2
    [deliveries] = cap.histogram("patient_mgt.events.process.duration", data, consumer="notify")
    assert deliveries.count == 2 and dict(deliveries.attributes)["event_type"] == catalog.PATIENT_REGISTERED


def test_job_runs_are_counted_by_job_and_status_with_their_duration(jobs_client, cap):
    minute = unique_minute()
    first = tick("lis-reconcile", minute + timedelta(milliseconds=120))
    for delivery in (first, first):  # the redelivered tick is not a second run
        headers, body = binary(delivery)
        assert jobs_client.post("/", headers=headers, data=body).status_code == 200

    data = cap.collect()
    assert cap.value("patient_mgt.job.runs", data, job="lis-reconcile", status="succeeded") == 1
    [duration] = cap.histogram("patient_mgt.job.run.duration", data, job="lis-reconcile", status="succeeded")
    assert duration.count == 1 and duration.sum >= 0
    [ticks] = cap.histogram("patient_mgt.events.process.duration", data, consumer="jobs")
    assert ticks.count == 2 and dict(ticks.attributes)["event_type"] == "dev.knative.sources.ping"
