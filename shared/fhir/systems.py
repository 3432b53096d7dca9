"""Identifier and code systems as FHIR URIs, and back (for search parameters).

* An identifier or code system that is already an absolute URI (``urn:oid:…``, ``http://…``) is
  used as is. The MRN's system is ``urn:patient-mgt:mrn`` in the database and in FHIR.
* HL7 v2 coding-system names (table 0396: ``LN``, ``SCT``, ``UCUM``…) become their FHIR URIs.
* Any other name (a LIS namespace such as ``HOSP``, a local code system ``L``) is wrapped in a
  URN of ours — ``urn:patient-mgt:identifier-system:HOSP``, ``urn:patient-mgt:code-system:L`` —
  percent-encoded, so it is a valid URI and maps back exactly.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from shared.models.patients import is_mrn_system

IDENTIFIER_SYSTEM_URN = "urn:patient-mgt:identifier-system:"
CODE_SYSTEM_URN = "urn:patient-mgt:code-system:"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
BCP47 = "urn:ietf:bcp:47"
UCUM = "http://unitsofmeasure.org"

_ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$")
# An HL7 v2 coding-system name (table 0396: LN, SCT, L, 99zzz, HL70078, ISO+): anything else in
# the system slot (words, a sentence) is text, not a system.
_SYSTEM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._-]{0,31}$")
SYSTEM_NAME_SQL = "^[A-Za-z0-9][A-Za-z0-9+._-]{0,31}$"
ABSOLUTE_URI_SQL = "^[A-Za-z][A-Za-z0-9+.-]*:[^[:space:]]+$"
# Codes whose sender named no coding system: local to the sending system (docs/fhir.md).
LOCAL_CODE_SYSTEM = "urn:patient-mgt:local-code"

# HL7 v2 table 0396 (coding systems) → FHIR code system URIs, for the systems lab feeds use.
V2_CODE_SYSTEMS = {
    "LN": "http://loinc.org",
    "LOINC": "http://loinc.org",
    "SCT": "http://snomed.info/sct",
    "SNOMEDCT": "http://snomed.info/sct",
    "UCUM": UCUM,
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "I10C": "http://hl7.org/fhir/sid/icd-10-cm",
    "I9C": "http://hl7.org/fhir/sid/icd-9-cm",
    "C4": "http://www.ama-assn.org/go/cpt",
    "CPT": "http://www.ama-assn.org/go/cpt",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
}

# HL7 v2 table 0203 (identifier types) codes that identifiers here carry.
V2_IDENTIFIER_TYPES = {
    "MR": "Medical record number",
    "PI": "Patient internal identifier",
    "PT": "Patient external identifier",
    "AN": "Account number",
    "VN": "Visit number",
    "SS": "Social Security number",
    "NI": "National unique individual identifier",
    "NH": "National Health Plan Identifier",
    "NNxxx": "National Person Identifier where the xxx is the ISO table 3166 3-character (alphabetic) country code",
    "PPN": "Passport number",
    "DL": "Driver's license number",
    "MA": "Patient Medicaid number",
    "MC": "Patient's Medicare number",
    "MB": "Member Number",
    "SN": "Subscriber Number",
    "PN": "Person number",
    "PRN": "Provider number",
    "BR": "Birth registry number",
    "U": "Unspecified identifier",
}


def _is_uri(system: str) -> bool:
    return bool(_ABSOLUTE_URI.match(system))


def identifier_system(system: str) -> str:
    return system if _is_uri(system) else IDENTIFIER_SYSTEM_URN + quote(system, safe="")


def identifier_system_from_fhir(uri: str) -> str:
    if uri.startswith(IDENTIFIER_SYSTEM_URN):
        return unquote(uri[len(IDENTIFIER_SYSTEM_URN):])
    return uri


def is_system_name(system: str | None) -> bool:
    """A coding-system name or URI, as opposed to empty or text a sender put in the system slot."""
    return bool(system) and (_is_uri(system) or bool(_SYSTEM_NAME.match(system)))  # type: ignore[arg-type]


def code_system(system: str | None) -> str:
    """The FHIR system of a stored code; :data:`LOCAL_CODE_SYSTEM` when the sender named none (or put
    text where the system goes), so every coding has a system and none is made up from text."""
    if not system or not is_system_name(system):
        return LOCAL_CODE_SYSTEM
    if system.upper() in V2_CODE_SYSTEMS:
        return V2_CODE_SYSTEMS[system.upper()]
    return system if _is_uri(system) else CODE_SYSTEM_URN + quote(system, safe="")


def code_systems_from_fhir(uri: str) -> list[str]:
    """Every stored system that :func:`code_system` turns into ``uri``, upper-cased (compare
    with ``upper(code_system)``): ``http://loinc.org`` is stored as ``LN`` by the LIS feed, or as
    the URI by the API."""
    if uri.startswith(CODE_SYSTEM_URN):
        return [unquote(uri[len(CODE_SYSTEM_URN):]).upper()]
    return sorted({uri.upper()} | {name for name, target in V2_CODE_SYSTEMS.items() if target == uri})


def identifier_type(code: str | None) -> dict[str, object] | None:
    """A CodeableConcept for an identifier type: a v2-0203 coding when the code is one, else text."""
    if not code:
        return None
    if code in V2_IDENTIFIER_TYPES:
        return {"coding": [{"system": V2_0203, "code": code, "display": V2_IDENTIFIER_TYPES[code]}]}
    return {"text": code}


def identifier_type_from_fhir(concept: dict[str, object] | None) -> str | None:
    """The stored type of a FHIR identifier type: its v2-0203 code, else its text."""
    if not concept:
        return None
    for coding in concept.get("coding") or []:  # type: ignore[union-attr]
        if isinstance(coding, dict) and coding.get("system") == V2_0203 and coding.get("code"):
            return str(coding["code"])
    text = concept.get("text")
    return str(text) if text else None


def is_mrn(system: str) -> bool:
    return is_mrn_system(system)
