"""FHIR Bulk Data export, the api's side (the Bulk Data Access IG's async pattern): kick-off, status,
manifest, file download, cancel. The work itself runs in the jobs function (``shared.fhir.export_job``).

Kick-off writes the ``fhir_exports`` row, its audit row and a ``fhir.export.requested`` event in one
transaction, so the api answers 202 at once and the export survives an api restart: the outbox
delivers the event even if this process dies after the commit. Only the API key that asked may poll,
download and cancel (another key gets the 404 an unknown export gets).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork, unit_of_work
from shared.errors import BadRequest, NotFound
from shared.events import catalog, outbox
from shared.ids import uuid4
from shared.instants import is_storable
from shared.models import FhirExport, FhirExportChunk, FhirExportFile
from shared.models.base import utcnow
from shared.settings import get_settings

# What an export can hold: every type of this FHIR view (all of them in the Patient compartment).
EXPORT_TYPES = ("Patient", "ServiceRequest", "Observation", "DiagnosticReport")
NDJSON = "application/fhir+ndjson"
OUTPUT_FORMATS = {NDJSON, "application/ndjson", "ndjson"}
ACTIVE = ("accepted", "in-progress")


def _bad(field: str, message: str) -> BadRequest:
    return BadRequest(f"Invalid {field}", errors=[{"in": "query", "field": field, "message": message, "code": "invalid"}])


def parse_types(values: list[str]) -> list[str]:
    """``_type`` (comma-separated, may repeat): the types to export, in this view's order; all when absent."""
    if not values:
        return list(EXPORT_TYPES)
    names = [n.strip() for v in values for n in v.split(",")]
    for name in names:
        if name not in EXPORT_TYPES:
            raise _bad("_type", f"use {', '.join(EXPORT_TYPES)}")
    return [t for t in EXPORT_TYPES if t in names]


def parse_since(values: list[str]) -> datetime | None:
    """``_since``: a FHIR instant (with its offset); resources changed after it."""
    if not values:
        return None
    if len(values) > 1:
        raise _bad("_since", "give it once")
    raw = values[0].strip()
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _bad("_since", "use an instant such as 2026-01-01T00:00:00Z") from None
    if value.tzinfo is None or "T" not in raw or not is_storable(value):
        raise _bad("_since", "use an instant with an offset, such as 2026-01-01T00:00:00Z")
    return value


def check_output_format(value: str | None) -> None:
    if value is not None and value.strip() not in OUTPUT_FORMATS:
        raise _bad("_outputFormat", f"only {NDJSON} is written")


def check_prefer(prefer: str) -> None:
    """The IG's kick-off requires ``Prefer: respond-async``: this server answers no other way."""
    tokens = {t.strip().lower() for part in prefer.split(",") for t in part.split(";")}
    if "respond-async" not in tokens:
        raise BadRequest("Send Prefer: respond-async (an export is always asynchronous)", errors=[
            {"in": "header", "field": "Prefer", "message": "must include respond-async", "code": "missing"}])


def kick_off(uow: UnitOfWork, principal: Principal, level: str, types: list[str], since: datetime | None,
             request_url: str) -> uuid.UUID:
    """The export row, its audit row and the event that starts the work, in the caller's transaction."""
    now = utcnow()
    export = FhirExport(id=uuid4(), level=level, types=types, since=since, request_url=request_url,
                        requested_by=principal.key_id, status="accepted", step=0, type_index=0, written=0,
                        transaction_time=now, created_at=now, updated_at=now)
    uow.session.add(export)
    uow.flush()
    outbox.emit(uow, catalog.FHIR_EXPORT_REQUESTED, None, catalog.FhirExportRequested(export_id=export.id, step=0))
    audit.record(uow, principal, "fhir.export.request", [], details={
        "export_id": str(export.id), "level": level, "types": types, "since": since.isoformat() if since else None})
    return export.id


