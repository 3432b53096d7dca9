"""The FHIR R4 view (``/fhir/...``, application/fhir+json): thin adapters over shared.fhir.

Same API keys and scopes as the rest of the API; errors are OperationOutcome
(``Route.error_renderer``). See docs/fhir.md.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl

from flask import Response
from werkzeug.http import http_date

from shared.db import unit_of_work
from shared.errors import BadRequest, NotFound, ValidationFailed
from shared.fhir import lab_view, patients_view
from shared.fhir.bundle import base_url, history, searchset
from shared.fhir.capability import capability_statement
from shared.fhir.encoding import FHIR_BODY_TYPES, FHIR_JSON, fhir_response
from shared.fhir.lab import to_observation, to_service_request
from shared.fhir.outcome import render_error
from shared.fhir.params import (
    FormatQuery,
    MetadataQuery,
    ObservationSearchParams,
    PageQuery,
    PatientSearchParams,
    ServiceRequestSearchParams,
    parse_query,
    patient_reference,
    split_escaped,
)
from shared.fhir.patient import to_fhir_patient
from shared.fhir.patient_input import FhirPatientIn, parse_fhir_patient, to_patient_create
from shared.fhir.schemas import FhirBundle, FhirCapabilityStatement, FhirPatient, PatientCreateParams
from shared.fhir.systems import identifier_system_from_fhir
from shared.http.context import RequestContext, etag
from shared.http.routing import PUBLIC_DOCUMENT, route
from shared.schemas.patients import Patient as PatientResource

FHIR: dict[str, Any] = {"tag": "fhir", "error_renderer": render_error, "media_type": FHIR_JSON}
# FHIR answers a bad search parameter with 400 (not 422) and a format other than JSON with 406.
SEARCH_ERRORS: dict[int, None] = {400: None, 406: None}


def _patient_id(raw: str) -> uuid.UUID:
    """FHIR ids are strings: one that is not ours is a 404 OperationOutcome, not an unmatched route."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("No Patient with this id") from None


def _patient_response(ctx: RequestContext, p: PatientResource, status: int = 200,
                      headers: dict[str, str] | None = None) -> Response:
    meta = {"ETag": etag(p.version), "Last-Modified": http_date(p.updated_at), **(headers or {})}
    if status == 201 and "return=minimal" in ctx.request.headers.get("Prefer", ""):
        return Response(status=status, headers=meta)
    return fhir_response(to_fhir_patient(p), status, meta)


@route("GET", "/fhir/metadata", scope=None, summary="FHIR CapabilityStatement: what this FHIR view implements",
       query=MetadataQuery, responses={200: FhirCapabilityStatement, **SEARCH_ERRORS}, cache_control=PUBLIC_DOCUMENT, **FHIR)
def fhir_metadata(ctx: RequestContext) -> Response:
    """Public, like any FHIR server's: clients read it before authenticating. It holds no patient data."""
    parse_query(ctx, MetadataQuery)
    return fhir_response(capability_statement(base_url()))


@route("GET", "/fhir/Patient/<patient_id>", scope="patients:read", summary="FHIR read of a Patient",
       query=FormatQuery, responses={200: FhirPatient, **SEARCH_ERRORS}, audit_action="patient.read",
       headers_out=("ETag", "Last-Modified"), **FHIR)
def fhir_read_patient(ctx: RequestContext, patient_id: str) -> Response:
    parse_query(ctx, FormatQuery)
    pid = _patient_id(patient_id)
    with unit_of_work() as uow:
        resource = patients_view.read_patient(uow, ctx.principal, pid)
    return _patient_response(ctx, resource)


@route("GET", "/fhir/Patient", scope="patients:read", summary="FHIR search of Patients (searchset Bundle)",
       query=PatientSearchParams, responses={200: FhirBundle, **SEARCH_ERRORS}, audit_action="patient.search", **FHIR)
def fhir_search_patients(ctx: RequestContext) -> Response:
    params = parse_query(ctx, PatientSearchParams)
    with unit_of_work() as uow:
        rows, next_cursor, total = patients_view.search_patients(uow, ctx.principal, params)
    return fhir_response(searchset(ctx.request, "Patient", [to_fhir_patient(r) for r in rows], total, next_cursor))


@route("GET", "/fhir/Patient/<patient_id>/_history", scope="patients:read",
       summary="FHIR history of a Patient (every version, newest first)", query=PageQuery,
       responses={200: FhirBundle, **SEARCH_ERRORS}, audit_action="patient.versions.read", **FHIR)
