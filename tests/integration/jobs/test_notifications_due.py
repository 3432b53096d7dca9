"""notifications-due: a tick sends what is due (the notify layer's send_due_notifications) through the
configured provider — here the console provider writing files under a temporary DATA_DIR."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest

from shared.db import unit_of_work
from shared.jobs.runner import run_job
from shared.models.base import utcnow
from shared.notify import runtime
from shared.notify.service import queue_notification
from shared.settings import reset_settings
from tests.support.jobs_data import unique_minute
from tests.support.notify import create_patient, notification_rows


@pytest.fixture()
def console_outbox(tmp_path, database_url):
    saved = {k: os.environ.get(k) for k in ("DATA_DIR", "NOTIFY_PROVIDER")}
    os.environ.update({"DATA_DIR": str(tmp_path), "NOTIFY_PROVIDER": "console"})
    reset_settings()
    runtime.reset_provider()
    try:
        yield tmp_path / "outbox"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()
        runtime.reset_provider()


def test_a_tick_sends_a_reminder_whose_time_has_come(console_outbox):
    patient = create_patient(with_phone=False)
    key = f"reminder-{uuid.uuid4()}"
    with unit_of_work() as uow:
        queue_notification(uow, patient_id=patient.id, kind="reminder", source="/tests/jobs", key=key,
                           send_after=utcnow() - timedelta(minutes=1), channels=("email",))
    [row] = notification_rows(event_id=key)
    assert row.status == "scheduled"

    outcome = run_job("notifications-due", slot=unique_minute(), trigger="schedule")
    assert outcome.status == "succeeded" and outcome.counts.get("sent", 0) >= 1
    [row] = notification_rows(event_id=key)
    assert row.status == "sent" and row.sent_at is not None
    assert any(console_outbox.rglob("*")), "the console provider wrote the message"
