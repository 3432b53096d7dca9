"""How LIS messages reach the lis_consumer function, as HTTP requests (headers, body).

* ``push`` — a raw Pub/Sub push body, as a push subscription POSTs it;
* ``eventarc_binary`` / ``eventarc_structured`` — the Eventarc ``messagePublished`` CloudEvent;
* ``lis_event`` — a CloudEvent sent by a LIS itself (``application/hl7-v2`` or ``application/json``).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

PUBSUB_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
TOPIC_SOURCE = "//pubsub.googleapis.com/projects/patient-mgt-local/topics/lis-messages"
SUBSCRIPTION = "projects/patient-mgt-local/subscriptions/lis-consumer"
PUBLISH_TIME = "2026-11-25T10:00:00.123456789Z"

Request = tuple[dict[str, str], bytes]


def new_id() -> str:
    return str(uuid.uuid4().int)[:16]


def pubsub_message(data: bytes | None, message_id: str, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"messageId": message_id, "publishTime": PUBLISH_TIME, **extra}
    if data is not None:
        message["data"] = base64.b64encode(data).decode("ascii")
    return message


def push(data: bytes | None, message_id: str | None = None, **extra: Any) -> Request:
    body = {"message": pubsub_message(data, message_id or new_id(), **extra), "subscription": SUBSCRIPTION}
    return {"Content-Type": "application/json"}, json.dumps(body).encode()


def eventarc_binary(data: bytes | None, message_id: str | None = None, **extra: Any) -> Request:
    message_id = message_id or new_id()
    headers = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-type": PUBSUB_TYPE,
        "ce-source": TOPIC_SOURCE,
        "ce-id": message_id,
        "ce-time": "2026-11-25T10:00:00.123Z",
    }
    body = {"message": pubsub_message(data, message_id, **extra), "subscription": SUBSCRIPTION}
    return headers, json.dumps(body).encode()


def eventarc_structured(data: bytes | None, message_id: str | None = None, **extra: Any) -> Request:
    message_id = message_id or new_id()
    event = {
        "specversion": "1.0", "type": PUBSUB_TYPE, "source": TOPIC_SOURCE, "id": message_id,
        "time": "2026-11-25T10:00:00.123Z", "datacontenttype": "application/json",
        "data": {"message": pubsub_message(data, message_id, **extra), "subscription": SUBSCRIPTION},
    }
    return {"Content-Type": "application/cloudevents+json"}, json.dumps(event).encode()


def lis_event(data: bytes, content_type: str = "application/hl7-v2", event_id: str | None = None,
              source: str = "/lis/test-lab") -> Request:
    headers = {
        "Content-Type": content_type,
        "ce-specversion": "1.0",
        "ce-type": "org.example.lis.message.v1",
        "ce-source": source,
        "ce-id": event_id or new_id(),
    }
    return headers, data


FORMS = {"push": push, "eventarc_binary": eventarc_binary}
