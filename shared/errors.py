"""Domain errors: a small hierarchy, each carrying its HTTP status and problem type.

One place (``shared.http.problems``) turns them into ``application/problem+json``. Messages
(``detail``) are written by our code, never copied from an exception or from input: they must be
safe to return and to log (no patient data).
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions


class BadRequest(DomainError):
    status, slug, title = 400, "bad-request", "Bad request"


class InvalidJson(DomainError):
    status, slug, title = 400, "invalid-json", "Request body is not valid JSON"


class Unauthorized(DomainError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "Missing scope"


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(DomainError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"

    def __init__(self, allowed: list[str]) -> None:
        super().__init__(f"Allowed methods: {', '.join(sorted(allowed))}")
        self.allowed = sorted(allowed)


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflict"


class DuplicateIdentifier(Conflict):
    slug, title = "duplicate-identifier", "Identifier already belongs to a patient"


class ProbableDuplicate(Conflict):
    slug, title = "probable-duplicate", "Probable duplicate patient"


class PreconditionFailed(DomainError):
    status, slug, title = 412, "precondition-failed", "Version mismatch"


class PayloadTooLarge(DomainError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(DomainError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(DomainError):
    status, slug, title = 422, "validation-failed", "Request failed validation"

    def __init__(self, errors: list[dict[str, Any]], detail: str | None = None) -> None:
        super().__init__(detail or f"{len(errors)} field(s) failed validation", errors=errors)
        self.errors = errors


class PreconditionRequired(DomainError):
    status, slug, title = 428, "precondition-required", "If-Match header required"


class ServiceUnavailable(DomainError):
    status, slug, title = 503, "service-unavailable", "Service temporarily unavailable"

    def __init__(self, detail: str | None = None, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
