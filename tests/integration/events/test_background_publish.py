"""PUBLISH_IN_BACKGROUND: the writer returns as soon as it committed, and the process's background
publisher sends its events to the sink afterwards — each once, one subject's events in commit order,
marked published in the outbox; a refused event stays for the sweep, as before the answer."""

import threading
import uuid

import pytest

from shared.auth import Principal
from shared.events import catalog
from shared.events.publishing.after_commit import background
from shared.schemas.patients import PatientCreate
from shared.services import patient_sql
from tests.integration.events.helpers import emit_events, outbox_rows
from tests.support.sink import http_sink

pytestmark = pytest.mark.integration
CLERK = Principal(key_id=None, name="test:clerk", scopes=frozenset({"patients:write"}))


def test_commits_return_before_their_events_leave_and_every_event_is_published_in_order(use_sink):
    release = threading.Event()
    subjects = [uuid.uuid4() for _ in range(3)]

    def held_until_released(_received) -> int:
        assert release.wait(10)
        return 202

    with http_sink(held_until_released) as sink:
        use_sink(k_sink=sink.url, publish_in_background="true")
        # three commits, two events each; the sink answers nothing yet, and every commit returns
        ids = [emit_events((catalog.PATIENT_REGISTERED, s), (catalog.PATIENT_UPDATED, s)) for s in subjects]
        unpublished = outbox_rows([i for pair in ids for i in pair])
        assert all(row.published_at is None for row in unpublished.values())
        release.set()
        assert background().drain(10)
    flat = [i for pair in ids for i in pair]
    rows = outbox_rows(flat)
    assert all(rows[i].published_at is not None and rows[i].attempts == 1 for i in flat)
    assert sorted(sink.ids()) == sorted(str(i) for i in flat) and len(sink.ids()) == 6
    for registered, updated in ids:  # a subject's events reach the sink in the order they were committed
        assert sink.ids().index(str(registered)) < sink.ids().index(str(updated))


def test_a_registration_answers_then_its_event_is_published(use_sink):
    body = PatientCreate.model_validate_json(
        f'{{"name": {{"family": "Bg{uuid.uuid4().hex[:10]}", "given": ["Eve"]}}, "birth_date": "1971-02-03"}}')
    with http_sink() as sink:
        use_sink(k_sink=sink.url, publish_in_background="true")
        doc = patient_sql.register_patient(CLERK, body, reject_duplicates=True)
        assert background().drain(10)
    [request] = sink.requests
    assert request.header("ce-type") == catalog.PATIENT_REGISTERED and request.header("ce-subject") == doc["id"]
    assert outbox_rows([uuid.UUID(request.header("ce-id"))])[uuid.UUID(request.header("ce-id"))].published_at is not None


def test_a_refused_event_is_recorded_and_left_for_the_sweep(use_sink):
    with http_sink(lambda _r: 503) as sink:
        use_sink(k_sink=sink.url, publish_in_background="true")
        [event_id] = emit_events((catalog.PATIENT_REGISTERED, uuid.uuid4()))
        assert background().drain(10)
    row = outbox_rows([event_id])[event_id]
    assert (row.published_at, row.attempts, row.last_error) == (None, 1, "http_503")
    assert sink.ids() == [str(event_id)]
