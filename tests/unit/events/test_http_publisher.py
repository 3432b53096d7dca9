"""The HTTP sink adapter against a real endpoint on 127.0.0.1: order per subject, failures, deadlines."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from shared.events.publishing import OutgoingEvent
from shared.events.publishing.envelope import to_http_binary
from shared.events.publishing.http_sink import HttpPublisher, post
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


# -- the bare-socket POST of an http:// sink ---------------------------------------------------------

@contextmanager
def raw_server(answer: bytes, *, close: bool = True) -> Iterator[tuple[str, list[bytes]]]:
    """A loopback server that records each request's bytes (up to its body) and writes ``answer``;
    ``close=False`` keeps the connection open after answering, as a keep-alive server would."""
    received: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head = data.split(b"\r\n\r\n")[0]
            length = int(next((ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")), b"0"))
            while len(data) < len(head) + 4 + length:
                data += conn.recv(65536)
            received.append(data)
            conn.sendall(answer)
            if close:
                conn.close()
            else:
                held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/broker/ns?x=1", received
    finally:
        listener.close()
        for conn in held:
            conn.close()


def traced(i):
    event = ev(i, "patient \"7\" %")
    return OutgoingEvent({**event.attributes, "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, b'{"a":"\xc3\xa9"}')


def test_the_request_is_the_one_http_client_sends_with_connection_close():
    ok = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
    with raw_server(ok) as (url, received):
        headers, body = to_http_binary(traced(1))
        assert post(url, headers, body, 5)[0] == 202  # http.client, as before
        assert HttpPublisher(url).publish_many([traced(1)], timeout=5, deadline=far()) == [None]
    by_http_client, bare = received
    head, _, rest = by_http_client.partition(b"\r\n\r\n")
    assert bare == head + b"\r\nConnection: close\r\n\r\n" + rest
    assert bare.startswith(b"POST /broker/ns?x=1 HTTP/1.1\r\nHost: 127.0.0.1:") and b"ce-subject: patient%20%227%22%20%25" in bare


@pytest.mark.parametrize("answer, outcome", [
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok", None),
    (b"HTTP/1.1 204 No Content\r\n\r\n", None),
    (b"HTTP/1.0 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy", "http_503"),
    (b"", "connection_ConnectionError"),
    (b"SMTP ready\r\n\r\n", "connection_ConnectionError"),
    (b"HTTP/1.1 2O2 Accepted\r\n\r\n", "connection_ConnectionError"),
])
def test_the_status_of_the_final_answer_decides(answer, outcome):
    with raw_server(answer) as (url, received):
        [result] = HttpPublisher(url).publish_many([ev(1, "a")], timeout=5, deadline=far())
    assert (result.code if result else None) == outcome and len(received) == 1


def test_an_answer_with_its_body_is_complete_even_if_the_server_keeps_the_connection_open():
    with raw_server(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok", close=False) as (url, _):
        started = time.monotonic()
        assert HttpPublisher(url).publish_many([ev(1, "a")], timeout=3, deadline=far()) == [None]
    assert time.monotonic() - started < 2  # did not wait for the timeout


def test_a_header_value_with_a_line_break_is_refused_before_anything_is_sent():
    with raw_server(b"HTTP/1.1 202 Accepted\r\n\r\n") as (url, received):
        event = OutgoingEvent({**traced(1).attributes, "tracestate": "a=b\r\nX-Injected: 1"}, b"{}")
        with pytest.raises(ValueError):
            HttpPublisher(url).publish(event, 2)
        with pytest.raises(ValueError):  # as http.client does
            post(url, *to_http_binary(event), 2)
    assert received == []
