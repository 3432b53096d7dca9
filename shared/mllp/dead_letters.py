"""Order messages the LIS never accepted, made visible: from the outbound dead-letter topic's hold
subscription into `dead_letters`, where GET /events/dead-letters, the operator console and the
``patient_mgt.dead_letters.pending`` gauge of /metrics show them, and a re-drive sends them again.

The relay (`outbound.py`) nacks a message the LIS refused (AE/AR), never answered or could not be
reached for; after the subscription's ``max_delivery_attempts`` Pub/Sub moves it to
``<LIS_OUTBOUND_TOPIC>-dead-letter``. Production cannot push that topic to the jobs function's
``/dead-letter`` path (jobs is cluster-local), so the adapter, which runs in the cluster with the
database, pulls its subscription ``LIS_OUTBOUND_DEAD_LETTER_SUBSCRIPTION`` and stores each message as
`shared.events.dead_letters.record` stores a pushed one: a ``messagePublished`` event whose source
is the dead-letter topic (so a re-drive publishes the message back to ``LIS_OUTBOUND_TOPIC``, with
its ordering key), id the Pub/Sub message id, subject the ordering key (the patient id). The
message is acknowledged only after the row is committed (a second copy is a ``duplicate``); when
the database is unavailable it is nacked and pulled again. Logs carry ids and codes, never the
HL7 (it holds patient data).
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timezone
from typing import Any

from shared.log import get_logger

from .pull import PullSubscriber

log = get_logger(__name__)


def as_delivery(message: Any, topic: str, subscription: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The CloudEvent attributes and data functions-framework makes of a push of this pulled message."""
    from shared.events.dead_letters import PUBSUB_PUBLISHED  # noqa: PLC0415

    publish_time = getattr(message, "publish_time", None)
    when = publish_time.astimezone(timezone.utc) if isinstance(publish_time, datetime) else None
    key = getattr(message, "ordering_key", "") or ""
    body: dict[str, Any] = {"data": base64.b64encode(bytes(message.data)).decode("ascii"),
                            "attributes": dict(message.attributes or {}), "messageId": message.message_id}
    if when is not None:
        body["publishTime"] = when.isoformat().replace("+00:00", "Z")
    if key:
        body["orderingKey"] = key
    attributes = {"specversion": "1.0", "id": message.message_id, "source": f"//pubsub.googleapis.com/{topic}",
                  "type": PUBSUB_PUBLISHED, "datacontenttype": "application/json"}
    if when is not None:
        attributes["time"] = body["publishTime"]
    if _is_uuid(key):
        attributes["subject"] = key
    return attributes, {"message": body, "subscription": subscription}


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def store(message: Any, topic: str, subscription: str) -> tuple[uuid.UUID | None, str]:
    """One dead-lettered message into `dead_letters` (committed): (row id, stored | reopened | duplicate)."""
    from shared.db import unit_of_work  # noqa: PLC0415
    from shared.events.dead_letters import record  # noqa: PLC0415

    attributes, data = as_delivery(message, topic, subscription)
    with unit_of_work() as uow:
        return record(uow, attributes, data)


class DeadLetterDrain(PullSubscriber):
    """Pulls the outbound dead-letter subscription and stores what it holds (see the module docstring)."""

    max_messages = 10

    def __init__(self, subscription: str, topic: str) -> None:
        super().__init__(subscription)
        self.topic = topic

    def start(self) -> None:
        super().start()
        log.info("lis outbound dead-letter drain started")

    def handle(self, message: Any) -> None:
        fields: dict[str, Any] = {"message_id": message.message_id,
                                  "delivery_attempts": (message.attributes or {}).get("CloudPubSubDeadLetterSourceDeliveryCount")}
        try:
            dead_letter_id, outcome = store(message, self.topic, self.subscription)
        except Exception as exc:  # noqa: BLE001 — not stored: nacked, pulled again (never acked unstored)
            from shared.db import is_transient_db_error  # noqa: PLC0415

            level = log.warning if is_transient_db_error(exc) else log.error
            level("lis outbound dead letter not stored yet; pulled again", extra={"fields": {**fields, "error_type": type(exc).__name__}})
            message.nack()
            return
        level = log.info if outcome == "duplicate" else log.error  # an operator must look at every one
        level("lis outbound message dead-lettered", extra={"fields": {
            **fields, "outcome": outcome, "dead_letter_id": str(dead_letter_id) if dead_letter_id else None}})
        message.ack()
