"""GET /patients/{id}: the hottest route, in a module of its own so that its first request loads only
what it uses (``services.patient_sql`` on the driver pool; no SQLAlchemy, no models, no schemas)."""

from __future__ import annotations

import uuid

from flask import Response

from shared.http.context import RequestContext, etag
from shared.http.routing import route
from shared.services import patient_sql


def document_response(body: str, version: int, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A patient document built by PostgreSQL (``services.patient_sql``): its JSON text as the body, its
    version as the ETag."""
    response = Response(body, status=status, mimetype="application/json")
    response.headers["ETag"] = etag(version)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


@route("GET", "/patients/<uuid:patient_id>", scope="patients:read", summary="Read a patient",
       responses={200: "shared.schemas.patients:Patient"}, audit_action="patient.read", headers_out=("ETag",))
def read_patient(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    return document_response(*patient_sql.read_patient(ctx.principal, patient_id))