def fhir_patient_history(ctx: RequestContext, patient_id: str) -> Response:
    params = parse_query(ctx, PageQuery)
    pid = _patient_id(patient_id)
    with unit_of_work() as uow:
        items, next_cursor, total = patients_view.patient_history(uow, ctx.principal, pid, params)
    versions = [(to_fhir_patient(p), changed_at.isoformat()) for p, changed_at in items]
    return fhir_response(history(ctx.request, f"Patient/{pid}/_history", versions, total, next_cursor))


def _condition(ctx: RequestContext, body: FhirPatientIn) -> tuple[str, str] | None:
    """``If-None-Exist: identifier=system|value``, naming one of the resource's identifiers (so the
    unique identifier constraint, not a look-up, decides concurrent creates)."""
    header = ctx.request.headers.get("If-None-Exist")
    if header is None:
        return None
    pairs = parse_qsl(header.strip().lstrip("?"), keep_blank_values=True)
    pieces = split_escaped(pairs[0][1], "|") if len(pairs) == 1 and pairs[0][0] == "identifier" else []
    if len(pieces) != 2 or not pieces[0].strip() or not pieces[1].strip():
        raise BadRequest("If-None-Exist must be identifier=system|value", errors=[
            {"in": "header", "field": "If-None-Exist", "message": "use identifier=system|value", "code": "invalid"}])
    system, value = pieces[0].strip(), pieces[1].strip()
    if not any(i.system == system and i.value == value for i in body.identifier):
        raise ValidationFailed([{"in": "body", "field": "Patient.identifier", "code": "missing",
                                 "message": "the If-None-Exist identifier must be one of the resource's identifiers"}])
    return identifier_system_from_fhir(system), value


@route("POST", "/fhir/Patient", scope="patients:write",
       summary="FHIR create of a Patient; conditional with If-None-Exist: identifier=system|value",
       body=FhirPatientIn, body_content_type=FHIR_BODY_TYPES, query=PatientCreateParams,
       responses={201: FhirPatient, 200: FhirPatient, 409: None, **SEARCH_ERRORS}, audit_action="patient.create",
       headers_out=("ETag", "Last-Modified"), **FHIR)
def fhir_create_patient(ctx: RequestContext) -> Response:
    """201 with the new patient; with If-None-Exist, 200 with the patient that already holds the
    identifier (exactly one patient however many identical requests race)."""
    params = parse_query(ctx, PatientCreateParams)
    body = parse_fhir_patient(ctx.json_value(content_types=FHIR_BODY_TYPES))
    condition = _condition(ctx, body)
    data = to_patient_create(body)
    resource, created = patients_view.create_patient(ctx.principal, data, condition,
                                                     allow_duplicate=params.allow_duplicate)
    if not created:
        return _patient_response(ctx, resource)
    return _patient_response(ctx, resource, 201, {"Location": f"{base_url()}/Patient/{resource.id}"})


@route("GET", "/fhir/ServiceRequest", scope="patients:read", summary="FHIR search of a patient's lab orders",
       query=ServiceRequestSearchParams, responses={200: FhirBundle, **SEARCH_ERRORS}, audit_action="order.read", **FHIR)
def fhir_search_service_requests(ctx: RequestContext) -> Response:
    params = parse_query(ctx, ServiceRequestSearchParams)
    pid = patient_reference(params.patient)
    with unit_of_work() as uow:
        rows, next_cursor, total = lab_view.search_service_requests(uow, ctx.principal, pid, params)
        resources = [to_service_request(r) for r in rows]
    return fhir_response(searchset(ctx.request, "ServiceRequest", resources, total, next_cursor))


@route("GET", "/fhir/Observation", scope="patients:read", summary="FHIR search of a patient's lab results",
       query=ObservationSearchParams, responses={200: FhirBundle, **SEARCH_ERRORS}, audit_action="result.read", **FHIR)
def fhir_search_observations(ctx: RequestContext) -> Response:
    params = parse_query(ctx, ObservationSearchParams)
    pid = patient_reference(params.patient)
    with unit_of_work() as uow:
        rows, next_cursor, total = lab_view.search_observations(uow, ctx.principal, pid, params)
        resources = [to_observation(r) for r in rows]
    return fhir_response(searchset(ctx.request, "Observation", resources, total, next_cursor))
