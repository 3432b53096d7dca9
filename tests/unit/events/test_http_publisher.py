"""The HTTP sink adapter against a real endpoint on 127.0.0.1: order per subject, failures, deadlines."""

import select
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

def _request(conn: socket.socket, data: bytes) -> tuple[bytes, bytes] | None:
    """One request read from ``conn`` (head and body by Content-Length) and what followed it, or
    None when the peer closed the connection first."""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(next((ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")), b"0"))
    while len(rest) < length:
        rest += conn.recv(65536)
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


def _accepting(listener: socket.socket, on_connection) -> None:
    """Accept connections on ``listener`` in a daemon thread until it is closed, each handed to
    ``on_connection``."""

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            on_connection(conn)

    threading.Thread(target=serve, daemon=True).start()


@contextmanager
def raw_server(answer: bytes, *, close: bool = True) -> Iterator[tuple[str, list[bytes]]]:
    """A loopback server that records each request's bytes (up to its body) and writes ``answer``;
    ``close=False`` keeps the connection open after answering, as a keep-alive server would."""
    received: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def answer_once(conn: socket.socket) -> None:
        request, _ = _request(conn, b"")
        received.append(request)
        conn.sendall(answer)
        if close:
            conn.close()
        else:
            held.append(conn)

    _accepting(listener, answer_once)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/broker/ns?x=1", received
    finally:
        listener.close()
        for conn in held:
            conn.close()


def traced(i):
    event = ev(i, "patient \"7\" %")
    return OutgoingEvent({**event.attributes, "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, b'{"a":"\xc3\xa9"}')


def test_the_request_is_the_one_http_client_sends():
    ok = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
    with raw_server(ok) as (url, received):
        headers, body = to_http_binary(traced(1))
        assert post(url, headers, body, 5)[0] == 202  # http.client, as before
        assert HttpPublisher(url).publish_many([traced(1)], timeout=5, deadline=far()) == [None]
    by_http_client, bare = received
    assert bare == by_http_client
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


# A publisher that waited for the server to close would sit there until its deadline (30 s) or its read
# timeout (120 s): the test's own timeout (pytest-timeout, 20 s) fails it first; no duration is asserted.
@pytest.mark.timeout(20)
def test_an_answer_with_its_body_is_complete_even_if_the_server_keeps_the_connection_open():
    with raw_server(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok", close=False) as (url, _):
        assert HttpPublisher(url).publish_many([ev(1, "a")], timeout=120, deadline=far()) == [None]


def test_a_header_value_with_a_line_break_is_refused_before_anything_is_sent():
    with raw_server(b"HTTP/1.1 202 Accepted\r\n\r\n") as (url, received):
        event = OutgoingEvent({**traced(1).attributes, "tracestate": "a=b\r\nX-Injected: 1"}, b"{}")
        with pytest.raises(ValueError):
            HttpPublisher(url).publish(event, 2)
        with pytest.raises(ValueError):  # as http.client does
            post(url, *to_http_binary(event), 2)
    assert received == []


# -- kept-alive connections ---------------------------------------------------------------------------

@contextmanager
def keepalive_server(answer) -> Iterator[tuple[str, list[tuple[int, bytes]], list[socket.socket]]]:
    """A loopback server that reads any number of requests per connection; ``answer(n)`` is the
    bytes written for the n-th request (0-based) or None to close that connection unanswered
    (``b""``: no answer, the connection left open — a sink that hangs).
    Records (connection number, request) for each request read; yields its URL, those records and
    its connections."""
    received: list[tuple[int, bytes]] = []
    listener = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []

    def serve_connection(number: int, conn: socket.socket) -> None:
        data = b""
        try:
            while (got := _request(conn, data)) is not None:
                request, data = got
                reply = answer(len(received))
                received.append((number, request))
                if reply is None:
                    conn.close()
                    return
                conn.sendall(reply)
        except OSError:  # closed by the test or at the end
            return

    def start(conn: socket.socket) -> None:
        conns.append(conn)
        threading.Thread(target=serve_connection, args=(len(conns) - 1, conn), daemon=True).start()

    _accepting(listener, start)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/", received, conns
    finally:
        listener.close()
        for conn in conns:
            conn.close()


ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"


def test_events_share_one_kept_alive_connection():
    with keepalive_server(lambda n: ACCEPTED) as (url, received, _):
        publisher = HttpPublisher(url)
        outcomes = publisher.publish_many([ev(i, f"s{i}") for i in range(5)], timeout=5, deadline=far())
        assert publisher.publish_many([ev(5, "s5")], timeout=5, deadline=far()) == [None]
    assert outcomes == [None] * 5
    assert [number for number, _ in received] == [0] * 6
    assert [request.split(b"ce-id: ")[1].split(b"\r\n")[0] for _, request in received] == [b"0", b"1", b"2", b"3", b"4", b"5"]


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    b"HTTP/1.0 202 Accepted\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
])
def test_a_connection_the_answer_does_not_leave_reusable_is_not_reused(answer):
    with keepalive_server(lambda n: answer) as (url, received, _):
        outcomes = HttpPublisher(url).publish_many([ev(1, "a"), ev(2, "b")], timeout=5, deadline=far())
    assert outcomes == [None, None]
    assert [number for number, _ in received] == [0, 1]


def test_an_idle_connection_older_than_the_idle_limit_is_not_reused(monkeypatch):
    from shared.events.publishing import http_sink

    with keepalive_server(lambda n: ACCEPTED) as (url, received, _):
        publisher = HttpPublisher(url)
        assert publisher.publish_many([ev(1, "a")], timeout=5, deadline=far()) == [None]
        monkeypatch.setattr(http_sink, "IDLE_SECONDS", 0.0)
        assert publisher.publish_many([ev(2, "a")], timeout=5, deadline=far()) == [None]
    assert [number for number, _ in received] == [0, 1]


def test_a_connection_the_sink_closed_while_idle_is_not_used():
    with keepalive_server(lambda n: ACCEPTED) as (url, received, conns):
        publisher = HttpPublisher(url)
        assert publisher.publish_many([ev(1, "a")], timeout=5, deadline=far()) == [None]
        [(kept, _)] = publisher._post_plain.connections._idle  # noqa: SLF001 — the idle connection
        conns[0].shutdown(socket.SHUT_RDWR)  # the server closes it, as at its idle timeout
        assert select.select([kept], [], [], 5)[0] == [kept]  # the close has reached this side
        assert publisher.publish_many([ev(2, "a")], timeout=5, deadline=far()) == [None]
    assert [number for number, _ in received] == [0, 1]


def test_a_kept_connection_closed_as_the_event_arrived_is_retried_once_on_a_new_one():
    # the second request finds its kept connection closed unanswered (the server's idle timeout
    # at that moment): sent again on a new connection, once; consumers dedupe the id if need be
    with keepalive_server(lambda n: None if n == 1 else ACCEPTED) as (url, received, _):
        publisher = HttpPublisher(url)
        assert publisher.publish_many([ev(1, "a"), ev(2, "a")], timeout=5, deadline=far()) == [None, None]
    assert [number for number, _ in received] == [0, 0, 1]
    assert received[1][1] == received[2][1]


def test_a_new_connection_closed_unanswered_is_a_failure_not_a_retry():
    with keepalive_server(lambda n: None) as (url, received, _):
        [outcome] = HttpPublisher(url).publish_many([ev(1, "a")], timeout=5, deadline=far())
    assert outcome.code == "connection_ConnectionError" and len(received) == 1


# -- time bounds (the kernel's, on blocking sockets: shared.sockets) ----------------------------------

SILENT = b""


def test_a_sink_that_never_answers_is_a_timeout():
    with keepalive_server(lambda n: SILENT) as (url, received, _):
        started = time.monotonic()
        [outcome] = HttpPublisher(url).publish_many([ev(1, "a")], timeout=0.3, deadline=far())
        waited = time.monotonic() - started
    assert outcome.code == "timeout" and len(received) == 1
    assert waited >= 0.29  # it waited for the answer the whole bound, not failed at once


def test_a_kept_connection_that_goes_silent_is_a_timeout_and_is_not_kept():
    with keepalive_server(lambda n: SILENT if n == 1 else ACCEPTED) as (url, received, _):
        publisher = HttpPublisher(url)
        assert publisher.publish_many([ev(1, "a")], timeout=0.3, deadline=far()) == [None]
        [outcome] = publisher.publish_many([ev(2, "a")], timeout=0.3, deadline=far())
        assert outcome.code == "timeout"
        assert publisher._post_plain.connections._idle == []  # noqa: SLF001 — the silent one was closed
        assert publisher.publish_many([ev(3, "a")], timeout=0.3, deadline=far()) == [None]
    assert [number for number, _ in received] == [0, 0, 1]


def test_the_deadline_bounds_the_wait_when_it_is_nearer_than_the_timeout():
    with keepalive_server(lambda n: SILENT) as (url, received, _):
        started = time.monotonic()
        [outcome] = HttpPublisher(url).publish_many([ev(1, "a")], timeout=60, deadline=time.monotonic() + 0.3)
        waited = time.monotonic() - started
    assert outcome.code == "timeout" and len(received) == 1
    assert 0.29 <= waited < 30  # the deadline's 0.3 s, not the timeout's 60
