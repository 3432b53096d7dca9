"""A real HTTP endpoint on 127.0.0.1 that records what it receives and answers as told.

Used as the event sink (K_SINK) and as a Trigger subscriber in tests: ``respond`` decides the
status per request (a flaky or broken sink), ``requests`` is everything received, in order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass
class Sink:
    url: str
    requests: list[Received] = field(default_factory=list)
    respond: Callable[[Received], int] = lambda _r: 202
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        with self.lock:
            return [r.header("ce-id") or "" for r in self.requests]


@contextmanager
def http_sink(respond: Callable[[Received], int] | None = None) -> Iterator[Sink]:
    sink = Sink(url="")
    if respond is not None:
        sink.respond = respond

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            received = Received(self.path, dict(self.headers.items()), self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            with sink.lock:
                sink.requests.append(received)
            status = sink.respond(received)
            body = b'{"status": "ok"}' if status < 300 else b'{"status": "retry", "reason": "test"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sink.url = f"http://127.0.0.1:{server.server_port}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
