"""What arrived, transport-neutral: a `Delivery` from a CloudEvent or from a raw Pub/Sub push body.

Three shapes reach the LIS consumer:

1. ``google.cloud.pubsub.topic.v1.messagePublished`` CloudEvents (Eventarc, binary or structured):
   ``data.message.data`` is base64; ``attributes``, ``orderingKey``, ``data.subscription`` optional.
2. Raw Pub/Sub push bodies ``{"message": {...}, "subscription": "..."}`` — read here directly
   (``shared.lis.http``), not through functions-framework's conversion, which drops
   ``orderingKey``/``subscription`` and answers 400 to a message without ``data``.
3. CloudEvents sent by a LIS itself: ``datacontenttype: application/hl7-v2`` (data = the ER7
   bytes) or ``application/json`` (data = the JSON LIS event, ``docs/lis-event.schema.json``).

Nothing here raises on content: an envelope that cannot carry a message (no data, bad base64)
becomes a `Delivery` with a ``problem`` code, which the ingest stores as quarantined. A publish
time (``publishTime``, else the CloudEvent ``time``) without a UTC form in years 1-9999
(`shared.instants`) is transport metadata, not lab content: it is dropped — the receipt time
stands in — and the delivery carries the warning ``out_of_range:publishTime`` or
``out_of_range:ce-time``; the message itself is stored and applied as usual.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.instants import is_storable

PUBSUB_EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
PUBSUB_SOURCE = "//pubsub.googleapis.com/"
_TOPIC_IN_PATH = re.compile(r"projects/[^/?]+/topics/[^/?]+")

HL7_CONTENT_TYPES = frozenset({
    "application/hl7-v2", "application/hl7-v2+er7", "x-application/hl7-v2+er7", "application/edi-hl7",
    "application/x-hl7", "text/hl7", "text/x-hl7",
})
_MAX_KEY = 300
# Quarantine reasons decided by the envelope alone (no message bytes to parse, now or after a fix).
ENVELOPE_PROBLEMS = frozenset({"no_data", "invalid_base64", "invalid_pubsub_message", "invalid_pubsub_envelope"})


@dataclass(frozen=True, slots=True)
class Delivery:
    transport: str  # "pubsub" | "cloudevent"
    ce_source: str
    ce_id: str
    ce_type: str | None
    pubsub_message_id: str | None
    publish_time: datetime | None
    ordering_key: str | None
    subscription: str | None
    attributes: dict[str, str] | None
    declared_format: str | None  # "hl7v2" | "json" | None (decided by sniffing the payload)
    payload: bytes
    problem: str | None = None  # envelope-level quarantine reason
    warnings: tuple[str, ...] = ()  # envelope-level warning codes (PHI-free)


def _text(value: Any, limit: int = _MAX_KEY) -> str | None:
    if value is None:
        return None
    text = _safe(str(value)).replace("\ufffd", "")
    return text[:limit] if text else None


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 as Pub/Sub writes it (``2021-02-05T04:06:14.109Z``, up to nanoseconds); None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    match = re.match(r"^(.*T\d{2}:\d{2}:\d{2})(\.\d+)?(.*)$", text)
    if match and match.group(2):  # Python reads at most microseconds
        text = match.group(1) + match.group(2)[:7] + match.group(3)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _publish_time(message_time: Any, ce_time: Any) -> tuple[datetime | None, tuple[str, ...]]:
    """The publish time (the message's, else the CloudEvent's) and the warning when it was dropped."""
    label, value = ("publishTime", message_time) if message_time else ("ce-time", ce_time)
    parsed = parse_time(value)
    if parsed is not None and not is_storable(parsed):
        return None, (f"out_of_range:{label}",)
    return parsed, ()


def _attributes(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict) or not value:
        return None
    # JSONB cannot hold NUL characters; nothing from outside may make the insert of the row fail.
    return {_safe(str(k))[:256]: _safe(str(v))[:1024] for k, v in list(value.items())[:100]}


def _safe(text: str) -> str:
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _decode_base64(data: Any) -> tuple[bytes, str | None]:
    if data is None or data == "":
        return b"", "no_data"
    if not isinstance(data, str):
        return json.dumps(data, default=str).encode("utf-8"), "invalid_base64"
    compact = "".join(data.split())
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4)), None
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True), None
    except (binascii.Error, ValueError):
        return data.encode("utf-8", "replace"), "invalid_base64"


def _fallback_id(*parts: Any) -> str:
    digest = hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode("utf-8")).hexdigest()
    return f"sha256:{digest}"


def from_pubsub_message(
    message: Any, *, ce_source: str, ce_id: str | None, ce_type: str | None, subscription: Any, fallback_time: Any = None
) -> Delivery:
    """A Pub/Sub message (the ``message`` object of a push body or of MessagePublishedData)."""
    if not isinstance(message, dict):
        published, warnings = _publish_time(None, fallback_time)
        return Delivery(
            transport="pubsub", ce_source=ce_source[:_MAX_KEY], ce_id=(ce_id or _fallback_id(message))[:_MAX_KEY],
            ce_type=ce_type, pubsub_message_id=None, publish_time=published, ordering_key=None,
            subscription=_text(subscription), attributes=None, declared_format=None,
            payload=json.dumps(message, default=str).encode("utf-8"), problem="invalid_pubsub_message", warnings=warnings,
        )
    message_id = _text(message.get("messageId") or message.get("message_id"))
    payload, problem = _decode_base64(message.get("data"))
    published, warnings = _publish_time(message.get("publishTime") or message.get("publish_time"), fallback_time)
    return Delivery(
        transport="pubsub",
        ce_source=ce_source[:_MAX_KEY],
        ce_id=(ce_id or message_id or _fallback_id(message, subscription))[:_MAX_KEY],
        ce_type=ce_type,
        pubsub_message_id=message_id,
        publish_time=published,
        ordering_key=_text(message.get("orderingKey") or message.get("ordering_key")),
        subscription=_text(subscription),
        attributes=_attributes(message.get("attributes")),
        declared_format=None,
        payload=payload,
        problem=problem,
        warnings=warnings,
    )


def is_push_body(body: Any) -> bool:
    """A raw Pub/Sub push body: a JSON object with a ``message`` object and no CloudEvent/legacy keys."""
    return (
        isinstance(body, dict)
        and isinstance(body.get("message"), dict)
        and "specversion" not in body
        and "context" not in body
    )


def from_push_body(body: dict[str, Any], path: str) -> Delivery:
    """A push body, keyed like functions-framework would key it (source from the URL's topic)."""
    topic = _TOPIC_IN_PATH.search(path or "")
    source = PUBSUB_SOURCE + ((_text(topic.group(0)) or "") if topic else "")  # the path may hold NUL
    return from_pubsub_message(
        body["message"], ce_source=source, ce_id=None, ce_type=PUBSUB_EVENT_TYPE, subscription=body.get("subscription")
    )


def _content_format(content_type: str | None) -> str | None:
    if not content_type:
        return None
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime in HL7_CONTENT_TYPES:
        return "hl7v2"
    if mime == "application/json" or mime.endswith("+json"):
        return "json"
    return None


def from_cloud_event(attributes: dict[str, Any], data: Any) -> Delivery:
    """A CloudEvent's attributes and data (as the CloudEvents SDK decoded them)."""
    ce_type = _text(attributes.get("type"), 200)
    ce_source = _text(attributes.get("source")) or "(none)"
    ce_id = _text(attributes.get("id")) or _fallback_id(attributes, data)
    if ce_type == PUBSUB_EVENT_TYPE:
        envelope = data
        if isinstance(envelope, (bytes, str)):
            try:
                envelope = json.loads(envelope)
            except (ValueError, RecursionError):  # RecursionError: nested past Python's limit
                envelope = None
        if not isinstance(envelope, dict) or "message" not in envelope:
            published, warnings = _publish_time(None, attributes.get("time"))
            return Delivery(
                transport="pubsub", ce_source=ce_source, ce_id=ce_id, ce_type=ce_type, pubsub_message_id=None,
                publish_time=published, ordering_key=None, subscription=None, attributes=None,
                declared_format=None, payload=_as_bytes(data), problem="invalid_pubsub_envelope", warnings=warnings,
            )
        return from_pubsub_message(
            envelope["message"], ce_source=ce_source, ce_id=ce_id, ce_type=ce_type,
            subscription=envelope.get("subscription"), fallback_time=attributes.get("time"),
        )
    declared = _content_format(attributes.get("datacontenttype"))
    payload = _as_bytes(data)
    if isinstance(data, (dict, list)):
        declared = "json"
    published, warnings = _publish_time(None, attributes.get("time"))
    return Delivery(
        transport="cloudevent", ce_source=ce_source, ce_id=ce_id, ce_type=ce_type, pubsub_message_id=None,
        publish_time=published, ordering_key=None, subscription=None, attributes=None,
        declared_format=declared, payload=payload, problem=None if payload else "no_data", warnings=warnings,
    )


def _as_bytes(data: Any) -> bytes:
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    return json.dumps(data, default=str, ensure_ascii=False).encode("utf-8", "surrogatepass")
