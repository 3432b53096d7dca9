"""EVENT_SINK is checked when settings load, so a typo cannot silently leave every event unpublished."""

import pytest
from pydantic import ValidationError

from shared.events.publishing import build_publisher
from shared.events.publishing.http_sink import HttpPublisher
from shared.settings import Settings


@pytest.mark.parametrize("value", ["pubsub://projects/p/topics/t", "pubsub://topics/events", "kafka://x", "pubsub:/projects/patient-mgt/topics/events"])
def test_a_malformed_event_sink_is_refused(value):
    with pytest.raises(ValidationError):
        Settings(event_sink=value)


@pytest.mark.parametrize("value", ["pubsub://projects/patient-mgt-prod/topics/patient-events", "http://broker.local/ns/default"])
def test_well_formed_sinks_are_accepted(value):
    assert Settings(event_sink=value).event_sink == value


def test_event_sink_wins_over_k_sink_and_no_sink_means_no_publisher():
    assert build_publisher(event_sink=None, k_sink=None) is None
    publisher = build_publisher(event_sink="http://a.example/", k_sink="http://b.example/")
    assert isinstance(publisher, HttpPublisher) and publisher.url == "http://a.example/"
    assert build_publisher(event_sink=None, k_sink="http://b.example/").url == "http://b.example/"
