"""All tables, loaded together on first use.

``from shared.models import Patient`` (any model's first use through this package) imports every model
module, under ``shared.mappers.MODEL_IMPORT_LOCK``, before it hands out the class: no thread holds a
mapped class while another is half-way through a model module. SQLAlchemy configures every class mapped
so far at a query's or an object's first use, in whichever thread comes first, and a class configured
before its relationship's target is defined (``LabOrder`` before ``LabResult``) fails for the life of
the process. Importing the package alone loads no model (``Base`` only): the hot paths — a GET, a
registration, an ORU, a welcome, an outbox sweep — use none, and a function loads them all with its
first ORM request, or once idle (``shared.db.warm_up``). ``load_all()`` returns ``Base.metadata`` with
every table: Alembic and the metadata checks.

Code outside this package takes its classes from here, never from a model module directly
(``tests/unit/test_models_registry.py`` checks it); a model module may be imported directly for a
constant only.
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
    load_all()  # every model module, before any class leaves this package (see the module)
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def load_all() -> MetaData:
    """Import every model module; returns ``Base.metadata`` with every table on it."""
    with MODEL_IMPORT_LOCK:  # see shared.mappers
        for module in MODULES:
            importlib.import_module(f"{__name__}.{module}")
    return Base.metadata
