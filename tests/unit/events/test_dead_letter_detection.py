"""Recognising a dead-letter delivery, and where a Pub/Sub dead letter is re-driven to."""

import base64

import pytest

from shared.api.events_routes import _decode
from shared.events.dead_letter_route import is_dead_letter
from shared.events.dead_letters import _origin_topic, data_bytes

BASE = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}


@pytest.mark.parametrize("attributes, path, expected", [
    (BASE, "/dead-letter", True),
    (BASE, "/dead-letter/projects/p/topics/lis-inbound-dead-letter", True),
    ({**BASE, "knativeerrorcode": "500"}, "/", True),
    ({**BASE, "knativeerrordest": "http://x/"}, None, True),
    (BASE, "/", False),
    (BASE, "/dead-letters", False),
    (BASE, None, False),
])
def test_is_dead_letter(attributes, path, expected):
    assert is_dead_letter(attributes, path) is expected


@pytest.mark.parametrize("source, topic", [
    ("//pubsub.googleapis.com/projects/p1/topics/lis-inbound-dead-letter", "projects/p1/topics/lis-inbound"),
    ("//pubsub.googleapis.com/projects/p1/topics/lis-inbound", None),
    ("//pubsub.googleapis.com/", None),
    ("/patient-mgt/api", None),
])
def test_a_pubsub_dead_letter_goes_back_to_the_topic_without_the_suffix(source, topic):
    assert _origin_topic(source) == topic


def test_data_is_kept_as_bytes():
    assert data_bytes(None) is None
    assert data_bytes(b"\x00raw") == b"\x00raw"
    assert data_bytes({"a": "é"}) == '{"a":"é"}'.encode()


def test_knative_error_data_is_decoded_even_when_cut_mid_quantum():
    body = b'{"status": "retry", "reason": "database_unavailable"}'
    encoded = base64.b64encode(body).decode()
    assert _decode(encoded) == body.decode()
    assert body.decode().startswith(_decode(encoded[:22]))  # 22 chars: 5 whole quanta decoded
    assert _decode("%%%%") is None and _decode(None) is None
