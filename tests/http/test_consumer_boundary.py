"""The CloudEvent consumer boundary through functions-framework's test client: dedupe and status codes."""

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent
from functions_framework import create_app

from shared.db import unit_of_work
from shared.models import ProcessedEvent

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def jobs_client(database_url):
    app = create_app(target="jobs", source=str(ROOT / "functions" / "jobs" / "main.py"), signature_type="cloudevent")
    return app.test_client()


@pytest.mark.parametrize("mode", [to_binary, to_structured])
def test_an_event_is_claimed_once_however_often_it_is_delivered(jobs_client, mode):
    event = CloudEvent({"type": "org.patientmgt.test.unknown.v1", "source": "/tests", "id": str(uuid.uuid4())}, {"x": 1})
    headers, body = mode(event)
    for _ in range(3):
        resp = jobs_client.post("/", headers=headers, data=body)
        assert resp.status_code == 200
    with unit_of_work() as uow:
        rows = uow.session.scalars(sa.select(ProcessedEvent).where(ProcessedEvent.event_id == event["id"])).all()
    assert [(r.consumer, r.source) for r in rows] == [("jobs", "/tests")]


@pytest.mark.parametrize("target", ["jobs", "notify"])
@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "application/json"}, b'{"hello": "Zyxwvut Qwerty"}'),
        ({"ce-specversion": "1.0", "ce-id": "x", "Content-Type": "application/json"}, b'{"n": "Zyxwvut Qwerty"}'),
        ({"Content-Type": "application/cloudevents+json"}, b'{"specversion": "1.0", "data": "Zyxwvut Qwerty"}'),
        ({"Content-Type": "text/plain"}, b"Zyxwvut Qwerty"),
    ],
)
def test_a_request_that_is_not_a_cloudevent_is_a_400_problem_that_quotes_nothing(database_url, target, headers, body):
    app = create_app(target=target, source=str(ROOT / "functions" / target / "main.py"), signature_type="cloudevent")
    resp = app.test_client().post("/", headers=headers, data=body)
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"
    assert "Zyxwvut" not in resp.get_data(as_text=True)
