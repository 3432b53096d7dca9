"""FHIR Bulk Data export, the jobs function's side: write an export's NDJSON, one slice per delivery.

A ``fhir.export.requested`` event names the export and the slice (``step``). The delivery claims the
export (a conditional UPDATE: this step, still active, no live lease), then works in pages: each page
is one transaction that locks the export row, reads up to ``PAGE`` rows of the current type after the
cursor (keyset on the primary key, so memory stays one page whatever the size of the export), appends
their NDJSON as one chunk of the current file, audits the patients it wrote, and moves the cursor.
When the time budget is spent, the page's transaction also bumps ``step`` and emits the next step's
event (outbox, same transaction), so the work continues in a new delivery — within the Service's
request timeout, and surviving a crash: a slice that dies leaves the cursor at its last committed page,
the broker redelivers its event, and the redelivery claims the export once the lease has run out.
A delivery of an older step (a duplicate) finds the step moved on and is acknowledged.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import load_only, selectinload

from shared import audit
from shared.auth import SYSTEM_JOBS
from shared.db import UnitOfWork, is_transient_db_error, unit_of_work
from shared.events import catalog, outbox
from shared.fhir import lab_view
from shared.fhir.encoding import dumps
from shared.fhir.export import ACTIVE, expires_at
from shared.fhir.lab import to_diagnostic_report, to_service_request
from shared.fhir.patient import to_fhir_patient
from shared.ids import uuid4
from shared.log import get_logger
from shared.models import FhirExport, FhirExportChunk, FhirExportFile, LabOrder, LabResult, Patient
from shared.models.base import utcnow
from shared.services import patients as registry

log = get_logger("patient_mgt.fhir.export")

PAGE = 1000  # rows per page (one chunk): one transaction, one page in memory
FILE_LINES = 100_000  # resources per output file before the next part starts
LEASE_MARGIN_SECONDS = 60.0


class ExportRetry(Exception):
    """A transient fault, or another delivery still holds the export: answer 503, the broker redelivers."""


def _page(uow: UnitOfWork, kind: str, export: FhirExport) -> tuple[list[Any], list[dict[str, Any]]]:
    """The next page of ``kind`` after the cursor (id order) and its resources."""
    model, options, render = _TYPES[kind]
    stmt = sa.select(model).order_by(model.id).limit(PAGE).options(*options)
    if export.cursor is not None:
        stmt = stmt.where(model.id > export.cursor)
    if export.since is not None:
        stmt = stmt.where(model.updated_at > export.since)
    if kind == "DiagnosticReport":
        stmt = stmt.where(sa.exists().where(LabResult.order_id == LabOrder.id))
    rows = list(uow.session.scalars(stmt))
    return rows, render(uow, rows)


# Only the columns the mappings read: every timestamp pg8000 parses and every JSONB it decodes (a result's
# previous versions, an order's field stamps) costs CPU per row, and an export is all rows.
_RESULT_COLUMNS = load_only(
    LabResult.id, LabResult.order_id, LabResult.patient_id, LabResult.status, LabResult.code_system, LabResult.code,
    LabResult.code_display, LabResult.value_type, LabResult.value, LabResult.units, LabResult.reference_range,
    LabResult.abnormal_flags, LabResult.notes, LabResult.observed_at, LabResult.observed_text, LabResult.version,
    LabResult.updated_at)
_ORDER_COLUMNS = load_only(
    LabOrder.id, LabOrder.patient_id, LabOrder.placer_namespace, LabOrder.placer_number, LabOrder.filler_namespace,
    LabOrder.filler_number, LabOrder.code_system, LabOrder.code, LabOrder.code_display, LabOrder.status,
    LabOrder.priority, LabOrder.notes, LabOrder.ordered_at, LabOrder.parent_order_id, LabOrder.version,
    LabOrder.updated_at)
_TYPES: dict[str, tuple[Any, tuple[Any, ...], Callable[[UnitOfWork, list[Any]], list[dict[str, Any]]]]] = {
    "Patient": (Patient, (selectinload(Patient.identifiers),),
                lambda _uow, rows: [to_fhir_patient(registry.to_resource(r)) for r in rows]),
    "ServiceRequest": (LabOrder, (_ORDER_COLUMNS,), lambda _uow, rows: [to_service_request(r) for r in rows]),
    "Observation": (LabResult, (_RESULT_COLUMNS,), lab_view.observations),
    "DiagnosticReport": (LabOrder, (_ORDER_COLUMNS, selectinload(LabOrder.results).options(_RESULT_COLUMNS)),
                         lambda _uow, rows: [to_diagnostic_report(r, list(r.results)) for r in rows]),
}


def _append(uow: UnitOfWork, export: FhirExport, kind: str, lines: list[str]) -> None:
    """``lines`` as the next chunk of the type's current file (a new part past ``FILE_LINES``)."""
    file = uow.session.scalar(sa.select(FhirExportFile).where(
        FhirExportFile.export_id == export.id, FhirExportFile.resource_type == kind)
        .order_by(FhirExportFile.part.desc()).limit(1))
    if file is None or file.count + len(lines) > FILE_LINES:
        file = FhirExportFile(id=uuid4(), export_id=export.id, resource_type=kind,
                              part=0 if file is None else file.part + 1, count=0, created_at=utcnow())
        uow.session.add(file)
        uow.flush()
    seq = uow.session.scalar(sa.select(sa.func.coalesce(sa.func.max(FhirExportChunk.seq) + 1, 0))
                             .where(FhirExportChunk.file_id == file.id))
    uow.session.add(FhirExportChunk(file_id=file.id, seq=seq, lines=len(lines), body="".join(lines)))
    file.count += len(lines)


