"""Errors of the FHIR routes as OperationOutcome (``Route.error_renderer``).

The HTTP status is the domain error's; ``issue.code`` is the FHIR issue type for it;
``issue.details.coding`` names the same problem type as the rest of the API
(``https://patient-mgt.example.org/problems/<slug>``). Field errors become one issue each: body
fields carry a FHIRPath ``expression``, query parameters are named in ``diagnostics``. As for
problem+json, nothing in an OperationOutcome comes from an exception's text.
"""

from __future__ import annotations

from typing import Any

from flask import Response

from shared.errors import DomainError, DuplicateIdentifier, InvalidJson
from shared.fhir.encoding import fhir_response
from shared.http.problems import PROBLEM_BASE, error_headers

PROBLEM_SYSTEM = PROBLEM_BASE.rstrip("/")

ISSUE_TYPES = {
    400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported", 406: "not-supported",
    409: "conflict", 412: "conflict", 413: "too-costly", 415: "not-supported", 422: "invalid", 428: "required",
    503: "transient",
}


class NotAcceptable(DomainError):
    status, slug, title = 406, "not-acceptable", "Not acceptable"


class MultipleMatches(DomainError):
    status, slug, title = 412, "multiple-matches", "More than one resource matches"


def _issue_type(error: DomainError) -> str:
    if isinstance(error, DuplicateIdentifier):
        return "duplicate"
    if isinstance(error, InvalidJson):
        return "structure"
    if isinstance(error, MultipleMatches):
        return "multiple-matches"
    return ISSUE_TYPES.get(error.status, "processing")


def _field_issue(err: dict[str, Any]) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": "error", "code": "required" if err.get("code") == "missing" else "invalid"}
    if err.get("in") == "body":
        issue["diagnostics"] = err["message"]
        issue["expression"] = [err["field"]]
    else:
        issue["diagnostics"] = f"{err.get('in', 'query')} parameter {err['field']}: {err['message']}"
    return issue


def _ids(extensions: dict[str, Any]) -> str:
    """Extension members of a domain error are ids and codes (never patient data)."""
    parts = []
    for key, value in extensions.items():
        if key == "errors" or value is None or isinstance(value, (dict,)):
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value if not isinstance(v, dict))
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


def operation_outcome(error: DomainError) -> dict[str, Any]:
    details = {"coding": [{"system": PROBLEM_SYSTEM, "code": error.slug}], "text": error.title}
    extra = _ids(error.extensions)
    main = {"severity": "error", "code": _issue_type(error), "details": details,
            "diagnostics": f"{error.detail} ({extra})" if extra else error.detail}
    issues = [main] + [_field_issue(e) for e in error.extensions.get("errors") or [] if isinstance(e, dict)]
    return {"resourceType": "OperationOutcome", "issue": issues}


def internal_outcome(request_id: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{
        "severity": "fatal", "code": "exception",
        "details": {"coding": [{"system": PROBLEM_SYSTEM, "code": "internal-error"}], "text": "Internal server error"},
        "diagnostics": "The server failed to handle the request."
        + (f" Quote request id {request_id} to support." if request_id else ""),
    }]}


def render_error(error: DomainError | None, request_id: str) -> Response:
    """``Route.error_renderer`` of every FHIR route."""
    if error is None:
        return fhir_response(internal_outcome(request_id), 500)
    return fhir_response(operation_outcome(error), error.status, error_headers(error))
