"""The one error map: domain errors → ``application/problem+json`` (RFC 9457)."""

from __future__ import annotations

import json
from typing import Any

from flask import Response

from shared.errors import DomainError, MethodNotAllowed, ServiceUnavailable

PROBLEM_BASE = "https://patient-mgt.example.org/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_body(status: int, slug: str, title: str, detail: str, **extensions: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    for key, value in extensions.items():
        if key not in body and value is not None:
            body[key] = value
    return body


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(body, default=str), status=body["status"], mimetype=PROBLEM_CONTENT_TYPE)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error_headers(error: DomainError) -> dict[str, str]:
    """The headers an error status carries, whatever the body format (problem+json, OperationOutcome)."""
    headers: dict[str, str] = {}
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = ", ".join(error.allowed)
    if isinstance(error, ServiceUnavailable):
        headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="patient-mgt"'
    return headers


def from_domain_error(error: DomainError, request_id: str | None = None) -> Response:
    body = problem_body(error.status, error.slug, error.title, error.detail, request_id=request_id, **error.extensions)
    return problem_response(body, error_headers(error))


def internal_error(request_id: str | None) -> Response:
    """A 500 says nothing of the exception: its text can carry patient data."""
    return problem_response(
        problem_body(500, "internal-error", "Internal server error",
                     "The server failed to handle the request. Quote the request id to support.", request_id=request_id)
    )
