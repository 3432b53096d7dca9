"""Probable duplicates (and their review), merges, unmerges and versions of a patient."""

from __future__ import annotations

import uuid

from flask import Response

from shared import audit
from shared.db import unit_of_work
from shared.http.context import RequestContext, json_response
from shared.http.routing import route
from shared.models import DuplicateFlag
from shared.schemas.merge import (
    DuplicateCandidate,
    DuplicateFlagState,
    DuplicateList,
    DuplicateReview,
    DuplicateReviewOutcome,
    MergeOutcome,
    MergeRequest,
    MovedCounts,
    RestoredCounts,
    UnmergeOutcome,
)
from shared.schemas.versions import VersionPage, VersionQuery
from shared.services.duplicates import find_duplicates
from shared.services.duplicate_flags import flags_of
from shared.services.duplicate_review import review_pair
from shared.services.merge import MergeResult, merge_patients
from shared.services.patients import load_patient, to_resource
from shared.services.unmerge import unmerge_patient
from shared.services.versions import list_versions


def _flag_state(flag: DuplicateFlag | None) -> DuplicateFlagState | None:
    if flag is None:
        return None
    return DuplicateFlagState(status=flag.status, origin=flag.origin, flagged_at=flag.flagged_at,  # type: ignore[arg-type]
                              reviewed_at=flag.reviewed_at)


@route("GET", "/patients/<uuid:patient_id>/duplicates", scope="patients:read",
       summary="Probable duplicates of a patient (the search now, and the open flags raised by changes), with the reason "
               "for each; pairs reviewed as not duplicates are left out", responses={200: DuplicateList},
       audit_action="patient.duplicates")
def duplicates(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    with unit_of_work() as uow:
        found = find_duplicates(uow, load_patient(uow, patient_id))
        flags = flags_of(uow, patient_id)
        items = [DuplicateCandidate(patient_id=d.patient_id, reason=d.reason, flag=_flag_state(flags.get(d.patient_id)))  # type: ignore[arg-type]
                 for d in found if flags.get(d.patient_id) is None or flags[d.patient_id].status == "open"]
        listed = {d.patient_id for d in found}
        items += [DuplicateCandidate(patient_id=other, reason=f.reason, flag=_flag_state(f))  # type: ignore[arg-type]
                  for other, f in sorted(flags.items(), key=lambda kv: kv[1].flagged_at)
                  if f.status == "open" and other not in listed]
        audit.record(uow, ctx.principal, "patient.duplicates", [patient_id, *(i.patient_id for i in items)],
                     details={"returned": len(items)})
    return json_response(DuplicateList(items=items))


@route("POST", "/patients/<uuid:patient_id>/duplicates/<uuid:candidate_id>/review", scope="patients:write",
       summary="Review a probable duplicate: not_duplicate closes the flag for good; merge merges the pair into survivor_id",
       body=DuplicateReview, responses={200: DuplicateReviewOutcome, 404: None, 409: None},
       audit_action="patient.duplicates.review")
def review(ctx: RequestContext, patient_id: uuid.UUID, candidate_id: uuid.UUID) -> Response:
    body = ctx.json_body(DuplicateReview)
    with unit_of_work() as uow:
        status, result = review_pair(uow, ctx.principal, patient_id, candidate_id, body.decision, body.survivor_id)
        merge = None if result is None else _merge_outcome(result)
    return json_response(DuplicateReviewOutcome(patient_id=patient_id, candidate_id=candidate_id, status=status,  # type: ignore[arg-type]
                                                merge=merge))


def _merge_outcome(result: MergeResult) -> MergeOutcome:
    return MergeOutcome(source=to_resource(result.source), target=to_resource(result.target),
                        moved=MovedCounts(**result.moved), merged_at=result.merged_at)


@route("POST", "/patients/<uuid:patient_id>/merge", scope="patients:write",
       summary="Merge this patient (the source) into target_id; idempotent", body=MergeRequest,
       responses={200: MergeOutcome, 409: None}, audit_action="patient.merge")
def merge(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    body = ctx.json_body(MergeRequest)
    with unit_of_work() as uow:
        outcome = _merge_outcome(merge_patients(uow, ctx.principal, patient_id, body.target_id))
    return json_response(outcome)


@route("POST", "/patients/<uuid:patient_id>/unmerge", scope="patients:write",
       summary="Undo a merge made in error: this (merged) patient gets back its identifiers and demographics from its "
               "last version before the merge", responses={200: UnmergeOutcome, 409: None}, audit_action="patient.unmerge")
def unmerge(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    with unit_of_work() as uow:
        result = unmerge_patient(uow, ctx.principal, patient_id)
        outcome = UnmergeOutcome(source=to_resource(result.source), target=to_resource(result.target),
                                 restored=RestoredCounts(**result.restored))
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
