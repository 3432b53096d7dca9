"""Patient (the registry's resource) → FHIR R4 Patient, as a plain dict.

Works from the API resource (``shared.schemas.patients.Patient``), so a current record and a
version snapshot from ``resource_versions`` map the same way. Not mapped (no FHIR R4 core element):
``timezone`` and the e-mail/SMS consent flags.
"""

from __future__ import annotations

from typing import Any

from shared.fhir.encoding import compact
from shared.fhir.systems import BCP47, identifier_system, identifier_type, is_mrn
from shared.schemas.patients import Patient as PatientResource


def instant(value: Any) -> str | None:
    """A timezone-aware datetime as a FHIR instant."""
    return value.isoformat() if value is not None else None


def _identifier(system: str, value: str, id_type: str | None) -> dict[str, Any]:
    return {
        "use": "usual" if is_mrn(system) else None,
        "type": identifier_type(id_type or ("MR" if is_mrn(system) else None)),
        "system": identifier_system(system),
        "value": value,
    }


def _telecom(p: PatientResource) -> list[dict[str, Any]]:
    out = []
    if p.phone:
        out.append({"system": "phone", "value": p.phone})
    if p.email:
        out.append({"system": "email", "value": p.email})
    return out


def _address(p: PatientResource) -> list[dict[str, Any]]:
    if p.address is None:
        return []
    a = p.address
    return [{"line": list(a.line), "city": a.city, "state": a.state, "postalCode": a.postal_code, "country": a.country}]


def _name(p: PatientResource) -> list[dict[str, Any]]:
    """The official name; none at all when no part is known (a LIS patient sent without a name),
    rather than a name holding only ``use``."""
    parts = {"family": p.name.family, "given": list(p.name.given), "prefix": list(p.name.prefix),
             "suffix": list(p.name.suffix)}
    if not any(compact(parts).values()):
        return []
    return [{"use": "official", **parts}]


def to_fhir_patient(p: PatientResource) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(p.id),
        "meta": {"versionId": str(p.version), "lastUpdated": instant(p.updated_at)},
        "identifier": [_identifier(i.system, i.value, i.type) for i in p.identifiers],
        "active": p.status == "active",
        "name": _name(p),
        "telecom": _telecom(p),
        "gender": p.sex,
        "birthDate": p.birth_date.isoformat() if p.birth_date else None,
        "address": _address(p),
        "communication": [{"language": {"coding": [{"system": BCP47, "code": p.preferred_language}]},
                           "preferred": True}] if p.preferred_language else [],
    }
    if p.status == "merged" and p.merged_into is not None:
        # This record must no longer be used: the surviving patient holds its data.
        resource["link"] = [{"other": {"reference": f"Patient/{p.merged_into}"}, "type": "replaced-by"}]
    return compact(resource)
