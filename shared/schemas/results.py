"""A patient's lab results as a clinician reads them: a list across orders, and one analyte's trend."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, model_validator

from shared.schemas.coding import CodingOut
from shared.schemas.common import QueryModel, text

# HL7 v2 table 0085 (OBX-11, observation result status).
RESULT_STATUSES = frozenset("CDFINOPRSUWX")


def _statuses(value: str) -> list[str]:
    codes = [c.strip().upper() for c in value.split(",") if c.strip()]
    unknown = sorted(set(codes) - RESULT_STATUSES)
    if not codes or unknown:
        raise ValueError(f"a comma-separated list of HL7 OBX-11 codes ({', '.join(sorted(RESULT_STATUSES))})")
    return codes


StatusList = Annotated[text(40), AfterValidator(_statuses)]  # type: ignore[valid-type]


class _Range(QueryModel):
    from_: date | None = Field(default=None, alias="from", description="Observed on or after this day (UTC).")
    to: date | None = Field(default=None, description="Observed on or before this day (UTC).")

    @model_validator(mode="after")
    def _ordered(self) -> _Range:
        if self.from_ and self.to and self.from_ > self.to:
            raise ValueError("from must not be after to")
        return self


class ResultQuery(_Range):
    code: text(100) | None = Field(default=None, description="OBX-3 code, e.g. 2345-7")  # type: ignore[valid-type]
    system: text(200) | None = Field(default=None, description="OBX-3 coding system, e.g. LN")  # type: ignore[valid-type]
    status: StatusList | None = Field(default=None, description="OBX-11 codes, comma-separated, e.g. F,C")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: text(200) | None = None  # type: ignore[valid-type]


class TrendQuery(_Range):
    system: text(200) | None = Field(default=None, description="OBX-3 coding system, e.g. LN")  # type: ignore[valid-type]
    limit: int = Field(default=100, ge=1, le=500)
    cursor: text(200) | None = None  # type: ignore[valid-type]


class ResultItem(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID | None = Field(description="The order it answers; null for a result the LIS sent without one.")
    code: CodingOut
    value: str | None
    value_type: str | None = Field(description="HL7 v2 OBX-2: NM, ST, TX, CE, SN…")
    units: str | None
    reference_range: str | None
    abnormal_flags: list[str] = Field(description="OBX-8, e.g. H, L, HH, LL, A, AA")
    status: str | None = Field(description="OBX-11: P preliminary, F final, C corrected, X cancelled…")
    observed_at: datetime | None = Field(description="OBX-14, when the sample was taken (null when the LIS did not say)")
    notes: list[str]
    versions: int = Field(description="How many versions the LIS sent; above 1 the trend lists the earlier ones.")
    updated_at: datetime


class ResultPage(BaseModel):
    items: list[ResultItem]
    next_cursor: str | None


class ResultVersion(BaseModel):
    """An earlier version of a result (a preliminary value, or the value a correction replaced)."""

    value: str | None
    units: str | None
    reference_range: str | None
    abnormal_flags: list[str]
    status: str | None
    observed_at: datetime | None
    reported_at: datetime | None = Field(description="When the LIS sent this version (MSH-7)")


class TrendPoint(BaseModel):
    result_id: uuid.UUID
    order_id: uuid.UUID | None
    observed_at: datetime | None
    value: str | None
    numeric_value: float | None = Field(description="The value as a number for an NM result, else null")
    units: str | None
    reference_range: str | None
    abnormal_flags: list[str]
    status: str | None
    previous_versions: list[ResultVersion] = Field(description="Oldest first; empty unless the value was revised")


class Trend(BaseModel):
    patient_id: uuid.UUID
    code: CodingOut = Field(description="The analyte (as the newest point on this page names it)")
    points: list[TrendPoint] = Field(description="In observation-time order, oldest first")
    next_cursor: str | None
