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
from shared.errors import BadRequest, NotFound, UnsupportedMediaType, ValidationFailed
from shared.fhir import includes, lab_view, patients_view
from shared.fhir.bundle import base_url, history, searchset
from shared.fhir.capability import capability_statement
from shared.fhir.encoding import FHIR_BODY_TYPES, FHIR_JSON, fhir_response
from shared.fhir.lab import to_diagnostic_report, to_service_request
from shared.fhir.outcome import render_error
from shared.fhir.params import (
    DiagnosticReportSearchParams,
    FormatQuery,
    MetadataQuery,
    ObservationSearchParams,
    PageQuery,
    PatientSearchParams,
    fhir_version_ok,
    ServiceRequestSearchParams,
    parse_query,
    split_escaped,
)
from shared.fhir.patient import to_fhir_patient
from shared.fhir.patient_input import FhirPatientIn, parse_fhir_patient, to_patient_create
from shared.fhir.schemas import (
    FhirBundle,
    FhirCapabilityStatement,
    FhirDiagnosticReport,
    FhirObservation,
    FhirPatient,
    FhirServiceRequest,
    PatientCreateParams,
)
from shared.fhir.systems import identifier_system_from_fhir
from shared.http.context import RequestContext, etag
from shared.http.routing import PREFIX_ERROR_RENDERERS, PUBLIC_DOCUMENT, route
from shared.schemas.patients import Patient as PatientResource

FHIR: dict[str, Any] = {"tag": "fhir", "error_renderer": render_error, "media_type": FHIR_JSON}
# FHIR answers a bad search parameter with 400 (not 422) and a format other than JSON with 406.
SEARCH_ERRORS: dict[int, None] = {400: None, 406: None}
# A path under /fhir that matches no route (GET /fhir/Encounter, DELETE /fhir/Patient/{id}) is a
# FHIR client's mistake too: OperationOutcome, not problem+json.
PREFIX_ERROR_RENDERERS["/fhir"] = render_error


