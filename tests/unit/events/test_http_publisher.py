"""The HTTP sink adapter against a real endpoint on 127.0.0.1: order per subject, failures, deadlines."""

import time

from shared.events.publishing import OutgoingEvent
from shared.events.publishing.http_sink import HttpPublisher
from tests.support.sink import http_sink


def ev(i, subject):
    return OutgoingEvent({"specversion": "1.0", "id": str(i), "source": "/t", "type": "t.v1", "subject": subject,
                          "datacontenttype": "application/json"}, b"{}")


def far():
    return time.monotonic() + 30


def test_accepted_events_are_sent_in_order_in_binary_mode():
    with http_sink() as sink:
        outcomes = HttpPublisher(sink.url).publish_many([ev(1, "a"), ev(2, "b"), ev(3, "a")], timeout=5, deadline=far())
    assert outcomes == [None, None, None]
    assert sink.ids() == ["1", "2", "3"]
    assert sink.requests[0].header("ce-type") == "t.v1" and sink.requests[0].header("Content-Type") == "application/json"


def test_after_a_failure_the_subjects_later_events_are_not_sent_but_others_are():
    with http_sink(lambda r: 503 if r.header("ce-id") == "1" else 202) as sink:
        outcomes = HttpPublisher(sink.url).publish_many([ev(1, "a"), ev(2, "b"), ev(3, "a")], timeout=5, deadline=far())
    assert [o.code if o else None for o in outcomes] == ["http_503", None, "blocked_by_earlier_event"]
    assert sink.ids() == ["1", "2"]


def test_an_unreachable_sink_is_tried_a_few_times_then_left_alone(closed_port):
    publisher = HttpPublisher(f"http://127.0.0.1:{closed_port}/")
    outcomes = publisher.publish_many([ev(i, f"s{i}") for i in range(6)], timeout=2, deadline=far())
    codes = [o.code for o in outcomes]
    assert all(c.startswith("connection_") for c in codes[:3]) and codes[3:] == ["sink_unavailable"] * 3


def test_nothing_is_sent_after_the_deadline():
    with http_sink() as sink:
        outcomes = HttpPublisher(sink.url).publish_many([ev(1, "a")], timeout=5, deadline=time.monotonic() - 1)
    assert outcomes[0].code == "deadline" and sink.requests == []
