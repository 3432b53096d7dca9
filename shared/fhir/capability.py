"""GET /fhir/metadata: the CapabilityStatement — exactly what the routes in
``shared/api/fhir_routes.py`` implement, and nothing else (a test compares it with the route table).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata
from typing import Any

from shared.fhir.includes import INCLUDES, REVINCLUDES

FHIR_VERSION = "4.0.1"
STATEMENT_DATE = "2026-11-25"
SP = "http://hl7.org/fhir/SearchParameter/"
BULK = "http://hl7.org/fhir/uv/bulkdata/"
# The Bulk Data export operations (docs/fhir.md, "Bulk Data export"); their status URL and files
# (``$export-status``, ``$export-file``) are the IG's async pattern, named by the kick-off's answers.
SYSTEM_OPERATIONS = [{"name": "export", "definition": BULK + "OperationDefinition/export",
                      "documentation": "Every resource (`_type`, `_since`); `Prefer: respond-async` required; NDJSON."}]
PATIENT_OPERATIONS = [{"name": "export", "definition": BULK + "OperationDefinition/patient-export",
                       "documentation": "Every patient's data (`_type`, `_since`); `Prefer: respond-async` required."}]
PAGING = ("Results are Bundles of type searchset with `total` (`_total=none` leaves it out; `_summary=count` or "
          "`_count=0` answer it alone); `_count` sets the page size (default 20, at most 100) and the `next` link "
          "carries an opaque `_cursor`. A comma in a value means any of them; a repeated parameter means all of them. "
          "`_elements` returns the named top-level elements (tagged SUBSETTED). Unknown parameters and modifiers are "
          "refused (400), or ignored and listed in an OperationOutcome entry under `Prefer: handling=lenient`.")


def _param(name: str, kind: str, definition: str, documentation: str) -> dict[str, str]:
    return {"name": name, "definition": SP + definition, "type": kind, "documentation": documentation}


def _common(kind: str, sorts: str) -> list[dict[str, str]]:
    """``_id`` and ``_lastUpdated``, which every search here takes; ``sorts``: the ``_sort`` keys."""
    return [
        _param("_id", "token", "Resource-id", f"The {kind} id."),
        _param("_lastUpdated", "date", "Resource-lastUpdated", "Prefixes eq, ne, lt, le, gt, ge, sa, eb; a time "
               "without an offset is UTC. `_sort` keys: " + sorts + " (`-` for descending)."),
    ]


SUBJECT = [
    _param("patient", "reference", "clinical-patient", "<id>, Patient/<id> or an absolute reference."),
    _param("subject", "reference", "clinical-patient", "Patient/<id> (only patients are subjects here)."),
]


def _lab_search(kind: str, code: str, date: str, category: str, status: str, sorts: str) -> list[dict[str, str]]:
    """The search parameters of the lab resources (Observation, DiagnosticReport): the same names and
    definitions, documented for each."""
    return [
        *SUBJECT,
        _param("code", "token", "clinical-code", code),
        _param("date", "date", "clinical-date", date),
        _param("category", "token", f"{kind}-category", category),
        _param("status", "token", f"{kind}-status", status),
        *_common(kind, sorts),
    ]


PATIENT: dict[str, Any] = {
    "type": "Patient",
    "profile": "http://hl7.org/fhir/StructureDefinition/Patient",
    "documentation": "The patient registry. The MRN is the identifier with system urn:patient-mgt:mrn (type v2-0203 MR). "
    "A merged patient is inactive and links `replaced-by` to the surviving patient. " + PAGING,
    "interaction": [
        {"code": "read", "documentation": "ETag and meta.versionId carry the version."},
        {"code": "vread", "documentation": "Every version the registry kept (history entries link to them)."},
        {"code": "search-type", "documentation": "Merged patients are not returned by searches (read them by id)."},
        {"code": "history-instance", "documentation": "Every version, newest first."},
        {"code": "create", "documentation": "Stores one name, one phone, one e-mail, one address, one preferred "
         "language and identifiers with a system; birthDate is required; other elements are refused (422). "
         "Probable duplicates (same birth date and name, phone or e-mail) are refused (409) unless "
         "?allow_duplicate=true."},
    ],
    "versioning": "versioned",
    "readHistory": True,
    "updateCreate": False,
    "conditionalCreate": True,
    "conditionalRead": "not-supported",
    "conditionalUpdate": False,
    "conditionalDelete": "not-supported",
    "operation": PATIENT_OPERATIONS,
    "searchParam": [
        _param("name", "string", "Patient-name", "Every word is a prefix of a word of the family or a given name; "
               "case and accents are ignored."),
        _param("family", "string", "individual-family", "Every word is a prefix of a word of the family name."),
        _param("given", "string", "individual-given", "Every word is a prefix of a word of a given name."),
        _param("birthdate", "date", "individual-birthdate", "YYYY, YYYY-MM or YYYY-MM-DD with prefix eq (default), "
               "lt, le, gt or ge; give it twice for a range."),
        _param("gender", "token", "individual-gender", "male | female | other | unknown."),
        _param("identifier", "token", "Patient-identifier", "system|value, value or system|; for conditional create "
               "(If-None-Exist: identifier=system|value) the identifier must be one of the resource's."),
        *_common("Patient", "family, _lastUpdated"),
    ],
}

SERVICE_REQUEST: dict[str, Any] = {
    "type": "ServiceRequest",
    "profile": "http://hl7.org/fhir/StructureDefinition/ServiceRequest",
    "documentation": "Lab orders, newest first. " + PAGING,
    "interaction": [{"code": "read", "documentation": "ETag and meta.versionId carry the version."},
                    {"code": "search-type"}],
    "searchParam": [*SUBJECT, *_common("ServiceRequest", "authored, _lastUpdated")],
}

OBSERVATION: dict[str, Any] = {
    "type": "Observation",
    "profile": "http://hl7.org/fhir/StructureDefinition/Observation",
    "documentation": "Lab results, newest first. Values are Quantity (UCUM where the unit is known), Ratio, "
    "Range or string; interpretation from HL7 v2 OBX-8; status from OBX-11. " + PAGING,
    "interaction": [{"code": "read", "documentation": "ETag and meta.versionId carry the version."},
                    {"code": "search-type"}],
    "searchParam": _lab_search("Observation", "system|code, code, system| or |code (no system).",
                               "The effective time (OBX-14), with a prefix; repeat for a range.",
                               "laboratory: every result here.", "The FHIR status (from OBX-11).", "date, _lastUpdated"),
}

DIAGNOSTIC_REPORT: dict[str, Any] = {
    "type": "DiagnosticReport",
    "profile": "http://hl7.org/fhir/StructureDefinition/DiagnosticReport",
    "documentation": "One report per lab order that has results: status from the order, `result` its Observations, "
    "`basedOn` the ServiceRequest (same id), `conclusion` the order's notes, `effectiveDateTime` the earliest "
    "effective time of its results. Newest first. " + PAGING,
    "interaction": [{"code": "read", "documentation": "ETag and meta.versionId carry the order's version."},
                    {"code": "search-type"}],
    "searchParam": _lab_search("DiagnosticReport", "The order's code: system|code, code, system| or |code.",
                               "The earliest effective time of the results, with a prefix.",
                               "LAB (HL7 v2 table 0074): every report here.", "The report's status (from the order's).",
                               "issued, _lastUpdated"),
}


def _version() -> str:
    try:
        return metadata.version("patient-mgt")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _with_includes(resource: dict[str, Any]) -> dict[str, Any]:
    """The ``_include``/``_revinclude`` values the searches accept (``shared.fhir.includes``)."""
    out = dict(resource)
    if INCLUDES[resource["type"]]:
        out["searchInclude"] = list(INCLUDES[resource["type"]])
    if REVINCLUDES.get(resource["type"]):
        out["searchRevInclude"] = list(REVINCLUDES[resource["type"]])
    return out


@lru_cache(maxsize=1)
def _statement() -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": STATEMENT_DATE,
        "publisher": "patient-mgt",
        "kind": "instance",
        "software": {"name": "patient-mgt", "version": _version()},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "instantiates": [BULK + "CapabilityStatement/bulk-data"],
        "rest": [{
            "mode": "server",
            "documentation": "A FHIR R4 view of the patient registry and its lab orders and results. See docs/fhir.md.",
            "security": {
                "cors": False,
                "description": "Authorization: Bearer <API key>. Reads and exports need scope patients:read, create "
                "needs patients:write. Every read and write is audited; an export's status and files answer only "
                "the key that asked for it.",
            },
            "resource": [_with_includes(r) for r in (PATIENT, SERVICE_REQUEST, OBSERVATION, DIAGNOSTIC_REPORT)],
            "operation": SYSTEM_OPERATIONS,
        }],
    }


def capability_statement(base: str) -> dict[str, Any]:
    """The statement, with ``implementation.url`` the base the client used."""
    return {**_statement(), "implementation": {"description": "patient-mgt FHIR view", "url": base}}
