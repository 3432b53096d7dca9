"""The CloudEvent types we emit, by name: ``shared.events.catalog`` pairs each with its data model.

Apart from the catalog so that code which only compares or routes types (the jobs function's
dispatcher, the telemetry labels) does not build every payload model at cold start.
"""

from __future__ import annotations

PREFIX = "org.patientmgt."

PATIENT_REGISTERED = PREFIX + "patient.registered.v1"
PATIENT_UPDATED = PREFIX + "patient.updated.v1"
PATIENT_DEACTIVATED = PREFIX + "patient.deactivated.v1"
PATIENT_MERGED = PREFIX + "patient.merged.v1"
PATIENT_UNMERGED = PREFIX + "patient.unmerged.v1"
HISTORY_ADDED = PREFIX + "history.added.v1"
HISTORY_CHANGED = PREFIX + "history.changed.v1"
ORDER_REQUESTED = PREFIX + "order.requested.v1"
ORDER_CHANGED = PREFIX + "order.changed.v1"
ORDER_CANCELLED = PREFIX + "order.cancelled.v1"
LIS_PATIENT_CREATED = PREFIX + "lis.patient.created.v1"
LIS_PATIENT_UPDATED = PREFIX + "lis.patient.updated.v1"
ORDER_CREATED = PREFIX + "order.created.v1"
ORDER_UPDATED = PREFIX + "order.updated.v1"
RESULT_AVAILABLE = PREFIX + "result.available.v1"
ORDER_OVERDUE = PREFIX + "order.overdue.v1"
JOB_RUN_REQUESTED = PREFIX + "job.run.requested.v1"
RESULT_CRITICAL = PREFIX + "result.critical.v1"
CRITICAL_ALERT_ESCALATED = PREFIX + "critical_alert.escalated.v1"
CRITICAL_ALERT_ACKNOWLEDGED = PREFIX + "critical_alert.acknowledged.v1"
FHIR_EXPORT_REQUESTED = PREFIX + "fhir.export.requested.v1"
