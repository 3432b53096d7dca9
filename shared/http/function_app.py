"""What the Flask app functions-framework builds around each function answers by itself.

functions-framework answers what its routing or CloudEvent parsing refuses with Flask's HTML pages
(405 for a GET on a CloudEvent function, 404 for ``/favicon.ico`` on the api, 400 or 415 for an
event it cannot read, whose page quotes the request's headers and body) and a function that raises
with the exception's text (its ``crash_handler``). ``install``, called by every
``functions/*/main.py`` while functions-framework executes it, turns each of those into a
problem+json that quotes nothing of the request:

* a werkzeug HTTP error keeps its status; 405 lists the allowed methods in ``Allow``;
* a CloudEvent the SDK cannot read (``cloudevents.exceptions``, e.g. a binary-mode JSON body
  nested too deep) is a 400: no retry can make it readable;
* a request body whose framing is broken (read by a hook or by functions-framework) is a 400;
* anything else a function lets escape is a generic 500 (logged without its text).

With ``probes`` (the CloudEvent functions) it also serves ``GET /healthz`` (the process answers)
and ``GET /readyz`` (the database answers), as the api does. What gunicorn answers before Flask
sees a request (a malformed request line or header) is ``shared.serve``'s.
"""

from __future__ import annotations

from cloudevents.exceptions import GenericException
from flask import Flask, Response, has_request_context, request
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.exceptions import MethodNotAllowed as WzMethodNotAllowed

from shared.db import check_ready
from shared.errors import (
    BadRequest,
    DomainError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
)
from shared.http import inputs
from shared.http.problems import from_domain_error, internal_error, problem_body, problem_response
from shared.http.routing import error_renderer_for
from shared.log import get_logger

log = get_logger("patient_mgt.http.function")

# What each status says instead of the framework's description (which may quote the request).
_ERRORS: dict[int, DomainError] = {
    400: BadRequest("The request could not be read as a CloudEvent or Pub/Sub push body"),
    404: NotFound("No such route"),
    413: PayloadTooLarge("The request body is too large"),
    415: UnsupportedMediaType("The request's media type is not one this function reads"),
}


def install(app: Flask, *, probes: bool) -> None:
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(GenericException, unreadable_event)
    # Replaces functions-framework's crash_handler, which answers the exception's text.
    app.register_error_handler(InternalServerError, crash)
    if probes:
        app.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])
        app.add_url_rule("/readyz", "readyz", readyz, methods=["GET"])


def _answer(error: DomainError | None) -> Response:
    """problem+json, or what the request path's prefix renders errors as (``/fhir``: OperationOutcome)."""
    renderer = error_renderer_for(request.path) if has_request_context() else None
    if renderer is not None:
        return renderer(error, "")
    return from_domain_error(error) if error is not None else internal_error(None)


def http_error(error: HTTPException) -> Response:
    # Never error.description: functions-framework's quotes the request's headers and data.
    if isinstance(error, WzMethodNotAllowed):
        return _answer(MethodNotAllowed(list(error.valid_methods or [])))
    if isinstance(error, InternalServerError) or error.code is None:
        return crash(error)
    if error.code in _ERRORS:
        return _answer(_ERRORS[error.code])
    return problem_response(problem_body(error.code, error.name.lower().replace(" ", "-"), error.name, error.name))


def unreadable_event(error: GenericException) -> Response:
    log.warning("unreadable CloudEvent refused", extra={"fields": {"error_type": type(error).__name__}})
    return from_domain_error(BadRequest("The request is not a CloudEvent this function can read"))


def crash(error: Exception) -> Response:
    original = getattr(error, "original_exception", None) or error
    if isinstance(original, inputs.BODY_READ_ERRORS):  # read by a hook or functions-framework itself
        return _answer(inputs.unreadable_body())
    log.error("unhandled error", exc_info=original)
    return _answer(None)


def healthz() -> Response:
    return Response('{"status": "ok"}', status=200, mimetype="application/json")


def readyz() -> Response:
    try:
        check_ready()
    except ServiceUnavailable as exc:
        return from_domain_error(exc)
    return Response('{"status": "ready"}', status=200, mimetype="application/json")
