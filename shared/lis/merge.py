"""ADT^A40: merge the patient named by MRG-1 (the prior identifiers) into the PID patient.

The merge itself is the registry's (``shared.services.merge.merge_patients``): it moves
identifiers, history and orders and marks the source ``merged``. Here: find the source by its
identifiers; an unknown source or one already merged into the target is not an error (the
message may arrive after the merge was done, or before the source ever reached us) and leaves a
warning; a merge the registry refuses quarantines the message for an operator.
"""

from __future__ import annotations

import uuid

from shared.auth import SYSTEM_LIS
from shared.db import UnitOfWork
from shared.errors import DomainError
from shared.hl7.model import MergeData
from shared.lis.errors import Quarantine
from shared.lis.patients import find_patient, identifier_keys
from shared.lis.values import Warnings
from shared.services.merge import merge_patients


def merge_prior(uow: UnitOfWork, target_id: uuid.UUID | None, merge: MergeData, warnings: Warnings) -> uuid.UUID | None:
    """Merge the MRG patient into `target_id`; returns the source patient id when a merge happened."""
    assert target_id is not None
    try:
        keys = identifier_keys(merge.prior_identifiers, warnings)
    except Quarantine:
        raise Quarantine("invalid_field:MRG-1") from None
    if not keys:
        raise Quarantine("missing_field:MRG-1")
    source_id, _held = find_patient(uow, keys)
    if source_id is None:
        warnings.add("merge_source_unknown")
        return None
    if source_id == target_id:
        warnings.add("merge_already_applied")
        return None
    try:
        merge_patients(uow, SYSTEM_LIS, source_id, target_id)
    except DomainError as error:
        raise Quarantine(f"merge_refused:{error.slug}") from None
    return source_id