def _id(raw: str, kind: str = "Patient") -> uuid.UUID:
    """FHIR ids are strings: one that is not ours is a 404 OperationOutcome, not an unmatched route."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"No {kind} with this id") from None


def _patient_id(raw: str) -> uuid.UUID:
    return _id(raw)


def _version_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 9:
        raise NotFound("No such version")
    return int(raw)


def _prefers_minimal(ctx: RequestContext) -> bool:
    return any(p.strip().replace(" ", "") == "return=minimal" for p in ctx.request.headers.get("Prefer", "").split(";"))


def _resource_response(ctx: RequestContext, resource: dict[str, Any], version: int, updated_at: Any,
                       status: int = 200, headers: dict[str, str] | None = None) -> Response:
    meta = {"ETag": etag(version), "Last-Modified": http_date(updated_at), **(headers or {})}
    if status in (200, 201) and ctx.request.method == "POST" and _prefers_minimal(ctx):
        # No body, so no Content-Type: one would describe a body that is not there.
        response = Response(status=status, headers=meta)
        del response.headers["Content-Type"]
        return response
    return fhir_response(resource, status, meta)


def _patient_response(ctx: RequestContext, p: PatientResource, status: int = 200,
                      headers: dict[str, str] | None = None) -> Response:
    return _resource_response(ctx, to_fhir_patient(p), p.version, p.updated_at, status, headers)


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
    return _search(ctx, "Patient", PatientSearchParams, patients_view.search_patients, _each(to_fhir_patient))


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


def _fhir_body(ctx: RequestContext) -> Any:
    """The JSON body of a FHIR media type; its ``fhirVersion`` (if any) R4 and its charset UTF-8 (else 415)."""
    params = ctx.request.mimetype_params
    charset = params.get("charset", "utf-8").lower()
    if not fhir_version_ok(params) or charset not in {"utf-8", "utf8"}:
        raise UnsupportedMediaType("Send Content-Type: application/fhir+json (fhirVersion=4.0, charset=utf-8)")
    return ctx.json_value(content_types=FHIR_BODY_TYPES)


@route("GET", "/fhir/Patient/<patient_id>/_history/<version_id>", scope="patients:read",
       summary="FHIR vread: one version of a Patient", query=FormatQuery, responses={200: FhirPatient, **SEARCH_ERRORS},
       audit_action="patient.versions.read", **FHIR)
def fhir_vread_patient(ctx: RequestContext, patient_id: str, version_id: str) -> Response:
    parse_query(ctx, FormatQuery)
    pid, version = _patient_id(patient_id), _version_id(version_id)
    with unit_of_work() as uow:
        resource = patients_view.patient_version(uow, ctx.principal, pid, version)
    return _patient_response(ctx, resource)


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
    body = parse_fhir_patient(_fhir_body(ctx))
    condition = _condition(ctx, body)
    data = to_patient_create(body)
    resource, created = patients_view.create_patient(ctx.principal, data, condition,
                                                     allow_duplicate=params.allow_duplicate)
    if not created:
        return _patient_response(ctx, resource)
    location = f"{base_url()}/Patient/{resource.id}/_history/{resource.version}"
    return _patient_response(ctx, resource, 201, {"Location": location})


def _each(to_fhir: Any) -> Any:
    """A per-row mapping as a page renderer (``render(uow, rows)``)."""
    return lambda _uow, rows: [to_fhir(r) for r in rows]


def _search(ctx: RequestContext, kind: str, model: Any, search: Any, render: Any) -> Response:
    """A searchset: the page, what ``_include``/``_revinclude`` add, ``_elements`` applied to the matches,
    and the parameters ignored under ``Prefer: handling=lenient`` said in an OperationOutcome entry."""
    params = parse_query(ctx, model)
    names = includes.elements(params)
    with unit_of_work() as uow:
        rows, next_cursor, total = search(uow, ctx.principal, params)
        added, notes = includes.included(uow, ctx.principal, kind, rows, params, getattr(params, "revinclude", None))
        resources = [includes.subset(r, names) for r in render(uow, rows)]
    if params.ignored():
        notes.append(f"Ignored (Prefer: handling=lenient): {', '.join(params.ignored())}")
    return fhir_response(searchset(ctx.request, kind, resources, total, next_cursor, added, notes))


@route("GET", "/fhir/ServiceRequest", scope="patients:read", summary="FHIR search of lab orders",
       query=ServiceRequestSearchParams, responses={200: FhirBundle, **SEARCH_ERRORS}, audit_action="order.read", **FHIR)
def fhir_search_service_requests(ctx: RequestContext) -> Response:
    return _search(ctx, "ServiceRequest", ServiceRequestSearchParams, lab_view.search_service_requests,
                   _each(to_service_request))


@route("GET", "/fhir/Observation", scope="patients:read", summary="FHIR search of lab results",
       query=ObservationSearchParams, responses={200: FhirBundle, **SEARCH_ERRORS}, audit_action="result.read", **FHIR)
def fhir_search_observations(ctx: RequestContext) -> Response:
    return _search(ctx, "Observation", ObservationSearchParams, lab_view.search_observations, lab_view.observations)


def _lab_read(ctx: RequestContext, raw_id: str, kind: str, read: Any, to_fhir: Any) -> Response:
    parse_query(ctx, FormatQuery)
    row_id = _id(raw_id, kind)
    with unit_of_work() as uow:
        row = read(uow, ctx.principal, row_id)
        [resource] = to_fhir(uow, [row])
    return _resource_response(ctx, resource, row.version, row.updated_at)


@route("GET", "/fhir/ServiceRequest/<order_id>", scope="patients:read", summary="FHIR read of a lab order",
       query=FormatQuery, responses={200: FhirServiceRequest, **SEARCH_ERRORS}, audit_action="order.read", **FHIR)
def fhir_read_service_request(ctx: RequestContext, order_id: str) -> Response:
    return _lab_read(ctx, order_id, "ServiceRequest", lab_view.read_order, _each(to_service_request))


@route("GET", "/fhir/Observation/<result_id>", scope="patients:read", summary="FHIR read of a lab result",
       query=FormatQuery, responses={200: FhirObservation, **SEARCH_ERRORS}, audit_action="result.read", **FHIR)
def fhir_read_observation(ctx: RequestContext, result_id: str) -> Response:
    return _lab_read(ctx, result_id, "Observation", lab_view.read_result, lab_view.observations)


def _report(order: Any) -> dict[str, Any]:
    return to_diagnostic_report(order, list(order.results))


@route("GET", "/fhir/DiagnosticReport/<report_id>", scope="patients:read",
       summary="FHIR read of a lab report (an order with its results)", query=FormatQuery,
       responses={200: FhirDiagnosticReport, **SEARCH_ERRORS}, audit_action="order.read", **FHIR)
def fhir_read_diagnostic_report(ctx: RequestContext, report_id: str) -> Response:
    return _lab_read(ctx, report_id, "DiagnosticReport", lab_view.read_report, _each(_report))


@route("GET", "/fhir/DiagnosticReport", scope="patients:read", summary="FHIR search of lab reports",
       query=DiagnosticReportSearchParams, responses={200: FhirBundle, **SEARCH_ERRORS}, audit_action="order.read", **FHIR)
def fhir_search_diagnostic_reports(ctx: RequestContext) -> Response:
    return _search(ctx, "DiagnosticReport", DiagnosticReportSearchParams, lab_view.search_diagnostic_reports,
                   _each(_report))
