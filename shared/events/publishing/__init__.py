"""Publishing outbox rows as CloudEvents: one interface, two adapters.

- ``K_SINK`` (a Knative SinkBinding injects the Broker's URL): HTTP POST in binary content mode,
  2xx = accepted (``http_sink``).
- ``EVENT_SINK=pubsub://projects/P/topics/T``: Pub/Sub with the CloudEvents Pub/Sub binding
  attributes, ordering key = subject (``pubsub_sink``; google-cloud-pubsub is imported only then).

``EVENT_SINK`` wins when both are set. With neither, publishing is a no-op and rows stay
unpublished (tests, a bare process); the sweeper publishes them once a sink is configured.
``relay.publish_committed`` runs right after a commit; ``sweep.sweep_outbox`` catches up.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


# A Pub/Sub topic path (resource names: letters, digits, - _ . ~ + %, 3-255 chars, starting with a letter).
TOPIC_PATH = re.compile(r"projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/[A-Za-z][A-Za-z0-9._~+%-]{2,254}")


class PublishError(Exception):
    """The sink did not accept an event. ``code`` is safe to log and store (no PHI)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class OutgoingEvent:
    """A CloudEvent ready for a sink: context attributes (canonical strings) and data bytes."""

    attributes: dict[str, str]
    data: bytes | None

    @property
    def id(self) -> str:
        return self.attributes["id"]

    @property
    def type(self) -> str:
        return self.attributes["type"]

    @property
    def subject(self) -> str | None:
        return self.attributes.get("subject")


# Outcomes for events a publisher did not attempt.
NOT_ATTEMPTED = ("blocked_by_earlier_event", "deadline", "sink_unavailable")


class Publisher(Protocol):
    """A sink adapter. ``publish_many`` returns one outcome per event (None = accepted).

    Events of one subject are given in order; after a failure, the adapter must not publish that
    subject's later events in the same call (they fail with ``blocked_by_earlier_event``). Each
    send waits at most ``timeout`` seconds and nothing is sent after ``deadline``
    (``time.monotonic()``).
    """

    name: str

    def publish_many(self, events: Sequence[OutgoingEvent], *, timeout: float, deadline: float) -> list[PublishError | None]: ...

    def publish(self, event: OutgoingEvent, timeout: float) -> None: ...


_lock = threading.Lock()
_cached: tuple[tuple[str | None, str | None], Publisher | None] | None = None


def publisher_from_settings() -> Publisher | None:
    """The process's publisher for the configured sink (built once), or None when none is set."""
    global _cached
    from shared.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    key = (settings.event_sink, settings.k_sink)
    cached = _cached
    if cached is not None and cached[0] == key:
        return cached[1]
    with _lock:
        if _cached is not None and _cached[0] == key:
            return _cached[1]
        publisher = build_publisher(event_sink=settings.event_sink, k_sink=settings.k_sink)
        _cached = (key, publisher)
        return publisher


def build_publisher(*, event_sink: str | None, k_sink: str | None) -> Publisher | None:
    if event_sink:
        if event_sink.startswith("pubsub://"):
            from shared.events.publishing.pubsub_sink import PubSubPublisher  # noqa: PLC0415

            return PubSubPublisher(parse_pubsub_sink(event_sink))
        from shared.events.publishing.http_sink import HttpPublisher  # noqa: PLC0415

        return HttpPublisher(event_sink)
    if k_sink:
        from shared.events.publishing.http_sink import HttpPublisher  # noqa: PLC0415

        return HttpPublisher(k_sink)
    return None


def parse_pubsub_sink(value: str) -> str:
    """``pubsub://projects/P/topics/T`` -> ``projects/P/topics/T``; ValueError when malformed."""
    path = value.removeprefix("pubsub://")
    if not TOPIC_PATH.fullmatch(path):
        raise ValueError("EVENT_SINK must look like pubsub://projects/<project>/topics/<topic>")
    return path
