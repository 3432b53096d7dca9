"""outbox-sweep: an event whose immediate publish failed is published by the next tick's run."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from shared.db import unit_of_work
from shared.events import catalog
from shared.events.outbox import emit
from shared.jobs.runner import run_job
from shared.models import OutboxEvent
from shared.settings import reset_settings
from tests.support.jobs_data import switchable_sink, unique_minute
from tests.support.statements import counting, through_sqlalchemy


@pytest.fixture()
def sink(database_url):
    with switchable_sink() as s:
        previous = os.environ.get("K_SINK")
        os.environ["K_SINK"] = s.url
        reset_settings()
        try:
            yield s
        finally:
            if previous is None:
                os.environ.pop("K_SINK", None)
            else:
                os.environ["K_SINK"] = previous
            reset_settings()


def test_the_sweep_publishes_what_the_immediate_publish_could_not(sink):
    sink.accept = False  # the broker is down when the transaction commits
    patient_id = uuid.uuid4()
    with unit_of_work() as uow:
        event_id = emit(uow, catalog.PATIENT_UPDATED, patient_id,
                        catalog.PatientUpdated(patient_id=patient_id, version=2, changed=["phone"]))
    assert str(event_id) in sink.refused
    with unit_of_work() as uow:
        row = uow.session.get(OutboxEvent, event_id)
        assert row.published_at is None and row.attempts == 1 and row.last_error == "http_503"

    sink.accept = True  # back up: the next tick of outbox-sweep catches up
    outcome = run_job("outbox-sweep", slot=unique_minute(), trigger="schedule")
    assert outcome.status == "succeeded" and outcome.counts["published"] >= 1
    assert sink.accepted.count(str(event_id)) == 1
    with unit_of_work() as uow:
        row = uow.session.get(OutboxEvent, event_id)
        assert row.published_at is not None and row.last_error is None


def test_a_sweep_that_cannot_publish_is_a_failed_run_with_a_code(sink):
    sink.accept = False
    patient_id = uuid.uuid4()
    with unit_of_work() as uow:
        event_id = emit(uow, catalog.PATIENT_UPDATED, patient_id,
                        catalog.PatientUpdated(patient_id=patient_id, version=2, changed=["email"]))
    outcome = run_job("outbox-sweep", slot=unique_minute(), trigger="schedule")
    assert (outcome.status, outcome.error_code) == ("failed", "publish_failed")
    with unit_of_work() as uow:
        assert uow.session.scalar(sa.select(OutboxEvent.published_at).where(OutboxEvent.id == event_id)) is None
    sink.accept = True
    assert run_job("outbox-sweep", slot=unique_minute(), trigger="schedule").status == "succeeded"
    assert str(event_id) in sink.accepted


def test_a_tick_costs_its_claim_the_sweeps_statements_and_its_finish_and_nothing_through_sqlalchemy(sink):
    """With nothing to publish: the run's claim, the sweep's claim (no rows), the count of what is left, the
    run's finish. With one event: its batch's claim and record, then a claim that finds nothing more."""
    sink.accept = True
    run_job("outbox-sweep", slot=unique_minute(), trigger="schedule")  # what other tests left is published
    with through_sqlalchemy() as orm_statements, counting() as statements:
        outcome = run_job("outbox-sweep", slot=unique_minute(), trigger="schedule")
    assert (outcome.status, outcome.counts["published"], outcome.counts["remaining"]) == ("succeeded", 0, 0)
    assert (statements["statements"], statements["round_trips"]) == (4, 6)

    sink.accept = False  # the immediate publish fails: the row waits for the sweep
    patient_id = uuid.uuid4()
    with unit_of_work() as uow:
        event_id = emit(uow, catalog.PATIENT_UPDATED, patient_id,
                        catalog.PatientUpdated(patient_id=patient_id, version=2, changed=["phone"]))
    sink.accept = True
    with through_sqlalchemy() as more_orm_statements, counting() as statements:
        outcome = run_job("outbox-sweep", slot=unique_minute(), trigger="schedule")
    assert (outcome.status, outcome.counts["published"], outcome.counts["remaining"]) == ("succeeded", 1, 0)
    assert (statements["statements"], statements["round_trips"]) == (6, 8)
    assert orm_statements == more_orm_statements == []
    assert sink.accepted.count(str(event_id)) == 1
    with unit_of_work() as uow:
        row = uow.session.get(OutboxEvent, event_id)
        assert row.published_at is not None and row.attempts == 2 and row.last_error is None
