"""FHIR Bulk Data export routes (``$export``, its status URL and its files): thin adapters over
``shared.fhir.export``. See docs/fhir.md, "Bulk Data export"."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response
from werkzeug.http import http_date

from shared.db import unit_of_work
from shared.errors import NotFound
from shared.fhir import export
from shared.fhir.bundle import base_url, page_url
from shared.fhir.encoding import fhir_response
from shared.fhir.outcome import internal_outcome
from shared.fhir.params import ExportQuery, FormatQuery, parse_query
from shared.fhir.schemas import BulkDataManifest, FhirOperationOutcome
from shared.api.fhir_routes import FHIR, SEARCH_ERRORS
from shared.http.context import RequestContext
from shared.http.routing import route

RETRY_AFTER_SECONDS = "2"


def _uuid(raw: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"No {what} with this id") from None


def _kick_off(ctx: RequestContext, level: str, path: str) -> Response:
    q = parse_query(ctx, ExportQuery)
    export.check_prefer(ctx.request.headers.get("Prefer", ""))
    export.check_output_format(q.output_format)
    types = export.parse_types([q.type] if isinstance(q.type, str) else list(q.type or []))
    since = export.parse_since([q.since] if q.since is not None else [])
    with unit_of_work() as uow:
        export_id = export.kick_off(uow, ctx.principal, level, types, since, page_url(ctx.request, path))
    response = Response(status=202, headers={"Content-Location": f"{base_url()}/$export-status/{export_id}"})
    del response.headers["Content-Type"]
    return response


KICK_OFF: dict[str, Any] = {"query": ExportQuery, "responses": {202: None, **SEARCH_ERRORS}, "headers_in": ("Prefer",),
                            "headers_out": ("Content-Location",), "audit_action": "fhir.export.request", **FHIR}


@route("GET", "/fhir/$export", scope="patients:read",
       summary="FHIR Bulk Data export of every resource (async: 202 and a status URL in Content-Location)", **KICK_OFF)
def fhir_export_system(ctx: RequestContext) -> Response:
    return _kick_off(ctx, "system", "$export")


@route("GET", "/fhir/Patient/$export", scope="patients:read",
       summary="FHIR Bulk Data export of every patient's data (async: 202 and a status URL in Content-Location)",
       **KICK_OFF)
def fhir_export_patients(ctx: RequestContext) -> Response:
    return _kick_off(ctx, "patient", "Patient/$export")


@route("GET", "/fhir/$export-status/<export_id>", scope="patients:read",
       summary="FHIR Bulk Data export status: 202 with X-Progress while it runs, then the manifest",
       query=FormatQuery, responses={200: BulkDataManifest, 202: None, **SEARCH_ERRORS},
       headers_out=("X-Progress", "Expires"),
       audit_action="fhir.export.status", **FHIR)
def fhir_export_status(ctx: RequestContext, export_id: str) -> Response:
    parse_query(ctx, FormatQuery)
    eid = _uuid(export_id, "export")
    with unit_of_work() as uow:
        job, files = export.status(uow, ctx.principal, eid)
        body = export.manifest(job, files, base_url()) if job.status == "completed" else None
    if job.status == "failed":
        # The IG: an export that failed answers with an error status and an OperationOutcome.
        return fhir_response(internal_outcome(ctx.request_id), 500)
    if body is None:
        return Response(status=202, headers={"X-Progress": export.progress(job), "Retry-After": RETRY_AFTER_SECONDS})
    return Response(export.dumps_manifest(body), status=200, mimetype="application/json",
                    headers={"Expires": http_date(job.expires_at)})


@route("DELETE", "/fhir/$export-status/<export_id>", scope="patients:read",
       summary="Cancel a FHIR Bulk Data export and delete its files", query=FormatQuery,
       responses={202: FhirOperationOutcome, **SEARCH_ERRORS}, audit_action="fhir.export.cancel", **FHIR)
def fhir_export_cancel(ctx: RequestContext, export_id: str) -> Response:
    parse_query(ctx, FormatQuery)
    eid = _uuid(export_id, "export")
    with unit_of_work() as uow:
        export.cancel(uow, ctx.principal, eid)
    return fhir_response({"resourceType": "OperationOutcome", "issue": [
        {"severity": "information", "code": "informational", "diagnostics": "Export cancelled; its files are deleted."}]}, 202)


@route("GET", "/fhir/$export-file/<file_id>", scope="patients:read",
       summary="One NDJSON file of a completed FHIR Bulk Data export (the key that asked for it only)",
       responses={200: None, 404: None}, audit_action="fhir.export.download", **FHIR)
def fhir_export_file(ctx: RequestContext, file_id: str) -> Response:
    fid = _uuid(file_id, "export file")
    with unit_of_work() as uow:
        file, job = export.open_file(uow, ctx.principal, fid)
        file_uuid, expires = file.id, job.expires_at
    return Response(export.file_body(file_uuid), status=200, mimetype=export.NDJSON,
                    headers={"Expires": http_date(expires)})
