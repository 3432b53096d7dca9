"""The jobs function as a real functions-framework process on 127.0.0.1, fed PingSource ticks over HTTP."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from shared.db import unit_of_work
from shared.events import catalog
from shared.events.outbox import emit
from shared.models import OutboxEvent
from shared.settings import reset_settings
from tests.support.jobs_data import binary, runs_of, structured_base64, switchable_sink, tick, unique_minute

pytestmark = pytest.mark.e2e


def _send(url: str, pair: tuple[dict[str, str], bytes]) -> int:
    headers, body = pair
    return requests.post(url, headers=headers, data=body, timeout=60).status_code


def test_the_same_tick_twice_and_two_ids_for_one_slot_run_once_in_a_real_process(start_fn):
    jobs = start_fn("jobs")
    minute = unique_minute()
    first = tick("lis-reconcile", minute + timedelta(milliseconds=90))
    other = tick("lis-reconcile", minute + timedelta(milliseconds=499))  # the same slot under another id
    rewrapped = tick("lis-reconcile", minute + timedelta(milliseconds=250))
    deliveries = [binary(first), binary(first), binary(other), structured_base64(rewrapped)]
    # Concurrently, as a redelivery racing the original would arrive (the process runs 4 threads).
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda d: _send(jobs.url, d), deliveries))
    assert statuses == [200, 200, 200, 200]
    with unit_of_work() as uow:
        runs = runs_of(uow, "lis-reconcile", minute)
    assert len(runs) == 1 and runs[0].status == "succeeded" and runs[0].trigger == "schedule"
    assert runs[0].event_id in {first["id"], other["id"], rewrapped["id"]}

    assert _send(jobs.url, binary(tick(f"defrag-{uuid.uuid4().hex[:6]}", minute))) == 200  # unknown: logged, acknowledged
    assert "PingSource tick names no known job" in jobs.logs()


def test_outbox_sweep_in_a_real_process_publishes_an_event_whose_immediate_publish_failed(start_fn):
    with switchable_sink() as sink:
        sink.accept = False
        os.environ["K_SINK"] = sink.url
        reset_settings()
        try:
            patient_id = uuid.uuid4()
            with unit_of_work() as uow:
                event_id = emit(uow, catalog.PATIENT_UPDATED, patient_id,
                                catalog.PatientUpdated(patient_id=patient_id, version=3, changed=["address"]))
        finally:
            os.environ.pop("K_SINK", None)
            reset_settings()
        assert str(event_id) in sink.refused  # the immediate publish was tried and failed

        sink.accept = True
        jobs = start_fn("jobs", env={"K_SINK": sink.url})
        minute = unique_minute()
        assert _send(jobs.url, binary(tick("outbox-sweep", minute + timedelta(milliseconds=40)))) == 200
        assert _send(jobs.url, binary(tick("outbox-sweep", minute + timedelta(milliseconds=41)))) == 200
        assert sink.accepted.count(str(event_id)) == 1
        with unit_of_work() as uow:
            assert uow.session.scalar(sa.select(OutboxEvent.published_at).where(OutboxEvent.id == event_id)) is not None
            [run] = runs_of(uow, "outbox-sweep", minute)
        assert run.status == "succeeded" and run.counts["published"] >= 1
