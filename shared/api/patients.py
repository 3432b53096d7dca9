"""Patient routes: register, search, change (merge patch + If-Match), deactivate (the read: ``patient_read``)."""

from __future__ import annotations

import uuid

from flask import Response

from shared.api.merge_patch_body import CONTENT_TYPES as MERGE_PATCH_TYPES
from shared.api.merge_patch_body import merge_patch_body
from shared.api.patient_read import document_response
from shared.db import unit_of_work
from shared.http.context import RequestContext, etag, json_response
from shared.http.routing import route
from shared.schemas.patients import PATIENT_READ_ONLY, Patient, PatientCreate, PatientCreateQuery, PatientPatch
from shared.schemas.search import PatientPage, PatientSearchQuery
from shared.services import patient_sql
from shared.services import patients as service
from shared.services.search import search_page
from shared.telemetry import registrations


def _patient_response(patient: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    resource = service.to_resource(patient)  # type: ignore[arg-type]
    return json_response(resource, status, {"ETag": etag(resource.version), **(headers or {})})


@route("POST", "/patients", scope="patients:write", summary="Register a patient", body=PatientCreate,
       query=PatientCreateQuery, responses={201: Patient, 409: None}, audit_action="patient.create",
       headers_out=("ETag",))
@registrations.counted
def create_patient(ctx: RequestContext) -> Response:
    q = ctx.query(PatientCreateQuery)
    data = ctx.json_body(PatientCreate)
    # The document as PostgreSQL wrote it, not decoded and encoded again (as a read answers it)
    created = patient_sql.register(ctx.principal, data, reject_duplicates=not q.allow_duplicate)
    return document_response(created.json, created.version, 201, {"Location": f"/patients/{created.id}"})


@route("GET", "/patients", scope="patients:read", summary="Search patients", query=PatientSearchQuery,
       responses={200: PatientPage}, audit_action="patient.search")
def search(ctx: RequestContext) -> Response:
    q = ctx.query(PatientSearchQuery)
    # PatientPage's document as PostgreSQL wrote its items, not decoded or validated again
    return Response(search_page(ctx.principal, q), mimetype="application/json")


@route("PATCH", "/patients/<uuid:patient_id>", scope="patients:write",
       summary="Change a patient (JSON merge patch, If-Match required)", body=PatientPatch,
       body_content_type=MERGE_PATCH_TYPES, headers_in=("If-Match",), responses={200: Patient, 409: None},
       audit_action="patient.update", headers_out=("ETag",))
def patch_patient(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    version = ctx.if_match_version()
    patch = merge_patch_body(ctx, PatientPatch, PATIENT_READ_ONLY)
    with unit_of_work() as uow:
        patient = service.update_patient(uow, ctx.principal, patient_id, patch, expected_version=version)
        response = _patient_response(patient)
    return response


@route("DELETE", "/patients/<uuid:patient_id>", scope="patients:write",
       summary="Deactivate a patient (records are never deleted; If-Match required)", headers_in=("If-Match",),
       responses={204: None, 409: None}, audit_action="patient.deactivate", headers_out=("ETag",))
def deactivate_patient(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    version = ctx.if_match_version()
    with unit_of_work() as uow:
        patient = service.deactivate_patient(uow, ctx.principal, patient_id, expected_version=version)
        tag = etag(patient.version)
    return Response(status=204, headers={"ETag": tag})
