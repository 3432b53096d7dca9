"""HTTP sink: POST each CloudEvent in binary content mode to K_SINK (a Knative Broker's ingress).

A 2xx response means accepted. Events of one subject go out one after another, in order, and
stop at the first failure so a later event never overtakes an earlier one.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from shared.events.publishing import OutgoingEvent, PublishError
from shared.events.publishing.envelope import to_http_binary


MAX_CONSECUTIVE_UNREACHABLE = 3


class HttpPublisher:
    name = "http"

    def __init__(self, url: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("the HTTP sink must be an http(s) URL")
        self.url = url

    def publish(self, event: OutgoingEvent, timeout: float) -> None:
        headers, body = to_http_binary(event)
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (URL from configuration)
                response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            exc.close()
            raise PublishError(f"http_{exc.code}") from None
        except (TimeoutError, socket.timeout):
            raise PublishError("timeout") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise PublishError("timeout") from None
            raise PublishError(f"connection_{type(reason).__name__}") from None
        except (ConnectionError, OSError) as exc:
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
