"""GET /jobs/runs and GET /jobs/data-quality through the api function."""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.jobs import data_quality
from shared.jobs.runner import run_job
from shared.models import AuditEntry
from tests.conftest import auth
from tests.support.jobs_data import make_patient, unique_minute


def test_runs_are_listed_newest_first_with_their_outcome(client, admin_token):
    slot = unique_minute()
    first = run_job("lis-reconcile", slot=slot, trigger="schedule", event_id="tick-1")
    second = run_job("lis-reconcile", slot=slot + timedelta(hours=1), trigger="schedule", event_id="tick-2")
    resp = client.get("/jobs/runs?job=lis-reconcile&limit=2", headers=auth(admin_token))
    assert resp.status_code == 200
    items = resp.get_json()["items"]
    assert [i["id"] for i in items] == [str(second.run_id), str(first.run_id)]
    item = items[0]
    assert item["job"] == "lis-reconcile" and item["trigger"] == "schedule" and item["status"] == "succeeded"
    assert item["slot"].startswith((slot + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:00"))
    assert item["started_at"] and item["finished_at"] and item["error"] is None
    assert item["counts"] == {"orders_overdue": second.counts.get("orders_overdue", 0)}


def test_runs_need_the_admin_scope(client, make_token):
    assert client.get("/jobs/runs").status_code == 401
    resp = client.get("/jobs/runs", headers=auth(make_token("patients:read", "audit:read")))
    assert resp.status_code == 403


def test_bad_run_queries_are_precise_problems(client, admin_token):
    resp = client.get("/jobs/runs?job=defrag", headers=auth(admin_token))
    assert resp.status_code == 422
    body = resp.get_json()
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert [(e["field"], "unknown job" in e["message"]) for e in body["errors"]] == [("job", True)]
    assert client.get("/jobs/runs?limit=0", headers=auth(admin_token)).status_code == 422
    assert client.get("/jobs/runs?status=failed", headers=auth(admin_token)).status_code == 422


def test_the_data_quality_report_lists_ids_and_reason_codes_only(client, admin_token):
    suffix = uuid.uuid4().hex[:12]
    ids = [uuid.UUID(f"{prefix}-0000-4000-8000-{suffix}") for prefix in ("7fffffff", "80000000", "80000001")]
    with unit_of_work() as uow:
        make_patient(uow, id=ids[0], birth_date=None, family="Zamora", phone="+1 415 555 0123")
        make_patient(uow, id=ids[1], email="broken@", family="Zamora")
        make_patient(uow, id=ids[2], family="Zamora")
        data_quality.check_patients(uow, ids)

    headers = auth(admin_token)
    resp = client.get(f"/jobs/data-quality?after={uuid.UUID(int=ids[0].int - 1)}&limit=1", headers=headers)
    assert resp.status_code == 200
    page = resp.get_json()
    assert [i["patient_id"] for i in page["items"]] == [str(ids[0])]
    assert [(x["reason"], x["related_ids"]) for x in page["items"][0]["issues"]] == [
        ("birth_date_missing", []), ("phone_invalid", [])]
    assert page["next_cursor"] == str(ids[0])
    body = resp.get_data(as_text=True)  # the phone in either form; its area code alone also matches timestamps
    assert "Zamora" not in body and "415 555" not in body and "4155550123" not in body

    nxt = client.get(f"/jobs/data-quality?after={page['next_cursor']}&limit=1", headers=headers).get_json()
    assert [(i["patient_id"], [x["reason"] for x in i["issues"]]) for i in nxt["items"]] == [(str(ids[1]), ["email_invalid"])]

    only = client.get(f"/jobs/data-quality?reason=email_invalid&after={ids[0]}&limit=1", headers=headers).get_json()
    assert [i["patient_id"] for i in only["items"]] == [str(ids[1])]

    with unit_of_work() as uow:
        reads = uow.session.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "jobs.data_quality.read", AuditEntry.patient_ids.contains([ids[0]]))).all()
    assert len(reads) == 1


def test_bad_report_queries_are_precise_problems(client, admin_token, make_token):
    headers = auth(admin_token)
    assert client.get("/jobs/data-quality?reason=ugly", headers=headers).status_code == 422
    assert client.get("/jobs/data-quality?after=nope", headers=headers).status_code == 422
    assert client.get("/jobs/data-quality", headers=auth(make_token("patients:read"))).status_code == 403
