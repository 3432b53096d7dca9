"""The immediate publish: right after the commit, to the configured sink; never failing the commit."""

import time
import uuid

import pytest

from shared.db import unit_of_work
from shared.events import catalog
from shared.events.outbox import emit
from tests.conftest import auth
from tests.integration.events.helpers import emit_events, outbox_rows
from tests.support.cloudevents_schema import structured_from_http, validate_event
from tests.support.event_samples import sample_data
from tests.support.sink import http_sink

pytestmark = pytest.mark.integration


def test_a_commit_publishes_its_events_in_order_and_marks_them_published(use_sink):
    subject = uuid.uuid4()
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        ids = emit_events((catalog.PATIENT_REGISTERED, subject), (catalog.PATIENT_UPDATED, subject))
    assert sink.ids() == [str(i) for i in ids]
    rows = outbox_rows(ids)
    assert all(rows[i].published_at is not None and rows[i].attempts == 1 and rows[i].last_error is None for i in ids)


def test_a_rolled_back_transaction_publishes_nothing(use_sink):
    subject = uuid.uuid4()
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        with pytest.raises(RuntimeError), unit_of_work() as uow:
            event_id = emit(uow, catalog.PATIENT_REGISTERED, subject, sample_data(catalog.PATIENT_REGISTERED, subject))
            raise RuntimeError("the work failed")
    assert sink.requests == [] and outbox_rows([event_id]) == {}


def test_without_a_sink_the_rows_wait_unpublished(use_sink):
    [event_id] = emit_events((catalog.PATIENT_REGISTERED, uuid.uuid4()))
    row = outbox_rows([event_id])[event_id]
    assert row.published_at is None and row.attempts == 0


@pytest.mark.parametrize("respond, error", [(lambda _r: 503, "http_503"), (lambda _r: 400, "http_400")])
def test_a_refusing_sink_never_fails_the_commit_and_the_attempt_is_recorded(use_sink, respond, error):
    with http_sink(respond) as sink:
        use_sink(k_sink=sink.url)
        [event_id] = emit_events((catalog.PATIENT_REGISTERED, uuid.uuid4()))
    row = outbox_rows([event_id])[event_id]
    assert (row.published_at, row.attempts, row.last_error) == (None, 1, error)
    assert sink.ids() == [str(event_id)]


def test_an_unreachable_sink_never_fails_the_commit(use_sink, closed_port):
    use_sink(k_sink=f"http://127.0.0.1:{closed_port}/")
    [event_id] = emit_events((catalog.PATIENT_REGISTERED, uuid.uuid4()))
    row = outbox_rows([event_id])[event_id]
    assert row.published_at is None and row.last_error.startswith("connection_")


def test_a_slow_sink_is_abandoned_after_the_publish_timeout(use_sink):
    def slow(_r):
        time.sleep(1.5)
        return 202

    with http_sink(slow) as sink:
        use_sink(k_sink=sink.url, publish_timeout_seconds="0.3")
        [event_id] = emit_events((catalog.PATIENT_REGISTERED, uuid.uuid4()))
    row = outbox_rows([event_id])[event_id]
    assert row.published_at is None and row.last_error == "timeout"


def test_a_later_event_waits_while_an_older_event_of_its_patient_is_unpublished(use_sink):
    blocked, other = uuid.uuid4(), uuid.uuid4()
    with http_sink(lambda _r: 503) as sink:
        use_sink(k_sink=sink.url)
        [first] = emit_events((catalog.PATIENT_REGISTERED, blocked))
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        second, third = emit_events((catalog.PATIENT_UPDATED, blocked), (catalog.PATIENT_REGISTERED, other))
    assert sink.ids() == [str(third)]  # the blocked patient's update did not overtake its registration
    rows = outbox_rows([first, second, third])
    assert rows[first].published_at is None and rows[second].published_at is None and rows[third].published_at is not None
    assert rows[second].attempts == 0


def test_registering_a_patient_publishes_a_valid_registered_event(use_sink, client, admin_token):
    with http_sink() as sink:
        use_sink(k_sink=sink.url, function_target="api")  # one test process hosts several functions' apps
        resp = client.post("/patients", headers=auth(admin_token),
                           json={"name": {"family": "Adeyemi", "given": ["Tolu"]}, "birth_date": "1988-04-09"})
        assert resp.status_code == 201
    patient_id = resp.get_json()["id"]
    [received] = [r for r in sink.requests if r.header("ce-subject") == patient_id]
    event = structured_from_http(received.headers, received.body)
    validate_event(event)
    assert event["type"] == catalog.PATIENT_REGISTERED and event["source"] == "/patient-mgt/api"
    assert event["data"]["patient_id"] == patient_id
    assert "Adeyemi" not in str(received.headers) and "Adeyemi" not in received.body.decode()
    assert outbox_rows([uuid.UUID(event["id"])])[uuid.UUID(event["id"])].published_at is not None


def test_every_catalog_type_is_emitted_as_a_valid_cloudevent_with_a_valid_payload(use_sink):
    subject = uuid.uuid4()
    with http_sink() as sink:
        use_sink(k_sink=sink.url)
        ids = emit_events(*[(event_type, subject) for event_type in catalog.CATALOG])
    assert sink.ids() == [str(i) for i in ids]
    for received, event_type in zip(sink.requests, catalog.CATALOG, strict=True):
        event = structured_from_http(received.headers, received.body)
        validate_event(event)
        assert event["type"] == event_type and event["subject"] == str(subject)
        assert event["dataschema"] == catalog.dataschema_for(event_type)
