"""Review of a probable duplicate: the pair is not the same person (remembered: never flagged
again), or it is, and the review merges it (``services.merge``, which closes the flag as ``merged``)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.models import DuplicateFlag, Patient
from shared.services.duplicate_flags import close_pair, pair
from shared.services.merge import MergeResult, merge_patients


def review_pair(uow: UnitOfWork, principal: Principal, patient_id: uuid.UUID, candidate_id: uuid.UUID,
                decision: str, survivor_id: uuid.UUID | None) -> tuple[str, MergeResult | None]:
    """Close the pair's flag (flagged or not) as ``not_duplicate``, or merge it into ``survivor_id``.
    Returns the pair's status and the merge, if any."""
    if patient_id == candidate_id:
        raise ValidationFailed([{"in": "path", "field": "candidate_id", "message": "a patient is not its own duplicate",
                                 "code": "same_patient"}])
    found = set(uow.session.scalars(sa.select(Patient.id).where(Patient.id.in_([patient_id, candidate_id]))))
    if patient_id not in found:
        raise NotFound("No patient with this id")
    if candidate_id not in found:
        raise NotFound("No candidate patient with this id")
    low, high = pair(patient_id, candidate_id)
    current = uow.session.scalar(sa.select(DuplicateFlag.status).where(
        DuplicateFlag.patient_a == low, DuplicateFlag.patient_b == high).with_for_update())
    merge: MergeResult | None = None
    if decision == "not_duplicate":
        if current == "merged":
            raise Conflict("This pair was merged; unmerge it (POST /patients/{id}/unmerge) if that was an error")
        close_pair(uow, principal, patient_id, candidate_id, "not_duplicate")
        status = "not_duplicate"
    else:
        if survivor_id not in (patient_id, candidate_id):
            raise ValidationFailed([{"in": "body", "field": "survivor_id",
                                     "message": "the survivor is this patient or the candidate", "code": "not_in_pair"}])
        source_id = candidate_id if survivor_id == patient_id else patient_id
        merge = merge_patients(uow, principal, source_id, survivor_id)
        status = "merged"
    audit.record(uow, principal, "patient.duplicates.review", [patient_id, candidate_id],
                 details={"decision": decision, "previous": current})
    return status, merge
