"""The patient resource as the API speaks it (field names are the contract)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, EmailStr, Field, StringConstraints, field_validator
from pydantic.json_schema import WithJsonSchema

from shared.models.patients import is_mrn_system
from shared.schemas.common import Name, QueryModel, ShortText, StrictModel, text

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


# The documented schema carries the pattern; the validator gives the readable message.
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=16), AfterValidator(_phone),
    WithJsonSchema({"type": "string", "pattern": E164.pattern, "maxLength": 16, "examples": ["+14155550123"]}),
]
Language = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=35), AfterValidator(_language),
    WithJsonSchema({"type": "string", "pattern": BCP47.pattern, "maxLength": 35, "examples": ["en", "es-MX"]}),
]
TimeZone = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=64), AfterValidator(_zone),
    WithJsonSchema({"type": "string", "maxLength": 64, "description": "IANA time zone", "examples": ["Europe/Madrid"]}),
]
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
            if is_mrn_system(ident.system):
                raise ValueError("the MRN is assigned by the server (its system is reserved, in any letter case)")
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
    # Defaults: addresses written by the LIS feed may lack parts.
    line: list[str] = Field(default_factory=list)
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None


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
    preferred_language: str | None  # None: never given (a patient the LIS created)
    timezone: str
    communication: Communication
    version: int
    created_at: datetime
    updated_at: datetime


# --- writes after registration --------------------------------------------------------------------

PATIENT_READ_ONLY = {
    "id": "is assigned by the server",
    "mrn": "is assigned by the server",
    "version": "is managed by the server; send If-Match instead",
    "merged_into": "is set by POST /patients/{id}/merge",
    "created_at": "is managed by the server",
    "updated_at": "is managed by the server",
}


def read_only_errors(raw: object, read_only: dict[str, str]) -> list[dict[str, str]]:
    """Precise errors for server-managed fields in a patch (rather than "extra inputs")."""
    if not isinstance(raw, dict):
        return []
    return [
        {"in": "body", "field": key, "message": f"{key} {why} and cannot be changed", "code": "read_only"}
        for key, why in read_only.items()
        if key in raw
    ]


class PatientCreateQuery(QueryModel):
    allow_duplicate: bool = Field(
        default=False, description="Register even when probable duplicates exist (the 409 lists them otherwise)."
    )


class PatientState(PatientCreate):
    """The writable state of a patient: what a merge patch must leave valid."""

    status: Literal["active", "inactive"] = "active"
    # A patient the LIS created has no language (null); a patch about something else leaves it so,
    # and removing it (``null`` in the patch) falls back to the registration default, as before.
    preferred_language: Language | None = "en"


class HumanNamePatch(StrictModel):
    family: Name | None = None
    given: list[Name] | None = Field(default=None, max_length=10)
    prefix: list[ShortText] | None = Field(default=None, max_length=5)
    suffix: list[ShortText] | None = Field(default=None, max_length=5)


class AddressPatch(StrictModel):
    line: list[Name] | None = Field(default=None, max_length=5)
    city: ShortText | None = None
    state: ShortText | None = None
    postal_code: text(20) | None = None  # type: ignore[valid-type]
    country: Country | None = None


class CommunicationPatch(StrictModel):
    email: bool | None = None
    sms: bool | None = None


class PatientPatch(StrictModel):
    """A JSON merge patch (RFC 7396) of the patient: members present replace, ``null`` removes.

    ``identifiers`` replaces the whole list; MRN identifiers (system ``urn:patient-mgt:mrn``, in any
    letter case) are managed by the server: they may be echoed back, never added or removed. ``status`` may move
    between ``active`` and ``inactive``; ``merged`` is reached only through the merge endpoint.
    """

    name: HumanNamePatch | None = None
    birth_date: BirthDate | None = None
    sex: Sex | None = None
    identifiers: list[Identifier] | None = Field(default=None, max_length=40)
    phone: Phone | None = None
    email: Email | None = None
    address: AddressPatch | None = None
    preferred_language: Language | None = None
    timezone: TimeZone | None = None
    communication: CommunicationPatch | None = None
    status: Literal["active", "inactive"] | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _not_merged(cls, value: object) -> object:
        if value == "merged":
            raise ValueError("a patient becomes merged only through POST /patients/{id}/merge")
        return value
