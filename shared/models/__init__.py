"""All tables. Importing this package registers every model on ``Base.metadata``."""

from shared.models.audit import AuditEntry
from shared.models.auth import ApiKey
from shared.models.base import Base
from shared.models.console import ConsoleSession
from shared.models.critical import CriticalAlert, CriticalAlertMessage
from shared.models.dead_letters import DeadLetter
from shared.models.duplicates import DuplicateFlag
from shared.models.events import OutboxEvent, ProcessedEvent
from shared.models.exports import FhirExport, FhirExportChunk, FhirExportFile
from shared.models.history import HistoryEntry
from shared.models.jobs import DataQualityIssue, JobRun, JobState, OrderOverdueNotice
from shared.models.lis import LisControlId, LisMessage, LisPatientSync
from shared.models.merges import PatientMerge
from shared.models.notifications import Notification
from shared.models.orders import LabOrder, LabResult
from shared.models.patients import MRN_SYSTEM, Patient, PatientIdentifier, PatientNameToken
from shared.models.versions import ResourceVersion

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "ConsoleSession",
    "CriticalAlert",
    "CriticalAlertMessage",
    "DataQualityIssue",
    "DeadLetter",
    "DuplicateFlag",
    "FhirExport",
    "FhirExportChunk",
    "FhirExportFile",
    "HistoryEntry",
    "JobRun",
    "JobState",
    "LabOrder",
    "LabResult",
    "LisControlId",
    "LisMessage",
    "LisPatientSync",
    "MRN_SYSTEM",
    "Notification",
    "OrderOverdueNotice",
    "OutboxEvent",
    "Patient",
    "PatientIdentifier",
    "PatientMerge",
    "PatientNameToken",
    "ProcessedEvent",
    "ResourceVersion",
]
