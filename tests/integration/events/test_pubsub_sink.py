"""EVENT_SINK=pubsub://projects/P/topics/T against the real Pub/Sub emulator: the CloudEvents Pub/Sub
binding attributes, the subject as ordering key, and each patient's events in order."""

import uuid

import pytest

from shared.events import catalog
from shared.events.publishing.sweep import sweep_outbox
from tests.integration.events.helpers import emit_events, outbox_rows
from tests.support.cloudevents_schema import structured_from_pubsub, validate_event

pytestmark = pytest.mark.integration


@pytest.fixture()
def topic(emulator):
    from google.cloud import pubsub_v1

    name = f"events-{uuid.uuid4().hex[:8]}"
    emulator.create_topic(name)
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(emulator.project, f"{name}-pull")
    subscriber.create_subscription(request={"name": subscription, "topic": emulator.topic_path(name), "enable_message_ordering": True})

    def pull(expected):
        messages = []
        for _ in range(50):
            response = subscriber.pull(subscription=subscription, max_messages=100, timeout=10)
            if response.received_messages:
                subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages])
            messages += [m.message for m in response.received_messages]
            if len(messages) >= expected:
                return messages
        return messages

    yield emulator.topic_path(name), pull
    subscriber.delete_subscription(subscription=subscription)
    subscriber.close()


def test_events_are_published_with_ce_attributes_and_the_patient_as_ordering_key(use_sink, topic):
    topic_path, pull = topic
    use_sink(event_sink=f"pubsub://{topic_path}")
    a, b = uuid.uuid4(), uuid.uuid4()
    ids = emit_events(*[(t, p) for t in catalog.CATALOG for p in (a, b)])
    messages = pull(len(ids))
    assert sorted(m.attributes["ce-id"] for m in messages) == sorted(str(i) for i in ids)
    for m in messages:
        event = structured_from_pubsub(dict(m.attributes), m.data)
        validate_event(event)
        assert m.ordering_key == event["subject"]
        assert m.attributes["content-type"] == "application/json" and "ce-datacontenttype" not in m.attributes
    for patient in (a, b):
        received = [m.attributes["ce-id"] for m in messages if m.ordering_key == str(patient)]
        assert received == [str(i) for n, i in enumerate(ids) if n % 2 == (0 if patient == a else 1)]
    assert all(r.published_at is not None for r in outbox_rows(ids).values())


def test_the_sweep_publishes_to_pubsub_what_was_left(use_sink, topic):
    topic_path, pull = topic
    ids = emit_events((catalog.PATIENT_REGISTERED, uuid.uuid4()), (catalog.PATIENT_REGISTERED, uuid.uuid4()))
    use_sink(event_sink=f"pubsub://{topic_path}")
    sweep_outbox(30)
    # The sweep also publishes rows other tests left in the shared session database: pull until ours arrived.
    wanted, received = {str(i) for i in ids}, set()
    for _ in range(30):
        received |= {m.attributes["ce-id"] for m in pull(1)}
        if wanted <= received:
            break
    assert wanted <= received
    assert all(r.published_at is not None for r in outbox_rows(ids).values())


def test_a_missing_topic_leaves_the_rows_for_the_sweeper(use_sink, emulator):
    use_sink(event_sink=f"pubsub://{emulator.topic_path('no-such-topic-' + uuid.uuid4().hex[:6])}")
    [event_id] = emit_events((catalog.PATIENT_REGISTERED, uuid.uuid4()))
    row = outbox_rows([event_id])[event_id]
    assert row.published_at is None and row.last_error.startswith("pubsub_")
