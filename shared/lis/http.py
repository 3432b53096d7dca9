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
  nothing of the request.

Well-formed CloudEvents (binary: the four ``ce-`` headers; structured:
``application/cloudevents+json``) pass through to the view, which calls
`shared.lis.consumer.handle_event`.
"""

from __future__ import annotations

import json
from typing import Any

import flask
from flask import Flask, Response

from shared.consumer import retry_response
from shared.http.problems import problem_body, problem_response
from shared.lis import push_auth
from shared.lis.envelope import PUBSUB_EVENT_TYPE, from_push_body, is_push_body
from shared.lis.ingest import PartOutcome, TransientFault, ingest
from shared.log import get_logger
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
    present = [h for h in _BINARY_HEADERS if h in request.headers]
    if present:
        if len(present) == len(_BINARY_HEADERS):
            return None
        return _bad_request("A binary-mode CloudEvent needs ce-specversion, ce-id, ce-source and ce-type")
    mimetype = (request.mimetype or "").lower()
    body = _json(request.get_data())
    if mimetype == "application/cloudevents+json":
        if isinstance(body, dict) and all(isinstance(body.get(a), str) and body.get(a) for a in _REQUIRED_ATTRIBUTES):
            return None
        return _bad_request("A structured CloudEvent needs specversion, id, source and type")
    if is_push_body(body):
        return _push(body, request.path)
    return _bad_request("Send a CloudEvent or a Pub/Sub push body")


def _push(body: dict[str, Any], path: str) -> Response:
    spans.begin_delivery(PUBSUB_EVENT_TYPE)  # the consumer span of this push delivery; logs carry its ids
    try:
        outcomes = ingest(from_push_body(body, path))
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
