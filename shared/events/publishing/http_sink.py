"""HTTP sink: POST each CloudEvent in binary content mode to K_SINK (a Knative Broker's ingress).

A 2xx response means accepted. Events of one subject go out one after another, in order, and
stop at the first failure so a later event never overtakes an earlier one. http.client, not
urllib: urllib would add a form Content-Type to an event that has no datacontenttype.
"""

from __future__ import annotations

import http.client
import socket
import time
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


class HttpPublisher:
    name = "http"

    def __init__(self, url: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("the HTTP sink must be an http(s) URL")
        self.url = url

    def publish(self, event: OutgoingEvent, timeout: float) -> None:
        headers, body = to_http_binary(event)
        try:
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
