"""Probable duplicates, merges and versions of a patient."""

from __future__ import annotations

import uuid

from flask import Response

from shared import audit
from shared.db import unit_of_work
from shared.http.context import RequestContext, json_response
from shared.http.routing import route
from shared.schemas.merge import DuplicateCandidate, DuplicateList, MergeOutcome, MergeRequest, MovedCounts
from shared.schemas.versions import VersionPage, VersionQuery
from shared.services.duplicates import find_duplicates
from shared.services.merge import merge_patients
from shared.services.patients import load_patient, to_resource
from shared.services.versions import list_versions


@route("GET", "/patients/<uuid:patient_id>/duplicates", scope="patients:read",
       summary="Probable duplicates of a patient, with the reason for each", responses={200: DuplicateList},
       audit_action="patient.duplicates")
def duplicates(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    with unit_of_work() as uow:
        found = find_duplicates(uow, load_patient(uow, patient_id))
        audit.record(uow, ctx.principal, "patient.duplicates", [patient_id, *(d.patient_id for d in found)],
                     details={"returned": len(found)})
    return json_response(DuplicateList(items=[DuplicateCandidate(patient_id=d.patient_id, reason=d.reason) for d in found]))  # type: ignore[arg-type]


@route("POST", "/patients/<uuid:patient_id>/merge", scope="patients:write",
       summary="Merge this patient (the source) into target_id; idempotent", body=MergeRequest,
       responses={200: MergeOutcome, 409: None}, audit_action="patient.merge")
def merge(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    body = ctx.json_body(MergeRequest)
    with unit_of_work() as uow:
        result = merge_patients(uow, ctx.principal, patient_id, body.target_id)
        outcome = MergeOutcome(source=to_resource(result.source), target=to_resource(result.target),
                               moved=MovedCounts(**result.moved), merged_at=result.merged_at)
    return json_response(outcome)


@route("GET", "/patients/<uuid:patient_id>/versions", scope="patients:read",
       summary="Every version of the patient and of its history entries, newest first", query=VersionQuery,
       responses={200: VersionPage}, audit_action="patient.versions.read")
def versions(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    q = ctx.query(VersionQuery)
    with unit_of_work() as uow:
        load_patient(uow, patient_id)
        items, next_cursor = list_versions(uow, ctx.principal, patient_id, q)
    return json_response(VersionPage(items=items, next_cursor=next_cursor))
