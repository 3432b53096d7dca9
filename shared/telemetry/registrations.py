"""Registration counters: attempted, succeeded, rejected by reason.

``counted`` wraps the ``POST /patients`` handler (below ``@route``, so the route table dispatches
to the wrapper). An attempt is a request that passed authentication and reached the handler;
it ends as succeeded (2xx) or rejected with one reason:

- ``validation`` — the body or query was refused (400 invalid JSON, 413, 415, 422);
- ``duplicate``  — probable duplicates exist (409 ``probable-duplicate``);
- ``conflict``   — an identifier belongs to another patient, or another 409;
- ``unavailable`` — the database could not be reached (503; the client may retry);
- ``error``      — anything else (a 5xx the server owes an explanation for).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from shared.db import is_transient_db_error
from shared.errors import (
    Conflict,
    DomainError,
    InvalidJson,
    PayloadTooLarge,
    ProbableDuplicate,
    ServiceUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from shared.telemetry import instruments

REASONS = ("validation", "duplicate", "conflict", "unavailable", "error")
_VALIDATION = (InvalidJson, PayloadTooLarge, UnsupportedMediaType, ValidationFailed)


def rejection_reason(error: BaseException) -> str:
    if isinstance(error, ProbableDuplicate):
        return "duplicate"
    if isinstance(error, Conflict):
        return "conflict"
    if isinstance(error, _VALIDATION) or (isinstance(error, DomainError) and error.status == 400):
        return "validation"
    if isinstance(error, ServiceUnavailable) or is_transient_db_error(error):
        return "unavailable"
    return "error"


def counted(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Count each call of a registration handler and how it ended."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        instruments.REGISTRATIONS_ATTEMPTED.add(1)
        try:
            response = handler(*args, **kwargs)
        except Exception as error:
            instruments.REGISTRATIONS_REJECTED.add(1, {"reason": rejection_reason(error)})
            raise
        if 200 <= getattr(response, "status_code", 0) < 300:
            instruments.REGISTRATIONS_SUCCEEDED.add(1)
        else:
            instruments.REGISTRATIONS_REJECTED.add(1, {"reason": "error"})
        return response

    return wrapper