def _own(uow: UnitOfWork, principal: Principal, export_id: uuid.UUID, *, lock: bool = False) -> FhirExport:
    stmt = sa.select(FhirExport).where(FhirExport.id == export_id)
    export = uow.session.scalar(stmt.with_for_update() if lock else stmt)
    mine = export is not None and (export.requested_by == principal.key_id or "admin" in principal.scopes)
    if not mine or export.status == "cancelled" or (export.expires_at is not None and export.expires_at <= utcnow()):
        raise NotFound("No export with this id (finished exports expire)")
    return export


def status(uow: UnitOfWork, principal: Principal, export_id: uuid.UUID) -> tuple[FhirExport, list[FhirExportFile]]:
    """The export and, once it is completed, its files (type order, then part)."""
    export = _own(uow, principal, export_id)
    files: list[FhirExportFile] = []
    if export.status == "completed":
        order = sa.case({t: i for i, t in enumerate(EXPORT_TYPES)}, value=FhirExportFile.resource_type)
        files = list(uow.session.scalars(sa.select(FhirExportFile).where(FhirExportFile.export_id == export_id)
                                         .order_by(order, FhirExportFile.part)))
    return export, files


def progress(export: FhirExport) -> str:
    """X-Progress: where the work is (no patient data)."""
    if export.status == "accepted":
        return "queued"
    current = export.types[min(export.type_index, len(export.types) - 1)]
    return f"{export.written} resources written; exporting {current} ({export.type_index + 1} of {len(export.types)})"


def manifest(export: FhirExport, files: list[FhirExportFile], base: str) -> dict[str, Any]:
    return {
        "transactionTime": export.transaction_time.isoformat(),
        "request": export.request_url,
        "requiresAccessToken": True,
        "output": [{"type": f.resource_type, "url": f"{base}/$export-file/{f.id}", "count": f.count} for f in files],
        "error": [],
    }


def dumps_manifest(body: dict[str, Any]) -> str:
    return json.dumps(body)


def cancel(uow: UnitOfWork, principal: Principal, export_id: uuid.UUID) -> None:
    """Cancelled (the row stays, for the record) and its files deleted; a slice still running finds
    the row cancelled under its lock and stops without writing."""
    export = _own(uow, principal, export_id, lock=True)
    uow.session.execute(sa.delete(FhirExportFile).where(FhirExportFile.export_id == export.id))
    export.status, export.updated_at, export.lease_until = "cancelled", utcnow(), None
    audit.record(uow, principal, "fhir.export.cancel", [], details={"export_id": str(export.id)})


def open_file(uow: UnitOfWork, principal: Principal, file_id: uuid.UUID) -> tuple[FhirExportFile, FhirExport]:
    """A file of a completed export of this key, its download audited (the patients it holds are in the
    export's ``fhir.export.write`` audit rows, one per chunk)."""
    file = uow.session.get(FhirExportFile, file_id)
    if file is None:
        raise NotFound("No export file with this id")
    try:
        export = _own(uow, principal, file.export_id)
    except NotFound:
        raise NotFound("No export file with this id") from None
    if export.status != "completed":
        raise NotFound("No export file with this id")
    audit.record(uow, principal, "fhir.export.download", [], details={
        "export_id": str(export.id), "file_id": str(file.id), "type": file.resource_type, "count": file.count})
    return file, export


def file_body(file_id: uuid.UUID) -> Iterator[bytes]:
    """The file's NDJSON, one chunk at a time (keyset on ``seq``, one row in memory at once), each in
    its own short transaction so a long download holds no snapshot open."""
    seq = -1
    while True:
        with unit_of_work() as uow:
            row = uow.session.execute(
                sa.select(FhirExportChunk.seq, FhirExportChunk.body)
                .where(FhirExportChunk.file_id == file_id, FhirExportChunk.seq > seq)
                .order_by(FhirExportChunk.seq).limit(1)).first()
        if row is None:
            return
        seq = row.seq
        yield row.body.encode("utf-8")


def expires_at(now: datetime) -> datetime:
    return now + timedelta(hours=get_settings().fhir_export_retention_hours)
