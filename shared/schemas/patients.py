"""The patient resource as the API speaks it (field names are the contract)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, EmailStr, Field, StringConstraints, field_validator

from shared.models.patients import MRN_SYSTEM
from shared.schemas.common import Name, ShortText, StrictModel, text

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
BCP47 = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
EARLIEST_BIRTH_DATE = date(1890, 1, 1)


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    from zoneinfo import available_timezones  # noqa: PLC0415

    return frozenset(available_timezones())


def _phone(value: str) -> str:
    if not E164.match(value):
        raise ValueError("must be an E.164 number like +14155550123")
    return value


def _language(value: str) -> str:
    if not BCP47.match(value):
        raise ValueError("must be a BCP-47 language tag like en or es-MX")
    return value


def _zone(value: str) -> str:
    if value not in _zones():
        raise ValueError("must be an IANA time zone like Europe/Madrid")
    return value


Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=16), AfterValidator(_phone)]
Language = Annotated[str, StringConstraints(strip_whitespace=True, max_length=35), AfterValidator(_language)]
TimeZone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64), AfterValidator(_zone)]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Email = Annotated[EmailStr, StringConstraints(max_length=254)]


class HumanName(StrictModel):
    family: Name
    given: list[Name] = Field(default_factory=list, max_length=10)
    prefix: list[ShortText] = Field(default_factory=list, max_length=5)
    suffix: list[ShortText] = Field(default_factory=list, max_length=5)


class Identifier(StrictModel):
    system: text(200)  # type: ignore[valid-type]
    value: text(200)  # type: ignore[valid-type]
    type: text(64) | None = None  # type: ignore[valid-type]


class Address(StrictModel):
    line: list[Name] = Field(default_factory=list, max_length=5)
    city: ShortText
    state: ShortText
    postal_code: text(20)  # type: ignore[valid-type]
    country: Country


class Communication(StrictModel):
    email: bool = False
    sms: bool = False


def _birth_date(value: date) -> date:
    if value > date.today():
        raise ValueError("must not be in the future")
    if value < EARLIEST_BIRTH_DATE:
        raise ValueError(f"must not be before {EARLIEST_BIRTH_DATE.isoformat()}")
    return value


BirthDate = Annotated[date, AfterValidator(_birth_date)]
Sex = Literal["male", "female", "other", "unknown"]


class PatientCreate(StrictModel):
    name: HumanName
    birth_date: BirthDate
    sex: Sex = "unknown"
    identifiers: list[Identifier] = Field(default_factory=list, max_length=20)
    phone: Phone | None = None
    email: Email | None = None
    address: Address | None = None
    preferred_language: Language = "en"
    timezone: TimeZone = "UTC"
    communication: Communication = Field(default_factory=Communication)

    @field_validator("identifiers")
    @classmethod
    def _client_identifiers(cls, value: list[Identifier]) -> list[Identifier]:
        seen = set()
        for ident in value:
            if ident.system == MRN_SYSTEM:
                raise ValueError("the MRN is assigned by the server")
            key = (ident.system, ident.value)
            if key in seen:
                raise ValueError("the same identifier is listed twice")
            seen.add(key)
        return value


class HumanNameOut(BaseModel):
    family: str
    given: list[str]
    prefix: list[str]
    suffix: list[str]


class AddressOut(BaseModel):
    line: list[str]
    city: str | None
    state: str | None
    postal_code: str | None
    country: str | None


class IdentifierOut(BaseModel):
    system: str
    value: str
    type: str | None


class Patient(BaseModel):
    """The resource returned by every patient route."""

    id: uuid.UUID
    mrn: str
    status: Literal["active", "inactive", "merged"]
    merged_into: uuid.UUID | None
    name: HumanNameOut
    birth_date: date | None
    sex: Sex
    identifiers: list[IdentifierOut]
    phone: str | None
    email: str | None
    address: AddressOut | None
    preferred_language: str
    timezone: str
    communication: Communication
    version: int
    created_at: datetime
    updated_at: datetime
