"""Helpers for the registry's HTTP tests (test client and real process alike)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import AuditEntry, OutboxEvent

PROBLEM = "application/problem+json"


def unique_family() -> str:
    return "Http" + uuid.uuid4().hex[:10]


def patient_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": {"family": unique_family(), "given": ["Lucía"]},
        "birth_date": "1979-11-30",
        "identifiers": [{"system": "urn:test:hospital", "value": uuid.uuid4().hex}],
    }
    body.update(overrides)
    return body


def assert_problem(resp: Any, status: int) -> dict[str, Any]:
    text = resp.get_data(as_text=True) if hasattr(resp, "get_data") else resp.text
    assert resp.status_code == status, text
    mimetype = resp.mimetype if hasattr(resp, "mimetype") else resp.headers["Content-Type"].split(";")[0]
    assert mimetype == PROBLEM
    doc = resp.get_json() if hasattr(resp, "get_json") else resp.json()
    assert doc["status"] == status and doc["type"].startswith("https://") and doc["title"] and doc["detail"]
    return doc


def error_fields(doc: dict[str, Any]) -> set[str]:
    return {e["field"] for e in doc.get("errors", [])}


def events_for(subject: Any) -> list[tuple[str, dict[str, Any]]]:
    with unit_of_work() as uow:
        return [tuple(r) for r in uow.session.execute(
            sa.select(OutboxEvent.type, OutboxEvent.data).where(OutboxEvent.subject == str(subject)).order_by(OutboxEvent.seq))]


def audit_actions(patient_id: Any) -> list[tuple[str, str]]:
    with unit_of_work() as uow:
        return [tuple(r) for r in uow.session.execute(
            sa.select(AuditEntry.action, AuditEntry.outcome)
            .where(AuditEntry.patient_ids.contains([uuid.UUID(str(patient_id))])).order_by(AuditEntry.id))]
