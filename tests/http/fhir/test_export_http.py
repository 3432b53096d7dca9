"""FHIR Bulk Data export through the api (test client, real PostgreSQL), with the jobs side's slices run
in-process (``export_job.run_slice``, what the jobs function calls per delivery). The export is read back
through the manifest's file URLs, every NDJSON line validated and the ids compared with the database.
The real processes, end to end: tests/e2e/fhir/test_export_e2e.py."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from shared.db import unit_of_work
from shared.events import catalog
from shared.fhir import export_job
from shared.models import AuditEntry, FhirExport, FhirExportChunk, FhirExportFile, OutboxEvent
from tests.conftest import auth
from tests.http.fhir.support import add_order, fhir_base, outcome, rest_patient
from tests.support.fhir_export import expected_ids, exported_ids

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


def _data(client, token) -> list[str]:
    patients = []
    for n in range(3):
        p = rest_patient(client, token)
        patients.append(p["id"])
        add_order(p["id"], results=[
            {"code_system": "LN", "code": "2823-3", "code_display": "Potassium", "value_type": "NM", "value": f"4.{n}",
             "units": "mmol/L", "status": "F", "observed_at": datetime(2026, 1, 1, 10, tzinfo=timezone.utc)},
            {"code_system": "LN", "code": "2951-2", "code_display": "Sodium", "value_type": "NM", "value": "140",
             "units": "mmol/L", "status": "F"}])
    add_order(patients[0])  # an order without results: a ServiceRequest, no DiagnosticReport
    return patients


def _kick_off(client, token, query: str = "", path: str = "$export") -> str:
    resp = client.get(f"/fhir/{path}{query}", headers={**auth(token), **ASYNC})
    assert resp.status_code == 202, resp.get_data(as_text=True)
    location = resp.headers["Content-Location"]
    assert location.startswith(f"{fhir_base()}/$export-status/")
    return location.rsplit("/", 1)[1]


def _run(export_id: str) -> list[str]:
    """Every slice the export asks for, as the jobs function would receive them (one page each)."""
    outcomes, step = [], 0
    while True:
        outcomes.append(export_job.run_slice(uuid.UUID(export_id), step, budget=0))
        if outcomes[-1] != "continued":
            return outcomes
        step += 1
        with unit_of_work() as uow:  # the next step's event is in the outbox, as the broker would get it
            events = uow.session.scalars(sa.select(OutboxEvent.data).where(
                OutboxEvent.type == catalog.FHIR_EXPORT_REQUESTED,
                OutboxEvent.data["export_id"].astext == export_id)).all()
        assert {e["step"] for e in events} == set(range(step + 1))


def _download(client, token):
    def get(url: str) -> tuple[str, bytes]:
        resp = client.get(url.removeprefix(fhir_base().removesuffix("/fhir")), headers=auth(token))
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return resp.headers["Content-Type"], resp.get_data()
    return get


def test_export_in_pages_and_parts_matches_the_database(client, make_token, monkeypatch):
    monkeypatch.setattr(export_job, "PAGE", 2)
    monkeypatch.setattr(export_job, "FILE_LINES", 3)
    token = make_token("patients:read", "patients:write")
    since = datetime.now(timezone.utc) - timedelta(milliseconds=1)
    patients = _data(client, token)
    export_id = _kick_off(client, token, f"?_since={since.isoformat().replace('+00:00', 'Z')}"
                                         "&_outputFormat=application/fhir%2Bndjson")
    status = client.get(f"/fhir/$export-status/{export_id}", headers=auth(token))
    assert status.status_code == 202 and status.headers["X-Progress"] == "queued" and status.headers["Retry-After"]

    outcomes = _run(export_id)
    assert outcomes[-1] == "completed" and set(outcomes[:-1]) == {"continued"} and len(outcomes) > 4
    assert export_job.run_slice(uuid.UUID(export_id), 0, budget=0) == "stale"  # a duplicate of step 0

    done = client.get(f"/fhir/$export-status/{export_id}", headers=auth(token))
    assert done.status_code == 200 and done.mimetype == "application/json" and done.headers["Expires"]
    manifest = done.get_json()
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert manifest["request"].startswith(f"{fhir_base()}/$export?_since=")
    assert [o["type"] for o in manifest["output"]] == sorted(
        [o["type"] for o in manifest["output"]], key=["Patient", "ServiceRequest", "Observation", "DiagnosticReport"].index)
    assert max(o["count"] for o in manifest["output"]) <= 3 and len(manifest["output"]) > 4  # parts

    got = exported_ids(manifest, _download(client, token))
    expected = expected_ids(since)
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in expected.items() if v}
    assert set(expected["Patient"]) == set(patients) and len(expected["ServiceRequest"]) == 4
    assert len(expected["DiagnosticReport"]) == 3 and len(expected["Observation"]) == 6

    with unit_of_work() as uow:  # what the job wrote is audited with the patients it held
        written = uow.session.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "fhir.export.write", AuditEntry.details["export_id"].astext == export_id)).all()
        downloads = uow.session.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "fhir.export.download", AuditEntry.details["export_id"].astext == export_id)).all()
    assert {str(p) for a in written for p in a.patient_ids} == set(patients)
    assert len(downloads) == len(manifest["output"])

    # Only the key that asked sees it.
    other = make_token("patients:read")
    outcome(client.get(f"/fhir/$export-status/{export_id}", headers=auth(other)), 404, "not-found")
    outcome(client.get(manifest["output"][0]["url"].removeprefix(fhir_base().removesuffix("/fhir")),
                       headers=auth(other)), 404, "not-found")

    # Cancel (delete): 202, then the status URL is gone and so are the files.
    resp = client.delete(f"/fhir/$export-status/{export_id}", headers=auth(token))
    assert resp.status_code == 202
    outcome(client.get(f"/fhir/$export-status/{export_id}", headers=auth(token)), 404, "not-found")
    with unit_of_work() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(FhirExportFile).where(
            FhirExportFile.export_id == uuid.UUID(export_id))) == 0
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(FhirExportChunk).where(
            FhirExportChunk.file_id.in_([uuid.UUID(o["url"].rsplit("/", 1)[1]) for o in manifest["output"]]))) == 0


def test_a_cancelled_export_stops_at_its_next_slice_and_writes_nothing_more(client, make_token, monkeypatch):
    monkeypatch.setattr(export_job, "PAGE", 1)
    token = make_token("patients:read", "patients:write")
    _data(client, token)
    export_id = _kick_off(client, token, "?_type=Patient", path="Patient/$export")
    assert export_job.run_slice(uuid.UUID(export_id), 0, budget=0) == "continued"
    progress = client.get(f"/fhir/$export-status/{export_id}", headers=auth(token))
    assert progress.status_code == 202 and progress.headers["X-Progress"].startswith("1 resources written; exporting Patient")
    assert client.delete(f"/fhir/$export-status/{export_id}", headers=auth(token)).status_code == 202
    assert export_job.run_slice(uuid.UUID(export_id), 1, budget=0) == "stale"
    with unit_of_work() as uow:
        export = uow.session.get(FhirExport, uuid.UUID(export_id))
        assert export.status == "cancelled" and export.written == 1
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(FhirExportFile).where(
            FhirExportFile.export_id == export.id)) == 0


def test_a_live_lease_makes_a_second_delivery_retry_and_an_expired_export_is_gone(client, make_token):
    token = make_token("patients:read", "patients:write")
    export_id = uuid.UUID(_kick_off(client, token, "?_type=ServiceRequest"))
    with unit_of_work() as uow:  # another delivery holds this step
        uow.session.execute(sa.update(FhirExport).where(FhirExport.id == export_id).values(
            status="in-progress", lease_until=datetime.now(timezone.utc) + timedelta(minutes=1)))
    with pytest.raises(export_job.ExportRetry):
        export_job.run_slice(export_id, 0, budget=0)
    with unit_of_work() as uow:  # ... until its lease runs out (it died)
        uow.session.execute(sa.update(FhirExport).where(FhirExport.id == export_id).values(
            lease_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
    while (result := export_job.run_slice(export_id, _step(export_id), budget=0)) == "continued":
        pass
    assert result == "completed"
    assert client.get(f"/fhir/$export-status/{export_id}", headers=auth(token)).status_code == 200
    with unit_of_work() as uow:
        uow.session.execute(sa.update(FhirExport).where(FhirExport.id == export_id).values(
            expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    outcome(client.get(f"/fhir/$export-status/{export_id}", headers=auth(token)), 404, "not-found")


def _step(export_id: uuid.UUID) -> int:
    with unit_of_work() as uow:
        return uow.session.get(FhirExport, export_id).step


@pytest.mark.parametrize(("query", "headers", "field"), [
    ("", {"Accept": "application/fhir+json"}, "Prefer"),  # the IG requires respond-async
    ("?_type=Encounter", ASYNC, "_type"),
    ("?_since=2026-01-01", ASYNC, "_since"),  # a date, not an instant
    ("?_since=yesterday", ASYNC, "_since"),
    ("?_outputFormat=text/csv", ASYNC, "_outputFormat"),
    ("?_typeFilter=Observation%3Fcode%3D1", ASYNC, "_typeFilter"),
])
def test_bad_kick_offs_are_operation_outcomes_and_start_nothing(client, make_token, query, headers, field):
    token = make_token("patients:read")
    with unit_of_work() as uow:
        before = uow.session.scalar(sa.select(sa.func.count()).select_from(FhirExport))
    doc = outcome(client.get(f"/fhir/$export{query}", headers={**auth(token), **headers}), 400)
    assert field in str(doc)
    with unit_of_work() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(FhirExport)) == before


def test_export_needs_a_read_scope_and_unknown_ids_are_not_found(client, make_token):
    outcome(client.get("/fhir/$export", headers={**auth(make_token("patients:write")), **ASYNC}), 403, "forbidden")
    outcome(client.get("/fhir/$export", headers=ASYNC), 401, "login")
    token = make_token("patients:read")
    outcome(client.get(f"/fhir/$export-status/{uuid.uuid4()}", headers=auth(token)), 404, "not-found")
    outcome(client.get("/fhir/$export-status/not-a-uuid", headers=auth(token)), 404, "not-found")
    outcome(client.delete(f"/fhir/$export-status/{uuid.uuid4()}", headers=auth(token)), 404, "not-found")
    outcome(client.get(f"/fhir/$export-file/{uuid.uuid4()}", headers=auth(token)), 404, "not-found")
