"""Answer requests that are not CloudEvents before functions-framework does.

functions-framework's own answer to such a request is a 400 whose HTML body quotes the request's
headers and data; a Knative Broker stores a failed delivery's response body as
``knativeerrordata``, so a body that quotes the request could carry it into a dead letter. This
guard answers the same 400 as a problem that quotes nothing. What it lets through is exactly what
functions-framework can turn into a CloudEvent: a binary-mode request (all four ``ce-`` headers),
a structured one with the four required attributes, or a raw Pub/Sub push body with
``message.data`` and ``message.messageId`` (which the jobs function receives from a dead-letter
topic). The LIS consumer has its own, fuller hook (``shared.lis.http``).
"""

from __future__ import annotations

import json
from typing import Any

import flask
from flask import Flask, Response

from shared.http.problems import problem_body, problem_response

BINARY_HEADERS = ("ce-specversion", "ce-id", "ce-source", "ce-type")
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type")


def install(app: Flask) -> None:
    app.before_request(_guard)


def _json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def convertible(headers: Any, mimetype: str, data: bytes) -> bool:
    if all(h in headers for h in BINARY_HEADERS):
        return True
    body = _json(data)
    if not isinstance(body, dict):
        return False
    if mimetype == "application/cloudevents+json" or "specversion" in body:
        return all(isinstance(body.get(a), str) and body.get(a) for a in REQUIRED_ATTRIBUTES)
    message = body.get("message")
    return "subscription" in body and isinstance(message, dict) and "data" in message and "messageId" in message


def _guard() -> Response | None:
    request = flask.request
    if request.method != "POST":
        return None
    if convertible(request.headers, (request.mimetype or "").lower(), request.get_data()):
        return None
    body = problem_body(400, "bad-request", "Not a CloudEvent",
                        "Send a binary or structured CloudEvent (or a Pub/Sub push body)")
    return problem_response(body)
