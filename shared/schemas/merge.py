"""Probable duplicates and merges as the API speaks them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from shared.schemas.common import StrictModel
from shared.schemas.patients import Patient

DuplicateReason = Literal["name_and_birth_date", "phone_and_birth_date", "email_and_birth_date"]


class DuplicateFlagState(BaseModel):
    status: Literal["open", "not_duplicate", "merged"] = Field(
        description="open: waiting for review; not_duplicate / merged: reviewed (a reviewed pair is never flagged again).")
    origin: str = Field(description="How the flag was raised: api or lis (a change of the matching fields), review.")
    flagged_at: datetime
    reviewed_at: datetime | None


class DuplicateCandidate(BaseModel):
    patient_id: uuid.UUID
    reason: DuplicateReason = Field(
        description="Same birth date and: the same folded family and first given name, the same phone, or the same e-mail "
        "(the strongest when several apply)."
    )
    flag: DuplicateFlagState | None = Field(
        default=None, description="The pair's open flag, raised when a change of the matching fields found it; null when "
        "the pair was never flagged (found by this search only).")


class DuplicateList(BaseModel):
    items: list[DuplicateCandidate]


class MergeRequest(StrictModel):
    target_id: uuid.UUID = Field(description="The surviving patient; it receives identifiers, history, orders and results.")


class MovedCounts(BaseModel):
    identifiers: int
    history: int
    orders: int
    results: int


class MergeOutcome(BaseModel):
    source: Patient
    target: Patient
    moved: MovedCounts
    merged_at: datetime


class DuplicateReview(StrictModel):
    decision: Literal["not_duplicate", "merge"] = Field(
        description="not_duplicate: close the flag; the pair is never flagged again. merge: merge the pair, keeping survivor_id.")
    survivor_id: uuid.UUID | None = Field(
        default=None, description="With decision merge: the patient that survives (this patient or the candidate).")

    @model_validator(mode="after")
    def _survivor_with_merge(self) -> DuplicateReview:
        if (self.decision == "merge") != (self.survivor_id is not None):
            raise ValueError("survivor_id is required with decision merge, and only then")
        return self


class DuplicateReviewOutcome(BaseModel):
    patient_id: uuid.UUID
    candidate_id: uuid.UUID
    status: Literal["not_duplicate", "merged"]
    merge: MergeOutcome | None = Field(description="The merge, when the review led to one.")


class RestoredCounts(BaseModel):
    identifiers: int = Field(description="Identifiers the patient holds again.")
    identifiers_kept: int = Field(description="Identifiers from before the merge that another patient holds now (left there).")
    records: int = Field(description="Records merged into this patient before its own merge, pointing at it again.")


class UnmergeOutcome(BaseModel):
    source: Patient = Field(description="The former source, restored from its last version before the merge.")
    target: Patient
    restored: RestoredCounts
