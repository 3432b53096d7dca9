"""Lab orders and results as the API speaks them (written by the LIS consumer; placed here)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from shared.schemas.coding import Coding, CodingOut
from shared.schemas.common import LongText, QueryModel, StrictModel, text

Priority = Literal["routine", "urgent", "asap", "stat"]


class OrderCreate(StrictModel):
    code: Coding = Field(description="The test ordered, e.g. LOINC 2345-7 Glucose.")
    priority: Priority = "routine"
    notes: LongText | None = None


class OrderChange(StrictModel):
    """What may change before the lab accepts an order: the fields given replace the order's
    (``notes: null`` clears the notes)."""

    code: Coding | None = None
    priority: Priority | None = None
    notes: LongText | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> OrderChange:
        if not self.model_fields_set:
            raise ValueError("give at least one of code, priority, notes")
        for name in ("code", "priority"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be removed, only replaced")
        return self


class Result(BaseModel):
    id: uuid.UUID
    code: CodingOut
    value: str | None
    value_type: str | None = Field(description="HL7 v2 OBX-2: NM, ST, TX, CE, SN…")
    units: str | None
    reference_range: str | None
    abnormal_flags: list[str]
    status: str | None = Field(description="HL7 v2 OBX-11: P preliminary, F final, C corrected, X cancelled…")
    observed_at: datetime | None
    notes: list[str]


class Order(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    placer_number: str | None
    filler_number: str | None
    code: CodingOut
    status: str
    priority: str | None
    notes: str | None
    ordered_at: datetime | None
    sent_to_lis_at: datetime | None = Field(description="When the LIS acknowledged the order message (orders placed here).")
    lis_accepted_at: datetime | None = Field(description="When the LIS accepted the order (ORC-1 OK or a filler number).")
    results: list[Result]
    version: int
    updated_at: datetime


class OrderQuery(QueryModel):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: text(200) | None = None  # type: ignore[valid-type]


class OrderPage(BaseModel):
    items: list[Order]
    next_cursor: str | None
