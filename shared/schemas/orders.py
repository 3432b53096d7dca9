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
    sub_id: str | None = Field(default=None, description="HL7 v2 OBX-4: tells apart same-coded observations of one "
                                                          "order (isolate 1, isolate 2…); see result_groups.")


class ResultGroup(BaseModel):
    """The results of one order that share an OBX-4 sub-id — a culture's isolate with what was
    found about it — and the child orders reporting on them (its susceptibility panel)."""

    sub_id: str
    result_ids: list[uuid.UUID] = Field(description="The group's results, in the order of `results`.")
    child_order_ids: list[uuid.UUID] = Field(description="Orders whose parent result (OBR-26) is one of these results.")


class OrderParent(BaseModel):
    order_id: uuid.UUID
    result_id: uuid.UUID | None = Field(description="The parent's result this order reports about (OBR-26), when found.")


class Order(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    placer_number: str | None
    placer_namespace: str | None = Field(default=None, description="Who assigned the placer number (ORC-2.2); "
                                                                    "patient-mgt for orders placed here.")
    filler_number: str | None
    filler_namespace: str | None = Field(default=None, description="Who assigned the filler number (ORC-3.2).")
    code: CodingOut
    status: str
    priority: str | None
    notes: str | None
    ordered_at: datetime | None
    sent_to_lis_at: datetime | None = Field(description="When the LIS acknowledged the order message (orders placed here).")
    lis_accepted_at: datetime | None = Field(description="When the LIS accepted the order (ORC-1 OK or a filler number).")
    results: list[Result]
    result_groups: list[ResultGroup] = Field(default_factory=list,
                                             description="The results grouped by OBX-4 sub-id (only results that have one).")
    parent: OrderParent | None = Field(default=None, description="The order this one reports about (OBR-29), e.g. the "
                                                                 "culture of a susceptibility panel.")
    version: int
    updated_at: datetime


class OrderQuery(QueryModel):
    """A page of a patient's orders (or of its observations)."""

    limit: int = Field(default=20, ge=1, le=100)
    cursor: text(200) | None = None  # type: ignore[valid-type]


class OrderPage(BaseModel):
    items: list[Order]
    next_cursor: str | None


class Observation(Result):
    """An observation of the patient rather than a result of an order (HL7 v2 ORU PATIENT_OBSERVATION:
    height, pregnancy status…)."""

    patient_id: uuid.UUID
    version: int
    updated_at: datetime


class ObservationPage(BaseModel):
    items: list[Observation]
    next_cursor: str | None
