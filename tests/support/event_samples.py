"""One valid data payload per catalog type (a test fails when a type has none)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from shared.events import catalog


def sample_data(event_type: str, patient_id: uuid.UUID) -> catalog.EventData:
    order_id = uuid.uuid4()
    samples: dict[str, catalog.EventData] = {
        catalog.PATIENT_REGISTERED: catalog.PatientRegistered(patient_id=patient_id, version=1, origin="api"),
        catalog.PATIENT_UPDATED: catalog.PatientUpdated(patient_id=patient_id, version=2, changed=["phone", "email"]),
        catalog.PATIENT_DEACTIVATED: catalog.PatientDeactivated(patient_id=patient_id, version=3),
        catalog.PATIENT_MERGED: catalog.PatientMerged(patient_id=patient_id, target_id=uuid.uuid4(), moved={"identifiers": 2, "orders": 1}),
        catalog.PATIENT_UNMERGED: catalog.PatientUnmerged(patient_id=patient_id, target_id=uuid.uuid4(), version=4,
                                                          restored={"identifiers": 2, "identifiers_kept": 0, "records": 0}),
        catalog.HISTORY_ADDED: catalog.HistoryEntryChanged(patient_id=patient_id, entry_id=uuid.uuid4(), version=1),
        catalog.HISTORY_CHANGED: catalog.HistoryEntryChanged(patient_id=patient_id, entry_id=uuid.uuid4(), version=2),
        catalog.ORDER_REQUESTED: catalog.OrderEvent(patient_id=patient_id, order_id=order_id, status="requested"),
        catalog.ORDER_CHANGED: catalog.OrderEvent(patient_id=patient_id, order_id=order_id, status="requested"),
        catalog.ORDER_CANCELLED: catalog.OrderEvent(patient_id=patient_id, order_id=order_id, status="cancelled"),
        catalog.LIS_PATIENT_CREATED: catalog.PatientRegistered(patient_id=patient_id, version=1, origin="lis"),
        catalog.LIS_PATIENT_UPDATED: catalog.PatientUpdated(patient_id=patient_id, version=2, changed=["address"]),
        catalog.ORDER_CREATED: catalog.OrderEvent(patient_id=patient_id, order_id=order_id, status="in_progress"),
        catalog.ORDER_UPDATED: catalog.OrderEvent(patient_id=patient_id, order_id=order_id, status="cancelled"),
        catalog.RESULT_AVAILABLE: catalog.ResultAvailable(patient_id=patient_id, order_id=order_id, result_ids=[uuid.uuid4()], status="final"),
        catalog.ORDER_OVERDUE: catalog.OrderOverdue(patient_id=patient_id, order_id=order_id,
                                                    ordered_at=datetime(2026, 1, 1, 8, 30, tzinfo=timezone.utc), overdue_hours=30),
        catalog.JOB_RUN_REQUESTED: catalog.JobRunRequested(job="notifications-due", requested_by=uuid.uuid4(),
                                                           requested_at=datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)),
        catalog.FHIR_EXPORT_REQUESTED: catalog.FhirExportRequested(export_id=uuid.uuid4(), step=0),
    }
    alert = catalog.CriticalAlertEvent(alert_id=uuid.uuid4(), patient_id=patient_id, result_id=uuid.uuid4(), order_id=order_id)
    for critical in (catalog.RESULT_CRITICAL, catalog.CRITICAL_ALERT_ESCALATED, catalog.CRITICAL_ALERT_ACKNOWLEDGED):
        samples[critical] = alert
    return samples[event_type]
