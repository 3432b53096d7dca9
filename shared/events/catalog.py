"""The event catalog: every CloudEvent type we emit, with the pydantic model of its data.

Data carries ids and the minimum a consumer needs; consumers reload the rest from PostgreSQL.
No PHI in data or attributes. ``docs/events.md`` and the JSON Schemas under ``docs/events/`` are
generated from this module (``patient-mgt events docs``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from shared.events.type_names import (  # noqa: F401 — the catalog's names; catalog.X stays the way to spell them
    PREFIX, PATIENT_REGISTERED, PATIENT_UPDATED, PATIENT_DEACTIVATED, PATIENT_MERGED, PATIENT_UNMERGED,
    HISTORY_ADDED, HISTORY_CHANGED, ORDER_REQUESTED, ORDER_CHANGED, ORDER_CANCELLED, LIS_PATIENT_CREATED,
    LIS_PATIENT_UPDATED, ORDER_CREATED, ORDER_UPDATED, RESULT_AVAILABLE, ORDER_OVERDUE, JOB_RUN_REQUESTED,
    RESULT_CRITICAL, CRITICAL_ALERT_ESCALATED, CRITICAL_ALERT_ACKNOWLEDGED, FHIR_EXPORT_REQUESTED,
)

SCHEMA_BASE_URL = "https://patient-mgt.example.org/docs/events/schemas/"


class EventData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PatientRegistered(EventData):
    patient_id: uuid.UUID
    version: int
    origin: Literal["api", "lis"]


class PatientUpdated(EventData):
    patient_id: uuid.UUID
    version: int
    changed: list[str]  # field names, never values


class PatientDeactivated(EventData):
    patient_id: uuid.UUID
    version: int


class PatientMerged(EventData):
    patient_id: uuid.UUID  # the source (now merged)
    target_id: uuid.UUID
    moved: dict[str, int]  # counts of moved identifiers, history entries, orders


class PatientUnmerged(EventData):
    patient_id: uuid.UUID  # the former source, a patient of its own again
    target_id: uuid.UUID  # the patient it had been merged into
    version: int  # the former source's version after the unmerge
    restored: dict[str, int]  # counts: identifiers restored, identifiers_kept (owned by another patient), records


class HistoryEntryChanged(EventData):
    patient_id: uuid.UUID
    entry_id: uuid.UUID
    version: int


class OrderEvent(EventData):
    patient_id: uuid.UUID
    order_id: uuid.UUID
    status: str


class ResultAvailable(EventData):
    patient_id: uuid.UUID
    order_id: uuid.UUID
    result_ids: list[uuid.UUID]
    status: Literal["final", "corrected"]


class CriticalAlertEvent(EventData):
    alert_id: uuid.UUID
    patient_id: uuid.UUID
    result_id: uuid.UUID
    order_id: uuid.UUID | None


class OrderOverdue(EventData):
    patient_id: uuid.UUID
    order_id: uuid.UUID
    ordered_at: datetime | None
    overdue_hours: int


class JobRunRequested(EventData):
    job: str  # the job's name (shared/jobs/registry.py)
    requested_by: uuid.UUID | None  # the API key's id (its name stays in the audit trail)
    requested_at: AwareDatetime  # the run's slot: every delivery of the request claims the same (job, slot)


class FhirExportRequested(EventData):
    export_id: uuid.UUID  # the fhir_exports row: what to export lives there, not in the event
    step: int  # which slice of the export this delivery is (0 the first; each slice asks for the next)


# type -> (data model, emitting function, description)
CATALOG: dict[str, tuple[type[EventData], str, str]] = {
    PATIENT_REGISTERED: (PatientRegistered, "api", "A patient was registered (API or LIS)."),
    PATIENT_UPDATED: (PatientUpdated, "api", "A patient's demographics changed through the API."),
    PATIENT_DEACTIVATED: (PatientDeactivated, "api", "A patient was deactivated."),
    PATIENT_MERGED: (PatientMerged, "api", "A patient was merged into another (API or LIS A40)."),
    PATIENT_UNMERGED: (PatientUnmerged, "api", "A merge made in error was undone: the former source is a patient of its "
                                               "own again, with its identifiers and demographics from before the merge."),
    HISTORY_ADDED: (HistoryEntryChanged, "api", "A medical history entry was added."),
    HISTORY_CHANGED: (HistoryEntryChanged, "api", "A medical history entry changed."),
    ORDER_REQUESTED: (OrderEvent, "api", "A lab order was placed through the API, for the LIS to act on."),
    ORDER_CHANGED: (OrderEvent, "api", "An order placed through the API changed before the lab accepted it (HL7 ORC-1 XO)."),
    ORDER_CANCELLED: (OrderEvent, "api", "An order placed through the API was cancelled (HL7 ORC-1 CA)."),
    LIS_PATIENT_CREATED: (PatientRegistered, "lis_consumer", "The LIS feed created a patient."),
    LIS_PATIENT_UPDATED: (PatientUpdated, "lis_consumer", "The LIS feed updated a patient's demographics."),
    ORDER_CREATED: (OrderEvent, "lis_consumer", "The LIS feed created an order."),
    ORDER_UPDATED: (OrderEvent, "lis_consumer", "The LIS feed changed an order (status, cancel)."),
    RESULT_AVAILABLE: (ResultAvailable, "lis_consumer", "Final or corrected results are available for an order."),
    ORDER_OVERDUE: (OrderOverdue, "jobs", "An order has had no result for longer than LIS_ORDER_OVERDUE_HOURS."),
    JOB_RUN_REQUESTED: (JobRunRequested, "api", "An operator pressed Run now for a job the api does not run itself "
                                                "(notifications-due); the jobs function runs it."),
    RESULT_CRITICAL: (CriticalAlertEvent, "notify",
                      "A result is critical (OBX-8 HH/LL/AA or outside CRITICAL_RANGES): an alert was raised for it, once."),
    CRITICAL_ALERT_ESCALATED: (CriticalAlertEvent, "jobs",
                               "A critical-result alert was not acknowledged in CRITICAL_ALERT_ESCALATE_AFTER_SECONDS."),
    CRITICAL_ALERT_ACKNOWLEDGED: (CriticalAlertEvent, "api", "A clinician acknowledged a critical-result alert."),
    FHIR_EXPORT_REQUESTED: (FhirExportRequested, "api", "A FHIR Bulk Data export was requested (step 0); the jobs "
                                                        "function writes it one slice per delivery and emits the next step "
                                                        "until it is done."),
}

# Types about no patient: emitted without a subject. Every other type's subject is the patient id.
NO_SUBJECT = frozenset({JOB_RUN_REQUESTED, FHIR_EXPORT_REQUESTED})


def dataschema_for(event_type: str) -> str:
    return f"{SCHEMA_BASE_URL}{event_type}.json"
