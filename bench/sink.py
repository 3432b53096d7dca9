"""The benchmark's event sink: a stand-in for the Knative Broker's ingress, cheap enough not to be measured.

In a cluster the functions post their CloudEvents to the broker's ingress, which runs on other nodes.
Here the sink shares the two cores with the function under test, so every millisecond it spends on
an event is taken from the measurement. A functions-framework hello-world served as the sink until
2026-12-06 and spent ≈ 0.4–0.5 ms of CPU per event (gunicorn's threaded worker, werkzeug and Flask
for an answer with no content): ≈ 12 % of the machine's CPU per registration and ≈ 15 % per ORU
(two events), more than the function's own publishing.

This one is a single-threaded asyncio server speaking just enough HTTP/1.1 for a CloudEvents sender:
keep-alive, ``Content-Length`` bodies (anything else is a 411 and the connection closes), an answer
``202 Accepted`` to a POST that carries a CloudEvent in binary mode (``ce-specversion``, ``ce-id``,
``ce-source``, ``ce-type``) or structured mode (``application/cloudevents+json``), ``400`` to any other
POST. It keeps what a run needs to check that publishing worked — events accepted by type, posts
refused — and serves them as JSON on ``GET /counts``; any other GET is a 200 (the readiness probe).
It neither parses nor keeps the events' data.

    python -m bench.sink --port 8089
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections import Counter

_REQUIRED = ("ce-specversion", "ce-id", "ce-source", "ce-type")
_MAX_HEAD = 64 * 1024
_REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 411: "Length Required", 431: "Request Header Fields Too Large"}


class Counts:
    def __init__(self) -> None:
        self.accepted: Counter[str] = Counter()
        self.refused = 0

    def as_json(self) -> bytes:
        return json.dumps({"accepted": sum(self.accepted.values()), "by_type": dict(self.accepted),
                           "refused": self.refused}, sort_keys=True).encode()


def _answer(counts: Counts, method: str, target: str, headers: dict[str, str]) -> tuple[int, bytes, str]:
    if method == "POST":
        if all(headers.get(name) for name in _REQUIRED):
            counts.accepted[headers["ce-type"]] += 1
            return 202, b"", ""
        if headers.get("content-type", "").startswith("application/cloudevents+json"):
            counts.accepted["(structured)"] += 1
            return 202, b"", ""
        counts.refused += 1
        return 400, b"not a CloudEvent\n", "text/plain"
    if method == "GET" and target.split("?", 1)[0] == "/counts":
        return 200, counts.as_json(), "application/json"
    return 200, b"ok", "text/plain"


def _response(status: int, body: bytes, content_type: str, close: bool) -> bytes:
    head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\nContent-Length: {len(body)}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    if close:
        head += "Connection: close\r\n"
    return head.encode("ascii") + b"\r\n" + body


class _Connection(asyncio.Protocol):
    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and not self.transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > _MAX_HEAD:
                    self._close_with(431)
                return
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            request = lines[0].split(" ")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if len(request) != 3 or "transfer-encoding" in headers:
                self._close_with(411 if "transfer-encoding" in headers else 400)
                return
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                self._close_with(400)
                return
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[:end + 4 + length]
            close = headers.get("connection", "").lower() == "close" or request[2] != "HTTP/1.1"
            status, body, content_type = _answer(self.counts, request[0], request[1], headers)
            self.transport.write(_response(status, body, content_type, close))
            if close:
                self.transport.close()

    def _close_with(self, status: int) -> None:
        assert self.transport is not None
        self.transport.write(_response(status, b"", "", close=True))
        self.transport.close()


def counts(port: int) -> dict:
    """What the sink on ``port`` has accepted and refused so far (``GET /counts``)."""
    from bench import client  # noqa: PLC0415

    status, body = client.request(port, "GET", "/counts")
    if status != 200:
        raise RuntimeError(f"event sink answered {status} to GET /counts")
    return json.loads(body)


async def serve(host: str, port: int) -> None:
    counts = Counts()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(counts), host, port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
