"""Lab orders → FHIR ServiceRequest, lab results → FHIR Observation, as plain dicts.

Vocabularies:
* Observation.status from OBX-11 (HL7 v2 table 0085), as the HL7 v2-to-FHIR concept map has it.
* Observation.interpretation from OBX-8 (table 0078): the v3 ObservationInterpretation code
  system holds the same codes; a flag outside it keeps its text only (never a guessed code).
* ServiceRequest.status from the order status the LIS consumer keeps (``shared.lis.ordering``).
* Units: ``shared.fhir.units`` (UCUM only where the unit is known).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from shared.fhir.encoding import compact
from shared.fhir.patient import instant
from shared.fhir.systems import code_system, identifier_system
from shared.fhir.times import date_time
from shared.fhir.units import reference_range, value_element
from shared.models import LabOrder, LabResult

V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
DATA_ABSENT_EXTENSION = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
LAB_CATEGORY = {"coding": [{"system": V2_0074, "code": "LAB", "display": "Laboratory"}]}

# OBX-11 → Observation.status. A, C, D, F, P, W and X as the HL7 v2-to-FHIR concept map
# (table-hl70085-to-observation-status); it leaves B, I, N, O, R, S and U unmapped, and these
# are our reading of their definitions. Anything else is "unknown".
RESULT_STATUS = {
    "A": "amended",
    "B": "amended",
    "C": "corrected",
    "D": "entered-in-error",
    "F": "final",
    "I": "registered",
    "N": "cancelled",
    "O": "registered",
    "P": "preliminary",
    "R": "preliminary",
    "S": "preliminary",
    "U": "final",
    "W": "entered-in-error",
    "X": "cancelled",
}

# OBX-8 codes that v3 ObservationInterpretation defines with the same code (code → display).
INTERPRETATION = {
    "L": "Low", "H": "High", "LL": "Critical low", "HH": "Critical high", "<": "Off scale low",
    ">": "Off scale high", "N": "Normal", "A": "Abnormal", "AA": "Critical abnormal", "U": "Significant change up",
    "D": "Significant change down", "B": "Better", "W": "Worse", "S": "Susceptible", "R": "Resistant",
    "I": "Intermediate", "MS": "moderately susceptible", "VS": "very susceptible", "POS": "Positive",
    "NEG": "Negative", "IND": "Indeterminate", "DET": "Detected", "ND": "Not detected", "AC": "Anti-complementary substances present",
    "RR": "Reactive", "NR": "Non-reactive", "WR": "Weakly reactive", "TOX": "Cytotoxic substance present",
    "QCF": "Quality control failure", "EX": "outside threshold", "HX": "above high threshold",
    "LX": "below low threshold", "HU": "Significantly high", "LU": "Significantly low", "E": "Equivocal",
    "EXP": "Expected", "UNE": "Unexpected", "NS": "Non-susceptible", "SDD": "Susceptible-dose dependent",
    "SYN-R": "Synergy - resistant", "SYN-S": "Synergy - susceptible", "CAR": "Carrier", "IE": "Insufficient evidence",
    "NCL": "No CLSI defined breakpoint",
}

# The LIS consumer's order statuses → ServiceRequest.status
ORDER_STATUS = {
    "requested": "active", "scheduled": "active", "on_hold": "on-hold", "in_progress": "active",
    "partial": "active", "preliminary": "active", "cancelled": "revoked", "final": "completed",
    "corrected": "completed",
}
PRIORITIES = ("routine", "urgent", "asap", "stat")
# The LIS consumer's order statuses → DiagnosticReport.status (the report of the order's results).
REPORT_STATUS = {
    "requested": "registered", "scheduled": "registered", "on_hold": "registered", "in_progress": "registered",
    "partial": "partial", "preliminary": "preliminary", "final": "final", "corrected": "corrected",
    "cancelled": "cancelled",
}


def concept(system: str | None, code: str | None, display: str | None) -> dict[str, Any] | None:
    """A CodeableConcept from a stored (system, code, display); None when all three are empty."""
    if not code and not display:
        return None
    coding = {"system": code_system(system), "code": code, "display": display} if code else None
    return compact({"coding": [coding] if coding else [], "text": display})


def absent_concept() -> dict[str, Any]:
    """A required CodeableConcept the sender did not fill in."""
    return {"extension": [{"url": DATA_ABSENT_EXTENSION, "valueCode": "unknown"}]}


def result_status(code: str | None) -> str:
    return RESULT_STATUS.get((code or "").strip().upper(), "unknown")


def interpretation(flag: str) -> dict[str, Any]:
    code = flag.strip()
    if code not in INTERPRETATION and code.upper() in INTERPRETATION:
        code = code.upper()
    if code in INTERPRETATION:
        return {"coding": [{"system": V3_INTERPRETATION, "code": code, "display": INTERPRETATION[code]}]}
    return {"text": flag}


def _order_identifiers(order: LabOrder) -> list[dict[str, Any]]:
    out = []
    for number, namespace, kind, display in (
        (order.placer_number, order.placer_namespace, "PLAC", "Placer Identifier"),
        (order.filler_number, order.filler_namespace, "FILL", "Filler Identifier"),
    ):
        if number:
            out.append({"type": {"coding": [{"system": V2_0203, "code": kind, "display": display}]},
                        "system": identifier_system(namespace) if namespace else None, "value": number})
    return out


def to_service_request(order: LabOrder) -> dict[str, Any]:
    return compact({
        "resourceType": "ServiceRequest",
        "id": str(order.id),
        "meta": {"versionId": str(order.version), "lastUpdated": instant(order.updated_at)},
        "identifier": _order_identifiers(order),
        "status": ORDER_STATUS.get(order.status, "unknown"),
        "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "108252007",
                                  "display": "Laboratory procedure"}]}],
        "priority": order.priority if order.priority in PRIORITIES else None,
        "code": concept(order.code_system, order.code, order.code_display),
        # A child order (OBR-29: an isolate's susceptibility panel) fulfils part of its parent order.
        "basedOn": [{"reference": f"ServiceRequest/{order.parent_order_id}"}] if order.parent_order_id else [],
        "subject": {"reference": f"Patient/{order.patient_id}"},
        "authoredOn": instant(order.ordered_at),
        "note": [{"text": order.notes}] if order.notes else [],
    })


def to_observation(result: LabResult, members: Iterable[uuid.UUID] = ()) -> dict[str, Any]:
    """``members``: the results of the child orders reporting on this one (a culture isolate's
    susceptibilities, OBR-26/OBR-29) — ``hasMember``, as the HL7 v2-to-FHIR microbiology mapping has it."""
    value = value_element(result.value_type, result.value, result.units)
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(result.id),
        "meta": {"versionId": str(result.version), "lastUpdated": instant(result.updated_at)},
        # A patient-level observation (ORU PATIENT_OBSERVATION) belongs to no order: no basedOn.
        "basedOn": [{"reference": f"ServiceRequest/{result.order_id}"}] if result.order_id else [],
        "status": result_status(result.status),
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory", "display": "Laboratory"}]}],
        "code": concept(result.code_system, result.code, result.code_display) or absent_concept(),
        "subject": {"reference": f"Patient/{result.patient_id}"},
        "effectiveDateTime": date_time(result.observed_at, result.observed_text),
        **value,
        "interpretation": [interpretation(f) for f in result.abnormal_flags or [] if f.strip()],
        "note": [{"text": n} for n in result.notes or [] if n.strip()],
        "referenceRange": [r] if (r := reference_range(result.reference_range, result.units)) else [],
        "hasMember": [{"reference": f"Observation/{m}"} for m in members],
    }
    if not value:
        resource["dataAbsentReason"] = {"coding": [{"system": DATA_ABSENT_REASON, "code": "unknown"}]}
    return compact(resource)


def _effective(results: list[LabResult]) -> str | None:
    """The report's clinically relevant time: the earliest effective time of its results."""
    timed = [r for r in results if r.observed_at is not None]
    first = min(timed, key=lambda r: r.observed_at) if timed else None  # type: ignore[arg-type,return-value]
    return date_time(first.observed_at, first.observed_text) if first else None


def to_diagnostic_report(order: LabOrder, results: list[LabResult]) -> dict[str, Any]:
    """One lab order's report: its results (``result``), their order (``basedOn``), its notes (``conclusion``)."""
    return compact({
        "resourceType": "DiagnosticReport",
        "id": str(order.id),
        "meta": {"versionId": str(order.version), "lastUpdated": instant(order.updated_at)},
        "identifier": _order_identifiers(order),
        "basedOn": [{"reference": f"ServiceRequest/{order.id}"}],
        "status": REPORT_STATUS.get(order.status, "unknown"),
        "category": [LAB_CATEGORY],
        "code": concept(order.code_system, order.code, order.code_display) or absent_concept(),
        "subject": {"reference": f"Patient/{order.patient_id}"},
        "effectiveDateTime": _effective(results),
        "issued": instant(order.updated_at),
        "result": [{"reference": f"Observation/{r.id}"} for r in results],
        "conclusion": order.notes,
    })
