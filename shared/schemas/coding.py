"""A coded concept ``{system, code, display}`` (LOINC, SNOMED CT, RxNorm, local codes)."""

from __future__ import annotations

from pydantic import BaseModel

from shared.schemas.common import StrictModel, text


class Coding(StrictModel):
    system: text(200)  # type: ignore[valid-type]
    code: text(100)  # type: ignore[valid-type]
    display: text(300) | None = None  # type: ignore[valid-type]


class CodingPatch(StrictModel):
    system: text(200) | None = None  # type: ignore[valid-type]
    code: text(100) | None = None  # type: ignore[valid-type]
    display: text(300) | None = None  # type: ignore[valid-type]


class CodingOut(BaseModel):
    system: str | None
    code: str | None
    display: str | None
