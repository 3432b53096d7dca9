"""Pub/Sub sink: ``EVENT_SINK=pubsub://projects/P/topics/T``.

Binary content mode of the CloudEvents Pub/Sub binding: every context attribute becomes a
``ce-<name>`` message attribute, ``datacontenttype`` the ``content-type`` attribute, and the data
the message payload. The ordering key is the subject (the patient id), so one patient's events
arrive in order on subscriptions with message ordering enabled. google-cloud-pubsub costs about
250 ms to import, so this module is imported only when this sink is configured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from shared.events.publishing.types import OutgoingEvent, PublishError
from shared.events.publishing.envelope import to_pubsub_binary


_client_lock = threading.Lock()
_client: Any = None


def publisher_client() -> Any:
    """One PublisherClient per process (thread-safe), with message ordering enabled.
    With PUBSUB_EMULATOR_HOST set the library talks to the emulator and needs no credentials."""
    global _client
    with _client_lock:
        if _client is None:
            from google.cloud import pubsub_v1  # noqa: PLC0415

            _client = pubsub_v1.PublisherClient(
                publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True),
                batch_settings=pubsub_v1.types.BatchSettings(max_latency=0.005),
            )
        return _client


def publish_message(topic: str, data: bytes, attributes: dict[str, str], *, ordering_key: str = "", timeout: float) -> str:
    """Publish one raw message (a re-drive of a Pub/Sub dead letter); returns its message id."""
    client = publisher_client()
    try:
        return client.publish(topic, data, ordering_key=ordering_key, **attributes).result(timeout=timeout)
    except (FutureTimeout, TimeoutError):
        raise PublishError("timeout") from None
    except Exception as exc:
        if ordering_key:
            client.resume_publish(topic, ordering_key)
        raise PublishError(_code(exc)) from None


class PubSubPublisher:
    name = "pubsub"

    def __init__(self, topic_path: str, client: Any = None) -> None:
        self.topic = topic_path
        self.client = client if client is not None else publisher_client()

    def publish(self, event: OutgoingEvent, timeout: float) -> None:
        [outcome] = self.publish_many([event], timeout=timeout, deadline=time.monotonic() + timeout)
        if outcome is not None:
            raise outcome

    def publish_many(self, events: Sequence[OutgoingEvent], *, timeout: float, deadline: float) -> list[PublishError | None]:
        futures: list[Any] = []
        for event in events:
            attributes, data, ordering_key = to_pubsub_binary(event)
            try:
                futures.append(self.client.publish(self.topic, data, ordering_key=ordering_key, **attributes))
            except Exception as exc:  # the client refuses at once (paused key, closed client)
                futures.append(PublishError(_code(exc)))
        outcomes: list[PublishError | None] = []
        failed_keys: set[str] = set()
        for event, future in zip(events, futures, strict=True):
            key = event.subject or ""
            if isinstance(future, PublishError):
                outcome: PublishError | None = future
            else:
                try:
                    future.result(timeout=max(0.0, min(timeout, deadline - time.monotonic())))
                    outcome = None
                except (FutureTimeout, TimeoutError):
                    outcome = PublishError("timeout")
                except Exception as exc:
                    outcome = PublishError(_code(exc))
            if outcome is not None and key:
                if key not in failed_keys:
                    failed_keys.add(key)
                elif outcome.code != "timeout":
                    outcome = PublishError("blocked_by_earlier_event")
            outcomes.append(outcome)
        for key in failed_keys:
            # After a failure the client pauses the ordering key; the next attempt (sweeper) resumes it.
            self.client.resume_publish(self.topic, key)
        return outcomes


def _code(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "PublishToPausedOrderingKeyException":
        return "blocked_by_earlier_event"
    return f"pubsub_{name}"
