"""A message as google-cloud-pubsub hands it to a streaming-pull callback: the fields our subscribers
read, and the answer (ack / nack) they gave it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone


@dataclass
class PulledMessage:
    """What google-cloud-pubsub hands a subscriber callback: the fields the drain reads, and its answer."""

    data: bytes
    ordering_key: str
    message_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    attributes: dict[str, str] = field(default_factory=lambda: {"CloudPubSubDeadLetterSourceDeliveryCount": "10"})
    publish_time: datetime = datetime(2026, 12, 4, 10, 0, tzinfo=timezone.utc)
    answer: str | None = None

    def ack(self) -> None:
        self.answer = "ack"

    def nack(self) -> None:
        self.answer = "nack"
