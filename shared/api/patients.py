"""Patient routes: thin adapters over shared.services.patients."""

from __future__ import annotations

import uuid

from flask import Response

from shared.db import unit_of_work
from shared.http.context import RequestContext, etag, json_response
from shared.http.routing import route
from shared.schemas.patients import Patient, PatientCreate
from shared.services import patients as service


@route("POST", "/patients", scope="patients:write", summary="Register a patient", body=PatientCreate,
       responses={201: Patient}, audit_action="patient.create")
def create_patient(ctx: RequestContext) -> Response:
    data = ctx.json_body(PatientCreate)
    with unit_of_work() as uow:
        patient = service.register_patient(uow, ctx.principal, data)
        resource = service.to_resource(patient)
    return json_response(resource, 201, {"Location": f"/patients/{resource.id}", "ETag": etag(resource.version)})


@route("GET", "/patients/<uuid:patient_id>", scope="patients:read", summary="Read a patient",
       responses={200: Patient}, audit_action="patient.read")
def read_patient(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    with unit_of_work() as uow:
        resource = service.to_resource(service.get_patient(uow, ctx.principal, patient_id))
    return json_response(resource, 200, {"ETag": etag(resource.version)})
