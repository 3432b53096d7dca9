"""Handing one HL7 message to Pub/Sub and waiting until Pub/Sub has confirmed it (durable).

The message data is the raw bytes as received; the ordering key is the sending facility (MSH-4),
so one sender's messages are delivered in order on an ordered subscription. Attributes carry no
PHI: the content type the consumer reads (`content-type`, as the CloudEvents Pub/Sub binding
writes it) and where the message came from. google-cloud-pubsub is imported only here.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from shared.events.publishing import PublishError

_MAX_KEY = 1024  # Pub/Sub's limit on an ordering key, in bytes


class Publisher(Protocol):
    async def publish(self, data: bytes, *, ordering_key: str, timeout: float) -> str:
        """The Pub/Sub message id once stored; PublishError otherwise."""
        ...


def topic_path(topic: str, project: str) -> str:
    return topic if topic.startswith("projects/") else f"projects/{project}/topics/{topic}"


def ordering_key(sending_facility: bytes) -> str:
    """MSH-4 as text (bytes that are not UTF-8 replaced), cut to Pub/Sub's limit; '' when absent."""
    text = sending_facility.decode("utf-8", "replace").strip()
    return text.encode("utf-8")[:_MAX_KEY].decode("utf-8", "ignore")


ATTRIBUTES = {"content-type": "application/hl7-v2", "origin": "mllp"}


class PubSubPublisher:
    def __init__(self, topic: str) -> None:
        from shared.events.publishing.pubsub_sink import publisher_client  # noqa: PLC0415

        self.topic = topic
        self.client = publisher_client()

    async def publish(self, data: bytes, *, ordering_key: str, timeout: float) -> str:
        try:
            future = self.client.publish(self.topic, data, ordering_key=ordering_key, timeout=timeout, **ATTRIBUTES)
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except (TimeoutError, asyncio.TimeoutError):
            self._resume(ordering_key)
            raise PublishError("timeout") from None
        except Exception as exc:
            self._resume(ordering_key)
            raise PublishError(f"pubsub_{type(exc).__name__}") from None

    def _resume(self, key: str) -> None:
        # After a failure the client pauses the key; the sender's resend must be able to go through.
        if key:
            self.client.resume_publish(self.topic, key)
