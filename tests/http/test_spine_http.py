"""The spine's HTTP contract through functions-framework's test client."""

import json
import uuid

import pytest
import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import AuditEntry, OutboxEvent, Patient
from tests.conftest import auth

PROBLEM = "application/problem+json"


def body(**extra):
    # A distinct family name each time: registering the same person twice is a probable duplicate (409).
    return {"name": {"family": f"Doe-{uuid.uuid4().hex[:8]}", "given": ["Jane"]}, "birth_date": "1980-05-06",
            "identifiers": [{"system": "urn:test", "value": uuid.uuid4().hex}], **extra}


def assert_problem(resp, status):
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == PROBLEM
    doc = resp.get_json()
    assert doc["status"] == status and doc["type"].startswith("https://") and doc["title"] and doc["detail"]
    return doc


def test_request_without_token_is_401_problem(client):
    doc = assert_problem(client.get(f"/patients/{uuid.uuid4()}"), 401)
    assert "Bearer" in doc["detail"]


def test_revoked_or_unknown_token_is_401_and_missing_scope_is_403(client, make_token):
    assert_problem(client.get(f"/patients/{uuid.uuid4()}", headers=auth("pmk_nope")), 401)
    reader = make_token("patients:read")
    assert_problem(client.post("/patients", json=body(), headers=auth(reader)), 403)


def test_create_then_read_persists_patient_audit_and_outbox(client, admin_token):
    resp = client.post("/patients", json=body(email="jane@example.org"), headers=auth(admin_token))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    created = resp.get_json()
    pid = created["id"]
    assert resp.headers["Location"] == f"/patients/{pid}"
    assert resp.headers["ETag"] == 'W/"1"'
    assert created["mrn"] in [i["value"] for i in created["identifiers"]]
    assert created["communication"] == {"email": False, "sms": False}

    got = client.get(f"/patients/{pid}", headers=auth(admin_token))
    assert got.status_code == 200 and got.headers["ETag"] == 'W/"1"'
    assert got.get_json() == created

    with unit_of_work() as uow:
        patient = uow.session.get(Patient, uuid.UUID(pid))
        assert patient is not None and patient.email == "jane@example.org"
        actions = [a.action for a in uow.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.patient_ids.contains([patient.id])).order_by(AuditEntry.id))]
        assert actions == ["patient.create", "patient.read"]
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent).where(OutboxEvent.subject == pid)) == 1


def test_bad_uuid_unknown_route_and_wrong_method(client, admin_token):
    assert_problem(client.get("/patients/not-a-uuid", headers=auth(admin_token)), 404)
    assert_problem(client.get("/nowhere", headers=auth(admin_token)), 404)
    resp = client.delete("/healthz")
    assert_problem(resp, 405)
    assert "GET" in resp.headers["Allow"]


def test_unknown_patient_is_404_and_audited(client, admin_token):
    missing = uuid.uuid4()
    assert_problem(client.get(f"/patients/{missing}", headers=auth(admin_token)), 404)
    with unit_of_work() as uow:
        outcomes = uow.session.scalars(sa.select(AuditEntry.outcome).where(AuditEntry.patient_ids.contains([missing]))).all()
    assert outcomes == ["not-found"]


@pytest.mark.parametrize(
    ("data", "headers", "status"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400),
        (b'{"name": NaN}', {"Content-Type": "application/json"}, 400),
        (json.dumps(body()).encode(), {"Content-Type": "text/plain"}, 415),
        (b'{"name": {"family": "Doe"}, "birth_date": "1980-01-01", "x": 1}', {"Content-Type": "application/json"}, 422),
        (b"[" + b" " * 2_000_000 + b"]", {"Content-Type": "application/json"}, 413),
    ],
)
def test_bad_bodies_get_precise_problems_and_write_nothing(client, admin_token, data, headers, status):
    with unit_of_work() as uow:
        before = uow.session.scalar(sa.select(sa.func.count()).select_from(Patient))
    assert_problem(client.post("/patients", data=data, headers={**headers, **auth(admin_token)}), status)
    with unit_of_work() as uow:
        # Other tests may insert concurrently only in other sessions; this suite runs serially.
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(Patient)) == before


def test_validation_problem_lists_each_field_without_echoing_input(client, admin_token):
    resp = client.post("/patients", json=body(phone="call 555 Jane", birth_date="2023-02-30", sex="M"),
                       headers=auth(admin_token))
    doc = assert_problem(resp, 422)
    assert {e["field"] for e in doc["errors"]} == {"phone", "birth_date", "sex"}
    assert "Jane" not in resp.get_data(as_text=True)


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_audit_route_needs_audit_scope_and_lists_patient_entries(client, admin_token, make_token):
    pid = client.post("/patients", json=body(), headers=auth(admin_token)).get_json()["id"]
    assert_problem(client.get(f"/audit?patient_id={pid}", headers=auth(make_token("patients:read"))), 403)
    resp = client.get(f"/audit?patient_id={pid}", headers=auth(make_token("audit:read")))
    assert resp.status_code == 200
    assert [i["action"] for i in resp.get_json()["items"]] == ["patient.create"]
    assert_problem(client.get("/audit?limit=100000", headers=auth(admin_token)), 422)
