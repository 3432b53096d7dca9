"""Publishing outbox rows as CloudEvents: one interface, two adapters.

- ``K_SINK`` (a Knative SinkBinding injects the Broker's URL): HTTP POST in binary content mode,
  2xx = accepted (``http_sink``).
- ``EVENT_SINK=pubsub://projects/P/topics/T``: Pub/Sub with the CloudEvents Pub/Sub binding
  attributes, ordering key = subject (``pubsub_sink``; google-cloud-pubsub is imported only then).

``EVENT_SINK`` wins when both are set. With neither, publishing is a no-op and rows stay
unpublished (tests, a bare process); the sweeper publishes them once a sink is configured.
``relay.publish_committed`` runs right after a commit (before the answer, or from the process's
background publisher: ``after_commit``); ``sweep.sweep_outbox`` catches up.
"""

from __future__ import annotations

import threading

from shared.events.publishing.types import NOT_ATTEMPTED, OutgoingEvent, Publisher, PublishError
from shared.settings import get_settings, parse_pubsub_sink

__all__ = ["NOT_ATTEMPTED", "OutgoingEvent", "PublishError", "Publisher", "build_publisher", "publisher_from_settings"]


_lock = threading.Lock()
_cached: tuple[tuple[str | None, str | None], Publisher | None] | None = None


def publisher_from_settings() -> Publisher | None:
    """The process's publisher for the configured sink (built once), or None when none is set."""
    global _cached
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

