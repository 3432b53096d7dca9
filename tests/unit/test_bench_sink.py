"""The bench's event sink (bench.sink) as the functions' publisher meets it: a real process on 127.0.0.1.

It must accept what the project's HTTP publisher sends (binary-mode CloudEvents over kept-alive
connections), refuse what is not a CloudEvent, and count both, or a bench run would measure a
publish that silently failed."""

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from bench import client
from bench.procs import ROOT, free_port
from bench.sink import counts
from shared.events.publishing import OutgoingEvent
from shared.events.publishing.http_sink import HttpPublisher


@pytest.fixture
def sink() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.sink", "--port", str(port)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.request(port, "GET", "/", timeout=2)[0] == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0  # SIGTERM is a clean stop


def ev(i: int, event_type: str) -> OutgoingEvent:
    return OutgoingEvent({"specversion": "1.0", "id": str(i), "source": "/t", "type": event_type, "subject": f"s{i % 3}",
                          "datacontenttype": "application/json"}, b'{"n": %d}' % i)


def test_the_publishers_events_are_accepted_and_counted_by_type(sink):
    publisher = HttpPublisher(f"http://127.0.0.1:{sink}")
    events = [ev(i, "a.v1" if i % 2 else "b.v1") for i in range(40)]
    outcomes = publisher.publish_many(events, timeout=5, deadline=time.monotonic() + 30)
    assert outcomes == [None] * 40
    assert counts(sink) == {"accepted": 40, "by_type": {"a.v1": 20, "b.v1": 20}, "refused": 0}


def test_what_is_not_a_cloudevent_is_refused_and_counted_and_framing_is_http_1_1(sink):
    status, _ = client.request(sink, "POST", "/", body=b"{}", headers={"ce-id": "1", "ce-type": "t"})
    assert status == 400  # no ce-specversion / ce-source
    status, _ = client.request(sink, "POST", "/", body=b"{}",
                               headers={"Content-Type": "application/cloudevents+json"})
    assert status == 202  # structured mode
    with socket.create_connection(("127.0.0.1", sink), timeout=5) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 411 ")
        assert s.recv(4096) == b""  # and the connection is closed
    # two requests in one write on one connection: both answered, in order
    with socket.create_connection(("127.0.0.1", sink), timeout=5) as s:
        one = (b"POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: %d\r\nce-source: /t\r\nce-type: p.v1\r\n"
               b"Content-Length: 2\r\n\r\n{}")
        s.sendall(one % 1 + one % 2)
        answer = b""
        while answer.count(b"HTTP/1.1 202 ") < 2:
            chunk = s.recv(4096)
            assert chunk
            answer += chunk
    assert counts(sink) == {"accepted": 3, "by_type": {"(structured)": 1, "p.v1": 2}, "refused": 1}
