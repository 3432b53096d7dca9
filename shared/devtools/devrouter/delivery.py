"""How the dev router delivers one event to one destination, as Knative's dispatcher does.

Binary-mode HTTP POST; 2xx is success. A retry follows 5xx, 404, 408, 409, 429 and connection
errors (Knative's SelectiveRetry); other statuses go straight to the dead-letter sink. Retries
wait ``delivery.backoff(n)`` (scaled by ``backoff_scale`` for quick local loops); once they are
exhausted the original event goes to ``deadLetterSink`` with ``knativeerrorcode``,
``knativeerrordata`` (base64 of the response body, cut at 1024 characters) and
``knativeerrordest``, using the same retry policy.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from shared.events.publishing import OutgoingEvent
from shared.events.publishing.envelope import to_http_binary
from shared.events.publishing.http_sink import post

ERROR_DATA_MAX = 1024
RETRYABLE = frozenset({404, 408, 409, 429})


@dataclass(frozen=True)
class Response:
    status: int  # -1: no response (connection error, timeout)
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status == -1 or self.status >= 500 or self.status in RETRYABLE


def send(url: str, event: OutgoingEvent, timeout: float) -> Response:
    headers, body = to_http_binary(event)
    try:
        return Response(*post(url, headers, body, timeout))
    except OSError as exc:
        return Response(-1, f"dispatch error: {type(exc).__name__}".encode())


def with_error_extensions(event: OutgoingEvent, destination: str, response: Response) -> OutgoingEvent:
    encoded = base64.b64encode(response.body).decode("ascii")[:ERROR_DATA_MAX]
    status = response.status if response.status != -1 else 500  # Knative reports dispatch errors as 500
    attributes = {**event.attributes, "knativeerrordest": destination, "knativeerrorcode": str(status)}
    if encoded:
        attributes["knativeerrordata"] = encoded
    return OutgoingEvent(attributes, event.data)


class NotACloudEvent(ValueError):
    pass


REQUIRED = ("specversion", "id", "source", "type")


def parse_http(headers: dict[str, str], body: bytes) -> OutgoingEvent:
    """A CloudEvent from an HTTP request, binary or structured (JSON) mode, attributes as sent."""
    import json  # noqa: PLC0415
    from urllib.parse import unquote  # noqa: PLC0415

    lower = {k.lower(): v for k, v in headers.items()}
    content_type = lower.get("content-type")
    if content_type and content_type.split(";")[0].strip().lower() == "application/cloudevents+json":
        try:
            doc = json.loads(body)
        except ValueError:
            raise NotACloudEvent("structured body is not JSON") from None
        if not isinstance(doc, dict):
            raise NotACloudEvent("structured body is not an object")
        attributes = {k: v if isinstance(v, str) else json.dumps(v) for k, v in doc.items() if k not in ("data", "data_base64")}
        if "data_base64" in doc:
            data: bytes | None = base64.b64decode(doc["data_base64"])
        elif "data" in doc:
            value = doc["data"]
            data = value.encode("utf-8") if isinstance(value, str) and not attributes.get("datacontenttype", "").endswith("json") \
                else json.dumps(value, separators=(",", ":")).encode("utf-8")
        else:
            data = None
    else:
        attributes = {k[3:]: unquote(v) for k, v in lower.items() if k.startswith("ce-")}
        if content_type:
            attributes["datacontenttype"] = content_type
        data = body if body else None
    missing = [name for name in REQUIRED if not attributes.get(name)]
    if missing:
        raise NotACloudEvent(f"missing {', '.join(missing)}")
    return OutgoingEvent(attributes, data)
