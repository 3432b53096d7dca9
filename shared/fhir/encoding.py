"""FHIR JSON out: ``application/fhir+json``, no empty elements, decimals with their precision.

FHIR forbids ``null``, ``[]`` and ``{}`` in its JSON, so resources are built with :func:`compact`.
A FHIR decimal keeps the precision it was sent with ("5.10" is not 5.1), which a float cannot, so
:func:`dumps` writes :class:`~decimal.Decimal` values as JSON numbers verbatim.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from flask import Response

FHIR_JSON = "application/fhir+json"
# What a FHIR client may send a resource as (the last is the DSTU2 name some clients still use).
FHIR_BODY_TYPES = (FHIR_JSON, "application/json", "application/json+fhir")


def compact(value: Any) -> Any:
    """``value`` without ``None``, empty strings, empty lists and empty objects, recursively."""
    if isinstance(value, dict):
        out = {k: compact(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if not _empty(v)}
    if isinstance(value, list):
        return [v for v in (compact(x) for x in value) if not _empty(v)]
    return value


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and len(value) == 0)


def dumps(value: Any) -> str:
    """JSON text; a ``Decimal`` is written as the number it holds, digits as given.

    The C encoder writes everything without a Decimal (Patients, orders, reports: most of an export)
    in one call; a value holding one is written member by member, each again by the C encoder unless it
    holds the Decimal, so only the path down to a Decimal is written in Python."""
    try:
        return json.dumps(value, separators=(",", ":"))
    except TypeError:
        return _dumps(value)


def _dumps(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("a FHIR decimal is finite")
        return str(value)
    return json.dumps(value)


def fhir_response(resource: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(dumps(resource), status=status, mimetype=FHIR_JSON)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response