def _claim(export_id: uuid.UUID, step: int, budget: float) -> str:
    """``claimed``; ``stale`` (done, cancelled, gone, or a step already past: acknowledge); ``busy``."""
    now = utcnow()
    t = FhirExport.__table__
    with unit_of_work() as uow:
        claimed = uow.session.execute(
            sa.update(t).where(t.c.id == export_id, t.c.step == step, t.c.status.in_(ACTIVE),
                               sa.or_(t.c.lease_until.is_(None), t.c.lease_until < now))
            .values(status="in-progress", updated_at=now,
                    lease_until=now + timedelta(seconds=budget + LEASE_MARGIN_SECONDS))
            .returning(t.c.id)).first()
        if claimed is not None:
            return "claimed"
        row = uow.session.execute(sa.select(t.c.status, t.c.step).where(t.c.id == export_id)).first()
    if row is None or row.status not in ACTIVE or row.step != step:
        return "stale"
    return "busy"


def _one_page(export_id: uuid.UUID, step: int, deadline: float) -> str | None:
    """One page in one transaction; the slice's outcome when it ends here, else None."""
    with unit_of_work() as uow:
        export = uow.session.scalar(sa.select(FhirExport).where(
            FhirExport.id == export_id, FhirExport.step == step, FhirExport.status == "in-progress").with_for_update())
        if export is None:
            return "stopped"  # cancelled (its files are gone), or another delivery moved it on
        if export.type_index < len(export.types):
            kind = export.types[export.type_index]
            rows, resources = _page(uow, kind, export)
            if resources:
                _append(uow, export, kind, [dumps(r) + "\n" for r in resources])
                audit.record(uow, SYSTEM_JOBS, "fhir.export.write",
                             list(dict.fromkeys(r.id if kind == "Patient" else r.patient_id for r in rows)),
                             details={"export_id": str(export.id), "type": kind, "count": len(resources)})
            export.written += len(resources)
            export.cursor = rows[-1].id if len(rows) == PAGE else None
            export.type_index += 0 if len(rows) == PAGE else 1
        now = utcnow()
        export.updated_at = now
        if export.type_index >= len(export.types):
            export.status, export.completed_at, export.expires_at, export.lease_until = (
                "completed", now, expires_at(now), None)
            return "completed"
        if time.monotonic() >= deadline:
            export.step, export.lease_until = step + 1, None
            outbox.emit(uow, catalog.FHIR_EXPORT_REQUESTED, None,
                        catalog.FhirExportRequested(export_id=export.id, step=step + 1))
            return "continued"
    return None


def _fail(export_id: uuid.UUID, step: int, code: str) -> None:
    with unit_of_work() as uow:
        uow.session.execute(sa.update(FhirExport).where(
            FhirExport.id == export_id, FhirExport.step == step, FhirExport.status == "in-progress")
            .values(status="failed", error=code[:64], lease_until=None, updated_at=utcnow()))


def run_slice(export_id: uuid.UUID, step: int, budget: float) -> str:
    """Work on the export for at most ``budget`` seconds (and at least one page); the slice's outcome:
    ``completed``, ``continued`` (the next step's event is in the outbox), ``stopped`` (cancelled),
    ``stale`` (a duplicate delivery) or ``failed``. Raises ExportRetry for a 503."""
    claim = _claim(export_id, step, budget)
    if claim == "busy":
        raise ExportRetry("export_busy")
    if claim == "stale":
        return "stale"
    deadline = time.monotonic() + budget
    try:
        while (outcome := _one_page(export_id, step, deadline)) is None:
            pass
    except Exception as exc:
        if is_transient_db_error(exc):
            raise ExportRetry("database_unavailable") from None
        # A retry would meet the same data: the export fails, with a code (never the exception's text).
        log.error("FHIR export failed", extra={"fields": {"export_id": str(export_id), "error": type(exc).__name__}})
        _fail(export_id, step, type(exc).__name__)
        return "failed"
    log.info("FHIR export slice", extra={"fields": {"export_id": str(export_id), "step": step, "outcome": outcome}})
    return outcome
