"""HTTP sink: POST each CloudEvent in binary content mode to K_SINK (a Knative Broker's ingress).

A 2xx response means accepted. Events of one subject go out one after another, in order, and
stop at the first failure so a later event never overtakes an earlier one. http.client, not
urllib: urllib would add a form Content-Type to an event that has no datacontenttype. A plain
``http://`` sink (the Broker's in-cluster ingress) is posted to over a bare socket instead: the
request http.client would send, and only the status line and the framing headers of the answer
are parsed (http.client builds an email.message for the response headers, about half of a
publish's CPU besides the database).

The bare-socket POST keeps its connections alive (``KeepAlive``): a connection whose answer ended
by its Content-Length, on HTTP/1.1 without ``Connection: close``, goes back to the sink's idle
list and carries the next event, so a publish costs neither side a TCP handshake and an accept
(under registration load the sink's CPU per event halved). An idle connection is used only if
it is younger than ``IDLE_SECONDS`` (below the idle timeouts of gunicorn, 2 s, and of Knative's
ingresses) and the peer has not closed it. A kept connection the peer closed at the moment the
event was sent — no byte of an answer before the close — is retried once on a new connection:
the server closed it idle, so it never read the event; were it otherwise, the event arrives
twice with the same CloudEvent id, which consumers dedupe, as after a lost outbox mark.

Kept connections are blocking sockets bounded by the kernel's timeouts (``shared.sockets``): a
Python timeout polls before every send and receive, so a publish made seven system calls that hand
the GIL over (two ``ioctl``, the peek, two ``poll``, ``sendto``, ``recvfrom``) where three do.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from urllib.parse import urlsplit

from shared import sockets
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


IDLE_SECONDS = 1.0  # an idle kept connection older than this is closed, not reused
MAX_IDLE = 16  # idle connections kept per sink (the api runs 8 request threads)


class _Stale(ConnectionError):
    """A kept connection ended before any byte of an answer: the peer had closed it."""


class KeepAlive:
    """The idle connections to one ``host:port``, most recently used first (thread-safe)."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self._idle: list[tuple[socket.socket, float]] = []
        self._lock = threading.Lock()

    def take(self, timeout: float) -> tuple[socket.socket, bool]:
        """A connection for one request, and whether it was kept from an earlier one."""
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    break
                sock, since = self._idle.pop()
            if now - since < IDLE_SECONDS and _open(sock):
                sockets.bound(sock, timeout)
                return sock, True
            sock.close()
        sock = socket.create_connection(self.address, timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sockets.bound(sock, timeout)
        except BaseException:
            sock.close()
            raise
        return sock, False

    def give_back(self, sock: socket.socket) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append((sock, time.monotonic()))
                return
        sock.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for sock, _ in idle:
            sock.close()


def _open(sock: socket.socket) -> bool:
    """Whether an idle connection can carry a request: the peer has not closed it (nor sent anything
    unasked). The peek does not wait (``MSG_DONTWAIT``), blocking socket or not."""
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)  # b"": closed; bytes: unasked
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def plain_poster(url: str) -> Callable[[dict[str, str], bytes, float], int]:
    """POST to an ``http://`` URL on a kept-alive connection (``KeepAlive``); returns the status.
    The request is http.client's (request line, Host, Accept-Encoding, the headers, Content-Length).
    Raises OSError subclasses on connection problems (ConnectionError for an answer that is not
    HTTP), ValueError for a header value http.client would refuse (CR/LF, outside Latin-1)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or http.client.HTTP_PORT
    host_header = f"[{host}]" if ":" in host else host
    if port != http.client.HTTP_PORT:
        host_header = f"{host_header}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\nAccept-Encoding: identity\r\n".encode("ascii")
    connections = KeepAlive(host, port)

    def send(headers: dict[str, str], body: bytes, timeout: float) -> int:
        lines = []
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                raise ValueError("invalid header value")
            lines.append(f"{name}: {value}\r\n")
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        request = head + "".join(lines).encode("latin-1") + body
        while True:
            sock, kept = connections.take(timeout)
            try:
                sock.sendall(request)
                status, reusable = _read_status(sock, kept)
            except _Stale:
                sock.close()
                continue  # the next connection is a new one: a second failure is raised
            except BaseException:
                sock.close()
                raise
            if reusable:
                connections.give_back(sock)
            else:
                sock.close()
            return status

    send.connections = connections  # type: ignore[attr-defined]
    return send


def _read_status(sock: socket.socket, kept: bool = False) -> tuple[int, bool]:
    """The final status of the answer (interim 1xx answers skipped) and whether the connection can
    carry another request: once the body has arrived by its Content-Length, or the headers of an
    answer without one (the connection is then closed unread), or the server has closed the
    connection. ``kept``: a connection that ends before any byte of the answer is ``_Stale``."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            if kept and not received:
                raise _Stale() from None
            raise
        if kept and not received and not chunk:
            raise _Stale()
        received += chunk
        answer = _final_status(received, complete=not chunk)
        if answer is not None:
            return answer


def _final_status(answer: bytes, *, complete: bool) -> tuple[int, bool] | None:
    """The status of the final response in ``answer`` and whether its connection can be reused, or
    None while more must be read."""
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
            return status, False
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip().lower()
        length = b"0" if status in (204, 304) else fields.get(b"content-length")
        if length is None or not length.isdigit():
            return status, False  # no length to read the body by (chunked, or up to the close): not reused
        if len(answer) < int(length):
            return None
        keep = version == b"HTTP/1.1" and fields.get(b"connection") != b"close" and len(answer) == int(length)
        return status, keep


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
        except (TimeoutError, socket.timeout, BlockingIOError):  # BlockingIOError: a kernel bound ran out
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
