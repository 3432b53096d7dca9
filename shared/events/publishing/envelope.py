"""The CloudEvent of an outbox row, and its wire forms (HTTP binary mode, Pub/Sub binary mode).

The row id is the CloudEvent id, so a re-publish (sweeper, redrive) carries the same id and
deduping consumers apply it once. The W3C trace context stored on the row travels as the
CloudEvents distributed-tracing extension (``traceparent``/``tracestate``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from shared.events.publishing.types import OutgoingEvent

JSON = "application/json"
# Attributes we never copy from a received event into a re-published one (delivery metadata).
_DELIVERY_EXTENSIONS = ("knativeerrorcode", "knativeerrordata", "knativeerrordest", "knativearrivaltime", "knativebrokerttl")


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a Z suffix."""
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def from_outbox_row(row: Any) -> OutgoingEvent:
    attributes = {
        "specversion": "1.0",
        "id": str(row.id),
        "source": row.source,
        "type": row.type,
        "time": format_time(row.time),
        "datacontenttype": JSON,
    }
    if row.subject is not None:
        attributes["subject"] = row.subject
    if row.dataschema:
        attributes["dataschema"] = row.dataschema
    if row.traceparent:
        attributes["traceparent"] = row.traceparent
    if row.tracestate:
        attributes["tracestate"] = row.tracestate
    return OutgoingEvent(attributes, json.dumps(row.data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def from_stored(attributes: dict[str, Any], data: bytes | None) -> OutgoingEvent:
    """A stored event (a dead letter) as it was first sent, without delivery extensions."""
    clean = {k: str(v) for k, v in attributes.items() if k != "data" and k not in _DELIVERY_EXTENSIONS and v is not None}
    return OutgoingEvent(clean, data)


# -- HTTP binary content mode (CloudEvents HTTP binding 3.1) --------------------------------------

def _percent_encode(value: str) -> str:
    """Header values: space, '"', '%' and anything outside printable ASCII are percent-encoded."""
    out = []
    for ch in value:
        if ch in ' "%' or not ("\x21" <= ch <= "\x7e"):
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
        else:
            out.append(ch)
    return "".join(out)


def to_http_binary(event: OutgoingEvent) -> tuple[dict[str, str], bytes]:
    headers = {}
    for name, value in event.attributes.items():
        if name == "datacontenttype":
            headers["Content-Type"] = value
        else:
            headers[f"ce-{name}"] = _percent_encode(value)
    if "traceparent" in event.attributes:
        # Also the W3C header itself, so HTTP-level tracing (the broker's) continues the trace.
        headers["traceparent"] = event.attributes["traceparent"]
        if "tracestate" in event.attributes:
            headers["tracestate"] = event.attributes["tracestate"]
    return headers, event.data or b""


# -- Pub/Sub binary content mode (google-cloudevents docs/spec/pubsub.md 3.1) ----------------------

def to_pubsub_binary(event: OutgoingEvent) -> tuple[dict[str, str], bytes, str]:
    """(attributes, data, ordering key): ``ce-<name>`` attributes, datacontenttype as ``content-type``."""
    attributes = {}
    for name, value in event.attributes.items():
        if name == "datacontenttype":
            attributes["content-type"] = value
        else:
            attributes[f"ce-{name}"] = value
    return attributes, event.data or b"", event.subject or ""


def to_structured(event: OutgoingEvent) -> dict[str, Any]:
    """The event in the CloudEvents JSON format (what tests validate against the spec's schema)."""
    body: dict[str, Any] = dict(event.attributes)
    if event.data is not None:
        if event.attributes.get("datacontenttype", JSON).split(";")[0].strip().endswith("json"):
            body["data"] = json.loads(event.data)
        else:
            import base64  # noqa: PLC0415

            body["data_base64"] = base64.b64encode(event.data).decode("ascii")
    return body
