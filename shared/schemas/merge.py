"""Probable duplicates and merges as the API speaks them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from shared.schemas.common import StrictModel
from shared.schemas.patients import Patient

DuplicateReason = Literal["name_and_birth_date", "phone_and_birth_date", "email_and_birth_date"]


class DuplicateCandidate(BaseModel):
    patient_id: uuid.UUID
    reason: DuplicateReason = Field(
        description="Same birth date and: the same folded family and first given name, the same phone, or the same e-mail "
        "(the strongest when several apply)."
    )


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
