"""HTTP sink: POST each CloudEvent in binary content mode to K_SINK (a Knative Broker's ingress).

A 2xx response means accepted. Events of one subject go out one after another, in order, and
stop at the first failure so a later event never overtakes an earlier one. http.client, not
urllib: urllib would add a form Content-Type to an event that has no datacontenttype. A plain
``http://`` sink (the Broker's in-cluster ingress) is posted to over a bare socket instead: the
request http.client would send plus ``Connection: close``, and only the status line of the answer
is parsed (http.client builds an email.message for the response headers, about half of a publish's
CPU besides the database).
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable
from collections.abc import Sequence
from urllib.parse import urlsplit

from shared.events.publishing.types import OutgoingEvent, PublishError
from shared.events.publishing.envelope import to_http_binary

MAX_CONSECUTIVE_UNREACHABLE = 3


def post(url: str, headers: dict[str, str], body: bytes, timeout: float) -> tuple[int, bytes]:
    """POST and return (status, response body). Raises OSError subclasses on connection problems."""
    parts = urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname or "", parts.port, timeout=timeout)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", path, body=body, headers={**headers, "Content-Length": str(len(body))})
        response = conn.getresponse()
        return response.status, response.read()
    except http.client.HTTPException as exc:
        raise ConnectionError(type(exc).__name__) from None
    finally:
        conn.close()


def plain_poster(url: str) -> Callable[[dict[str, str], bytes, float], int]:
    """POST to an ``http://`` URL on a new connection, closed after the answer; returns the status.
    The request is http.client's (request line, Host, Accept-Encoding, the headers, Content-Length)
    with ``Connection: close``, so the answer ends with the connection. Raises OSError subclasses on
    connection problems (ConnectionError for an answer that is not HTTP), ValueError for a header
    value http.client would refuse (CR/LF, outside Latin-1)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or http.client.HTTP_PORT
    host_header = f"[{host}]" if ":" in host else host
    if port != http.client.HTTP_PORT:
        host_header = f"{host_header}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\nAccept-Encoding: identity\r\n".encode("ascii")

    def send(headers: dict[str, str], body: bytes, timeout: float) -> int:
        lines = []
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                raise ValueError("invalid header value")
            lines.append(f"{name}: {value}\r\n")
        lines.append(f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        request = head + "".join(lines).encode("latin-1") + body
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(request)
            return _read_status(sock)

    return send


def _read_status(sock: socket.socket) -> int:
    """The final status of the answer (interim 1xx answers skipped), once its body has arrived (by
    Content-Length) or the server has closed the connection."""
    received = b""
    while True:
        chunk = sock.recv(65536)
        received += chunk
        status = _final_status(received, complete=not chunk)
        if status is not None:
            return status


def _final_status(answer: bytes, *, complete: bool) -> int | None:
    """The status of the final response in ``answer``, or None while more must be read."""
    while True:
        head, end, answer = answer.partition(b"\r\n\r\n")
        if not end and not complete:
            return None
        lines = head.split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/") or len(code) != 3 or not code.isdigit() or rest[3:4] not in (b"", b" "):
            raise ConnectionError("BadStatusLine")
        status = int(code)
        if 100 <= status < 200:
            if not end:
                raise ConnectionError("IncompleteRead")
            continue
        if complete:
            return status
        length = next((line.partition(b":")[2].strip() for line in lines[1:] if line[:15].lower() == b"content-length:"), None)
        return status if length is not None and length.isdigit() and len(answer) >= int(length) else None


class HttpPublisher:
    name = "http"

    def __init__(self, url: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("the HTTP sink must be an http(s) URL")
        self.url = url
        self._post_plain = plain_poster(url) if url.startswith("http://") else None

    def publish(self, event: OutgoingEvent, timeout: float) -> None:
        headers, body = to_http_binary(event)
        try:
            if self._post_plain is not None:
                status = self._post_plain(headers, body, timeout)
            else:
                status, _ = post(self.url, headers, body, timeout)
        except (TimeoutError, socket.timeout):
            raise PublishError("timeout") from None
        except OSError as exc:
            raise PublishError(f"connection_{type(exc).__name__}") from None
        if not 200 <= status < 300:
            raise PublishError(f"http_{status}")

    def publish_many(self, events: Sequence[OutgoingEvent], *, timeout: float, deadline: float) -> list[PublishError | None]:
        outcomes: list[PublishError | None] = []
        failed_subjects: set[str] = set()
        unreachable = 0  # consecutive connection failures: stop hammering a sink that is down
        for event in events:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                outcomes.append(PublishError("deadline"))
                continue
            if unreachable >= MAX_CONSECUTIVE_UNREACHABLE:
                outcomes.append(PublishError("sink_unavailable"))
                continue
            if event.subject is not None and event.subject in failed_subjects:
                outcomes.append(PublishError("blocked_by_earlier_event"))
                continue
            try:
                self.publish(event, min(timeout, remaining))
                outcomes.append(None)
                unreachable = 0
            except PublishError as error:
                outcomes.append(error)
                unreachable = unreachable + 1 if not error.code.startswith("http_") else 0
                if event.subject is not None:
                    failed_subjects.add(event.subject)
        return outcomes
