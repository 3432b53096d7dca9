"""A FHIR R4 Patient in a create request → the registry's ``PatientCreate``.

What the registry stores is what is accepted: one name, at most one phone and one e-mail, one
address, one (preferred) language, identifiers with a system. ``id``, ``meta`` and ``text`` are
ignored (the server assigns id and version; the narrative is generated from data, not stored);
``use`` and ``rank`` hints are accepted and not stored. Any other element is refused with a 422
naming it, rather than silently dropped. Field errors name FHIR paths (``Patient.birthDate``).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import ValidationFailed
from shared.fhir.systems import BCP47, identifier_system_from_fhir, identifier_type_from_fhir
from shared.schemas.patients import PatientCreate


class _Element(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FhirCoding(_Element):
    system: str | None = None
    version: str | None = None
    code: str | None = None
    display: str | None = None
    userSelected: bool | None = None  # noqa: N815 — FHIR element names


class FhirCodeableConcept(_Element):
    coding: list[FhirCoding] = Field(default_factory=list, max_length=10)
    text: str | None = None


class FhirIdentifier(_Element):
    use: str | None = None
    type: FhirCodeableConcept | None = None
    system: str
    value: str


class FhirHumanName(_Element):
    use: str | None = None
    family: str
    given: list[str] = Field(default_factory=list)
    prefix: list[str] = Field(default_factory=list)
    suffix: list[str] = Field(default_factory=list)


class FhirContactPoint(_Element):
    system: Literal["phone", "email"]
    value: str
    use: str | None = None
    rank: int | None = Field(default=None, ge=1, le=2**31 - 1)  # FHIR positiveInt


class FhirAddress(_Element):
    use: str | None = None
    type: str | None = None
    line: list[str] = Field(default_factory=list)
    city: str | None = None
    state: str | None = None
    postalCode: str | None = None  # noqa: N815
    country: str | None = None


class FhirCommunication(_Element):
    language: FhirCodeableConcept
    preferred: bool | None = None


class FhirPatientIn(_Element):
    """The elements of a FHIR Patient this server stores (see the module docstring)."""

    resourceType: Literal["Patient"]  # noqa: N815
    id: str | None = Field(default=None, description="Ignored: the server assigns the id.")
    meta: dict[str, Any] | None = Field(default=None, description="Ignored: the server assigns the version.")
    text: dict[str, Any] | None = Field(default=None, description="Ignored: the narrative is not stored.")
    identifier: list[FhirIdentifier] = Field(default_factory=list, max_length=20)
    active: Literal[True] | None = Field(default=None, description="A patient is created active.")
    name: list[FhirHumanName] = Field(min_length=1, max_length=1)
    telecom: list[FhirContactPoint] = Field(default_factory=list, max_length=2)
    gender: Literal["male", "female", "other", "unknown"] | None = None
    birthDate: str  # noqa: N815
    address: list[FhirAddress] = Field(default_factory=list, max_length=1)
    communication: list[FhirCommunication] = Field(default_factory=list, max_length=1)


NOT_STORED = "this server does not store this element; leave it out"


def fhir_path(loc: tuple[Any, ...] | list[Any], root: str = "Patient") -> str:
    out = root
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _errors(exc: ValidationError, path: Any) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        message = NOT_STORED if err["type"] == "extra_forbidden" else err["msg"]
        errors.append({"in": "body", "field": path(tuple(err["loc"])), "message": message, "code": err["type"]})
    return errors


def parse_fhir_patient(body: Any) -> FhirPatientIn:
    """The parsed JSON body as the Patient subset, or 422 with FHIR paths."""
    try:
        return FhirPatientIn.model_validate(body)
    except ValidationError as exc:
        raise ValidationFailed(_errors(exc, fhir_path)) from None


def _language(comm: FhirCommunication) -> str | None:
    codings = comm.language.coding
    for coding in codings:
        if coding.system == BCP47 and coding.code:
            return coding.code
    return next((c.code for c in codings if c.code), None)


def to_patient_create(p: FhirPatientIn) -> PatientCreate:
    """Validate with the registry's own rules (E.164 phone, ISO country, BCP-47 language, no MRN
    from the client…); errors point at the FHIR element that carried the value."""
    name = p.name[0]
    doc: dict[str, Any] = {
        "name": {"family": name.family, "given": name.given, "prefix": name.prefix, "suffix": name.suffix},
        "birth_date": p.birthDate,
        "sex": p.gender or "unknown",
        "identifiers": [
            {"system": identifier_system_from_fhir(i.system), "value": i.value, "type": identifier_type_from_fhir(
                i.type.model_dump(exclude_none=True) if i.type else None)}
            for i in p.identifier
        ],
    }
    where: dict[str, str] = {"name": "Patient.name[0]", "birth_date": "Patient.birthDate", "sex": "Patient.gender",
                             "identifiers": "Patient.identifier", "address": "Patient.address[0]",
                             "preferred_language": "Patient.communication[0].language"}
    refused: list[dict[str, Any]] = []
    for n, contact in enumerate(p.telecom):
        key = contact.system
        if key in doc:
            refused.append({"in": "body", "field": f"Patient.telecom[{n}]", "code": "not_stored",
                            "message": f"this server stores one {key}; send one"})
        doc[key] = contact.value
        where[key] = f"Patient.telecom[{n}].value"
    if p.address:
        a = p.address[0]
        doc["address"] = {"line": a.line, "city": a.city, "state": a.state, "postal_code": a.postalCode,
                          "country": a.country}
    if p.communication:
        language = _language(p.communication[0])
        if language is None:
            refused.append({"in": "body", "field": "Patient.communication[0].language", "code": "missing",
                            "message": "send the language as a BCP-47 code (system urn:ietf:bcp:47)"})
        doc["preferred_language"] = language
    if refused:
        raise ValidationFailed(refused)
    try:
        return PatientCreate.model_validate_json(json.dumps(doc))
    except ValidationError as exc:
        raise ValidationFailed(_errors(exc, lambda loc: _registry_path(loc, where))) from None


_RENAMES = {"postal_code": "postalCode"}


def _registry_path(loc: tuple[Any, ...], where: dict[str, str]) -> str:
    head, rest = loc[0], loc[1:]
    base = where.get(str(head), "Patient")
    return fhir_path([_RENAMES.get(str(part), part) if not isinstance(part, int) else part for part in rest], base)
