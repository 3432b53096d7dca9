"""The api as a real functions-framework process with PUBLISH_IN_BACKGROUND=true (the deployed
setting): registrations answer before their events reach a slow broker, and a graceful stop
(SIGTERM, as Knative scales a pod down) publishes what is still queued before the worker exits."""

import signal
import threading
import time
import uuid

import pytest
import requests
import sqlalchemy as sa

from tests.support.sink import http_sink

pytestmark = pytest.mark.e2e


def test_registrations_answer_first_and_a_graceful_stop_publishes_what_is_queued(start_fn, admin_token, database_url):
    stopping = threading.Event()
    answered: list[str] = []

    def held_until_the_stop(received) -> int:
        # The broker answers nothing until the pod is told to stop, then slowly (a worker's own exit
        # takes well under a second): every event reaches it only through the worker's drain at exit.
        assert stopping.wait(30)
        time.sleep(0.3)
        answered.append(received.header("ce-id") or "")
        return 202

    headers = {"Authorization": f"Bearer {admin_token}"}
    family = "Bgstop" + uuid.uuid4().hex[:8]
    with http_sink(held_until_the_stop) as sink:
        api = start_fn("api", env={"K_SINK": sink.url, "PUBLISH_IN_BACKGROUND": "true", "PUBLISH_TIMEOUT_SECONDS": "5"},
                       ready_path="/readyz")
        ids = []
        for n in range(6):
            resp = requests.post(f"{api.url}/patients", headers=headers, timeout=5, json={
                "name": {"family": family, "given": [f"G{n}"]}, "birth_date": f"1980-01-{n + 10:02d}"})
            assert resp.status_code == 201
            ids.append(resp.json()["id"])
        assert answered == []  # every registration answered while its event was still on its way
        api.proc.send_signal(signal.SIGTERM)
        stopping.set()
        assert api.proc.wait(timeout=20) == 0
        delivered = [r.header("ce-subject") for r in sink.requests if r.header("ce-type") == "org.patientmgt.patient.registered.v1"]
    assert sorted(delivered) == sorted(ids)
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows, unpublished = conn.execute(sa.text(
                "SELECT count(*), count(*) FILTER (WHERE published_at IS NULL) FROM outbox"
                " WHERE subject = ANY(CAST(:s AS text[]))"), {"s": ids}).one()
    finally:
        engine.dispose()
    assert (rows, unpublished) == (6, 0)
