"""ADT merges — A40 (merge patient, identifier list), A39 (merge person), A34 (merge patient
information, patient ID only) and A36 (patient ID and account number): the patient named by the
MRG identifiers (MRG-1, else MRG-4, else MRG-2) is merged into the PID patient.

The merge itself is the registry's (``shared.services.merge.merge_patients``), exactly as the API's
merge route does it: both rows locked, identifiers, history, orders and results moved, the source
marked ``merged`` with ``merged_into``, versions and an audit entry written, ``patient.merged``
emitted. Both sides are found by identifier following ``merged_into`` to the survivor, so a merge
that was done already (by this message, a copy of it, another merge event or the API) is not an
error and leaves ``merge_already_applied``; an unknown source (the message may arrive before the
source ever reached us) leaves ``merge_source_unknown``; a merge the registry refuses quarantines
the message for an operator (``merge_refused:<slug>``). A34's and A36's account numbers are not
modelled. Each PATIENT group of an A39/A40 (PID + MRG) is one merge.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from shared.auth import SYSTEM_LIS
from shared.errors import DomainError
from shared.hl7.model import MergeData
from shared.lis.errors import Quarantine
from shared.lis.patients import find_patient, identifier_keys
from shared.lis.values import Warnings

if TYPE_CHECKING:
    from shared.db import UnitOfWork


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
    from shared.services.merge import merge_patients  # noqa: PLC0415 - the registry's merge (with the patient service and its schemas) loads with the first merge

    try:
        merge_patients(uow, SYSTEM_LIS, source_id, target_id)
    except DomainError as error:
        raise Quarantine(f"merge_refused:{error.slug}") from None
    return source_id
