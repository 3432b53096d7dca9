"""GET /patients: the search parameters and the page."""

from __future__ import annotations

from datetime import date
from pydantic import BaseModel, Field, field_validator

from shared.models.patients import MRN_SYSTEM, PATIENT_STATUSES, is_mrn_system
from shared.mrn import is_valid_mrn
from shared.normalize import tokens
from shared.schemas.common import QueryModel, text
from shared.schemas.patients import Email, Patient, Phone

STATUS_LIST = r"^(active|inactive|merged)(,(active|inactive|merged))*$"
Cursor = text(200)


MAX_WORDS = 6


def _has_words(value: str | None) -> str | None:
    if value is not None:
        words = tokens(value)
        if not words:
            raise ValueError("must contain at least one letter or digit")
        if len(set(words)) > MAX_WORDS:
            raise ValueError(f"use at most {MAX_WORDS} words")
    return value


class PatientSearchQuery(QueryModel):
    name: text(200) | None = Field(  # type: ignore[valid-type]
        default=None,
        description="Each word is a prefix of a word of the family or of any given name; case and accents are ignored.",
    )
    family: text(200) | None = Field(  # type: ignore[valid-type]
        default=None, description="Each word is a prefix of a word of the family name (case and accents ignored)."
    )
    given: text(200) | None = Field(  # type: ignore[valid-type]
        default=None, description="Each word is a prefix of a word of a given name (case and accents ignored)."
    )
    birth_date: date | None = Field(default=None, description="Exact birth date, YYYY-MM-DD.")
    identifier: text(401) | None = Field(  # type: ignore[valid-type]
        default=None, description="FHIR token: `system|value`, or `value` in any system."
    )
    mrn: str | None = Field(default=None, pattern=r"^\d{2,32}$", description="Medical record number (check digit verified).")
    phone: Phone | None = Field(default=None, description="Exact E.164 number.")
    email: Email | None = Field(default=None, description="Exact e-mail address (case-insensitive).")
    status: str | None = Field(
        default=None, pattern=STATUS_LIST,
        description="Comma-separated statuses. Default: active,inactive (merged records only when asked).",
    )
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Cursor | None = Field(default=None, description="`next_cursor` of the previous page.")  # type: ignore[valid-type]

    _words = field_validator("name", "family", "given")(_has_words)

    @field_validator("mrn")
    @classmethod
    def _check_digit(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_mrn(value):
            raise ValueError("is not a valid MRN (check digit mismatch)")
        return value

    @field_validator("identifier")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is None:
            return None
        system, sep, code = value.partition("|")
        if sep and (not system.strip() or not code.strip() or "|" in code):
            raise ValueError("use system|value, or value alone")
        return value

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.lower() if value else value

    def statuses(self) -> tuple[str, ...]:
        if self.status is None:
            return ("active", "inactive")
        chosen = set(self.status.split(","))
        return tuple(s for s in PATIENT_STATUSES if s in chosen)

    def identifier_parts(self) -> tuple[str | None, str] | None:
        if self.identifier is None:
            return None
        system, sep, code = self.identifier.partition("|")
        if not sep:
            return None, system.strip()
        # The MRN's system in another letter case is the MRN's system (no other identifier holds it).
        return (MRN_SYSTEM if is_mrn_system(system) else system.strip()), code.strip()

    def used(self) -> list[str]:
        """Names (never values) of the filters in use, for the audit row."""
        return sorted(k for k in ("name", "family", "given", "birth_date", "identifier", "mrn", "phone", "email", "status")
                      if getattr(self, k) is not None)


class PatientPage(BaseModel):
    items: list[Patient]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")

