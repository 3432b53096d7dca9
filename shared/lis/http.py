"""The lis_consumer's HTTP front, run before functions-framework's CloudEvent view.

functions-framework turns a raw Pub/Sub push body into a CloudEvent itself, but it drops
``orderingKey`` and ``subscription``, answers 400 when ``message.data`` or ``messageId`` is
missing (a message that can never succeed would then be redelivered until it expires, and
never stored), and its 400 body echoes the request (headers and data: patient data). So this
hook, registered on the function's Flask app by ``functions/lis_consumer/main.py``, answers:

* every POST without a valid push token when ``PUSH_AUDIENCE`` is set: 401 (503 when the signing
  keys cannot be fetched); nothing is stored;
* raw push bodies: read here (``shared.lis.envelope.from_push_body``) and ingested — a message
  without data is stored as quarantined and acknowledged;
* anything that is neither a CloudEvent nor a push body: 400 with a problem body that quotes
  nothing of the request;
* a body larger than ``LIS_MAX_BODY_BYTES``: 413 problem+json, nothing stored (Pub/Sub retries it
  until its dead-letter policy takes it; no 5xx);
* a binary-mode CloudEvent whose JSON body is nested past Python's recursion limit: the CloudEvents
  SDK would raise before our handler (a 500 on every redelivery), so it is ingested here from its
  headers and bytes and stored as quarantined (``invalid_json`` or ``invalid_pubsub_envelope``).

Well-formed CloudEvents (binary: the four ``ce-`` headers; structured:
``application/cloudevents+json``) pass through to the view, which calls
`shared.lis.consumer.handle_event`.
"""

from __future__ import annotations

import json
from typing import Any

import flask
from flask import Flask, Request, Response
from werkzeug.exceptions import RequestEntityTooLarge

from shared.consumer import retry_response
from shared.http.problems import problem_body, problem_response
from shared.lis import push_auth
from shared.lis.envelope import PUBSUB_EVENT_TYPE, Delivery, from_cloud_event, from_push_body, is_push_body
from shared.lis.ingest import PartOutcome, TransientFault, ingest
from shared.log import get_logger
from shared.settings import get_settings
from shared.telemetry import spans

log = get_logger("patient_mgt.lis.http")
_BINARY_HEADERS = ("ce-specversion", "ce-id", "ce-source", "ce-type")
_REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type")


def install(app: Flask) -> None:
    app.before_request(before_request)


def before_request() -> Response | None:
    request = flask.request
    if request.method != "POST":
        return None
    if push_auth.enabled():
        try:
            push_auth.verify(request.headers.get("Authorization"))
        except push_auth.PushAuthError as error:
            log.warning("push request refused", extra={"fields": {"reason": error.reason}})
            return _problem(401, "unauthorized", "Authentication required", "Send a valid Pub/Sub push token",
                            {"WWW-Authenticate": 'Bearer realm="lis-consumer"'})
        except push_auth.PushAuthUnavailable:
            log.error("push token keys unavailable")
            return retry_response("push_keys_unavailable")
    data = _body(request)
    if data is None:
        limit = get_settings().lis_max_body_bytes
        return _problem(413, "payload-too-large", "Request body too large", f"Body exceeds {limit} bytes")
    present = [h for h in _BINARY_HEADERS if h in request.headers]
    if present:
        if len(present) == len(_BINARY_HEADERS):
            return _binary_nested_too_deep(request, data)
        return _bad_request("A binary-mode CloudEvent needs ce-specversion, ce-id, ce-source and ce-type")
    mimetype = (request.mimetype or "").lower()
    body = _json(data)
    if mimetype == "application/cloudevents+json":
        if isinstance(body, dict) and all(isinstance(body.get(a), str) and body.get(a) for a in _REQUIRED_ATTRIBUTES):
            return None
        return _bad_request("A structured CloudEvent needs specversion, id, source and type")
    if is_push_body(body):
        return _push(body, request.path)
    return _bad_request("Send a CloudEvent or a Pub/Sub push body")


def _body(request: Request) -> bytes | None:
    """The request body (cached for the CloudEvent view), or None when it exceeds LIS_MAX_BODY_BYTES."""
    limit = get_settings().lis_max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return None
    # A chunked body (no Content-Length) is read up to one byte past the limit: Werkzeug stops at
    # max_content_length without an error, so a body of limit + 1 bytes is the sign it was longer.
    request.max_content_length = limit + 1
    try:
        data = request.get_data()
    except RequestEntityTooLarge:
        return None
    return None if len(data) > limit else data


def _binary_nested_too_deep(request: Request, data: bytes) -> Response | None:
    """Ingest a binary-mode CloudEvent the CloudEvents SDK cannot read (JSON nested past the
    recursion limit: its ``from_http`` raises DataUnmarshallerError); None for any other event."""
    mimetype = (request.mimetype or "").lower()
    if not (mimetype == "application/json" or mimetype.endswith("+json")) or not _nested_too_deep(data):
        return None
    attributes = {name.lower()[3:]: value for name, value in request.headers.items() if name.lower().startswith("ce-")}
    attributes["datacontenttype"] = request.content_type
    spans.begin_delivery(str(attributes.get("type")), event_id=str(attributes.get("id")))
    return _ingest(from_cloud_event(attributes, data))


def _nested_too_deep(data: bytes) -> bool:
    try:
        json.loads(data)
    except RecursionError:
        return True
    except ValueError:  # not JSON at all: the SDK passes such a body on as text, and so do we
        return False
    return False


def _push(body: dict[str, Any], path: str) -> Response:
    spans.begin_delivery(PUBSUB_EVENT_TYPE)  # the consumer span of this push delivery; logs carry its ids
    return _ingest(from_push_body(body, path))


def _ingest(delivery: Delivery) -> Response:
    try:
        outcomes = ingest(delivery)
    except TransientFault as fault:
        log.warning("lis delivery deferred for redelivery", extra={"fields": {"reason": fault.reason}})
        return retry_response(fault.reason)
    return acknowledgement(outcomes)


def acknowledgement(outcomes: list[PartOutcome]) -> Response:
    """2xx with each message's status (ids and codes only)."""
    body = {
        "status": "ok",
        "messages": [
            {"id": str(o.message_id) if o.message_id else None, "status": o.status, "reason": o.reason} for o in outcomes
        ],
    }
    return Response(json.dumps(body), status=200, mimetype="application/json")


def _json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _bad_request(detail: str) -> Response:
    return _problem(400, "bad-request", "Not a CloudEvent or Pub/Sub push request", detail)


def _problem(status: int, slug: str, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    return problem_response(problem_body(status, slug, title, detail), headers)
