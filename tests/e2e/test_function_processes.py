"""All four functions as real processes (functions-framework and gunicorn, started as the container
starts them: ``python -m shared.serve``): what gunicorn answers before the app sees a request, and
what the framework answers, is problem+json that quotes nothing of the request; every function
answers the probes."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import requests

from tests.support.processes import FunctionProcess, start_function


pytestmark = pytest.mark.e2e

TARGETS = ["api", "lis_consumer", "notify", "jobs"]
MARK = b"Zyxwvut"  # stands for patient data in a request: never echoed
MALFORMED = {
    "invalid header character": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: " + MARK + b"\x01\r\n\r\n",
    "space in a header name": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX " + MARK + b": 1\r\n\r\n",
    "malformed request line": b"GET /" + MARK + b" HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    "invalid method": b"G(T /healthz HTTP/1.1\r\nHost: x\r\nX-Note: " + MARK + b"\r\n\r\n",
    "bad chunked body": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + MARK + b"\r\n0\r\n\r\n",
}


def raw_request(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library would send these) and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < _length(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split(" ")[1]), headers, body


def _length(received: bytes) -> int:
    head = received.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    for line in head.split("\r\n"):
        if line.startswith("content-length:"):
            return int(line.split(":", 1)[1])
    return 1 << 30  # no length: read until the server closes


def assert_problem(status: int, headers: dict[str, str], body: bytes, expected: int) -> dict:
    assert status == expected, body[:300]
    assert headers["content-type"].split(";")[0] == "application/problem+json", headers
    assert MARK not in body and b"<html" not in body.lower()
    doc = json.loads(body)
    assert doc["status"] == expected and doc["type"].startswith("https://") and doc["detail"]
    return doc


@pytest.fixture(scope="module")
def functions(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FunctionProcess]]:
    """The four processes, started once for the module's tests (each start and stop takes seconds)."""
    log_dir = tmp_path_factory.mktemp("functions")
    started: dict[str, FunctionProcess] = {}
    try:
        for target in TARGETS:
            started[target] = start_function(target, {"DATABASE_URL": database_url, "API_KEY_CACHE_SECONDS": "0",
                                                      "THREADS": "2"}, log_dir, ready_path="/healthz")
        yield started
    finally:
        for proc in started.values():
            proc.stop()


def test_malformed_requests_get_a_problem_from_gunicorn_itself_on_every_function(functions):
    for target, fn in functions.items():
        for name, data in MALFORMED.items():
            status, headers, body = raw_request(fn.port, data)
            assert_problem(status, headers, body, 400)
            if name != "bad chunked body":  # that one is read by the app; gunicorn answers the others itself
                assert headers["connection"] == "close", (target, name)
        # The worker answered and carried on: the next well-formed request is served.
        assert requests.get(f"{fn.url}/healthz", timeout=5).json() == {"status": "ok"}, target
        assert "<html" not in fn.logs().lower()


def test_every_function_answers_the_probes_and_framework_errors_in_problem_json(functions):
    for target, fn in functions.items():
        assert requests.get(f"{fn.url}/readyz", timeout=5).json() == {"status": "ready"}, target
        status, headers, body = raw_request(fn.port, b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\nX-Note: " + MARK + b"\r\n\r\n")
        assert_problem(status, headers, body, 404 if target == "api" else 405)
    for target in ("lis_consumer", "notify", "jobs"):
        resp = requests.post(functions[target].url, data=b'{"n": "' + MARK + b'"}', timeout=5,
                             headers={"ce-specversion": "9.9", "ce-id": "1", "ce-source": "/t", "ce-type": "t",
                                      "Content-Type": "application/json"})
        assert_problem(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.content, 400)


def test_readiness_fails_with_a_problem_while_the_database_is_unreachable(start_fn, closed_port):
    unreachable = f"postgresql+pg8000://postgres@127.0.0.1:{closed_port}/nowhere"
    fn = start_fn("notify", env={"THREADS": "2", "DATABASE_URL": unreachable}, ready_path="/healthz")
    resp = requests.get(f"{fn.url}/readyz", timeout=30)
    doc = assert_problem(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.content, 503)
    assert doc["type"].endswith("/service-unavailable") and resp.headers["Retry-After"] == "2"
