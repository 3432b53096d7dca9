"""All tables, each model module loaded on first use.

``from shared.models import Patient`` imports the module that defines the class (and the modules of the
tables its foreign keys point at, so every mapped table can be flushed); the other modules stay unloaded,
so a function's cold start pays only for the tables it touches. ``load_all()`` registers every table on
``Base.metadata``: Alembic, metadata comparisons and whatever needs the whole schema call it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shared.mappers import MODEL_IMPORT_LOCK
from shared.models.base import Base

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from shared.models.audit import AuditEntry
    from shared.models.auth import ApiKey
    from shared.models.console import ConsoleSession
    from shared.models.critical import CriticalAlert, CriticalAlertMessage
    from shared.models.dead_letters import DeadLetter
    from shared.models.duplicates import DuplicateFlag
    from shared.models.events import OutboxEvent, ProcessedEvent
    from shared.models.exports import FhirExport, FhirExportChunk, FhirExportFile
    from shared.models.history import HistoryEntry
    from shared.models.job_runs import JobRun, JobState
    from shared.models.jobs import DataQualityIssue, OrderOverdueNotice
    from shared.models.lis import LisControlId, LisMessage, LisPatientSync
    from shared.models.merges import PatientMerge
    from shared.models.notifications import Notification
    from shared.models.orders import LabOrder, LabResult
    from shared.models.patients import MRN_SYSTEM, Patient, PatientIdentifier, PatientNameToken
    from shared.models.versions import ResourceVersion

# Each public name -> the module of shared.models that defines it.
_MODULE_OF = {
    "AuditEntry": "audit",
    "ApiKey": "auth",
    "ConsoleSession": "console",
    "CriticalAlert": "critical",
    "CriticalAlertMessage": "critical",
    "DeadLetter": "dead_letters",
    "DuplicateFlag": "duplicates",
    "OutboxEvent": "events",
    "ProcessedEvent": "events",
    "FhirExport": "exports",
    "FhirExportChunk": "exports",
    "FhirExportFile": "exports",
    "HistoryEntry": "history",
    "DataQualityIssue": "jobs",
    "JobRun": "job_runs",
    "JobState": "job_runs",
    "OrderOverdueNotice": "jobs",
    "LisControlId": "lis",
    "LisMessage": "lis",
    "LisPatientSync": "lis",
    "PatientMerge": "merges",
    "Notification": "notifications",
    "LabOrder": "orders",
    "LabResult": "orders",
    "MRN_SYSTEM": "patients",
    "Patient": "patients",
    "PatientIdentifier": "patients",
    "PatientNameToken": "patients",
    "ResourceVersion": "versions",
}
MODULES = tuple(sorted(set(_MODULE_OF.values())))


__all__ = ["Base", "load_all", *sorted(_MODULE_OF)]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with MODEL_IMPORT_LOCK:  # see shared.mappers
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def load_all() -> MetaData:
    """Import every model module; returns ``Base.metadata`` with every table on it."""
    with MODEL_IMPORT_LOCK:  # see shared.mappers
        for module in MODULES:
            importlib.import_module(f"{__name__}.{module}")
    return Base.metadata
