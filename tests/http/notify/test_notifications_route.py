"""GET /patients/{id}/notifications: status, reason, channel and times — scoped, audited, paginated."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models import AuditEntry
from shared.notify.providers import PermanentProviderError
from shared.notify.providers.fake import FakeProvider
from shared.notify.service import NotifyRequest, notify_for_event
from tests.conftest import auth
from tests.support.notify import create_final_result, create_patient

NIGHT_IN_MADRID = datetime(2026, 6, 10, 21, 30, tzinfo=timezone.utc)


def _notify(patient_id: uuid.UUID, event_id: uuid.UUID, provider: FakeProvider) -> None:
    request = NotifyRequest(kind="results_ready", patient_id=patient_id, event_source="/patient-mgt/lis-consumer",
                            event_id=str(event_id), event_type="org.patientmgt.result.available.v1")
    notify_for_event(request, provider=provider, clock=lambda: NIGHT_IN_MADRID)


def test_lists_sent_scheduled_skipped_and_failed_notifications_newest_first(client, make_token):
    patient = create_patient(timezone_name="Europe/Madrid")
    provider = FakeProvider()
    first = create_final_result(patient.id)
    _notify(patient.id, first, provider)  # e-mail sent, SMS scheduled for the morning (quiet hours)
    second = create_final_result(patient.id)
    provider.fail_next(PermanentProviderError("MessageRejected"))
    _notify(patient.id, second, provider)  # e-mail failed, SMS scheduled

    response = client.get(f"/patients/{patient.id}/notifications", headers=auth(make_token("patients:read")))

    assert response.status_code == 200
    body = response.get_json()
    assert body["next_cursor"] is None
    items = body["items"]
    assert [(i["channel"], i["status"], i["reason"]) for i in items] == [
        ("sms", "scheduled", "quiet_hours"), ("email", "failed", "MessageRejected"),
        ("sms", "scheduled", "quiet_hours"), ("email", "sent", None)]
    sent = items[3]
    assert sent["kind"] == "results_ready" and sent["language"] == "en"
    assert sent["sent_at"] == "2026-06-10T21:30:00Z" and sent["provider_message_id"] == provider.sent[0].message_id
    assert items[0]["send_after"] == "2026-06-11T06:00:00Z" and items[0]["sent_at"] is None
    assert sent["event_type"] == "org.patientmgt.result.available.v1"
    text = response.get_data(as_text=True)
    assert patient.email not in text and patient.phone not in text and patient.given not in text


def test_pages_with_a_cursor(client, make_token):
    patient = create_patient(sms_opt_in=False)
    for _ in range(2):
        _notify(patient.id, create_final_result(patient.id), FakeProvider())
    token = make_token("patients:read")
    first = client.get(f"/patients/{patient.id}/notifications?limit=3", headers=auth(token)).get_json()
    assert len(first["items"]) == 3 and first["next_cursor"] is not None
    rest = client.get(f"/patients/{patient.id}/notifications?limit=3&before={first['next_cursor']}", headers=auth(token)).get_json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in rest["items"]}


def test_reading_notifications_is_audited(client, make_token):
    patient = create_patient()
    token = make_token("patients:read")
    assert client.get(f"/patients/{patient.id}/notifications", headers=auth(token)).status_code == 200
    with unit_of_work() as uow:
        details = uow.session.scalars(sa.select(AuditEntry.details).where(
            AuditEntry.action == "notifications.read", AuditEntry.patient_ids.contains([patient.id]))).all()
    assert details == [{"returned": 0}]


def test_needs_the_patients_read_scope(client, make_token):
    patient = create_patient()
    response = client.get(f"/patients/{patient.id}/notifications", headers=auth(make_token("lis:read")))
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert client.get(f"/patients/{patient.id}/notifications").status_code == 401


def test_an_unknown_patient_is_404(client, make_token):
    response = client.get(f"/patients/{uuid.uuid4()}/notifications", headers=auth(make_token("patients:read")))
    assert response.status_code == 404


def test_bad_query_parameters_are_422_problems(client, make_token):
    patient = create_patient()
    token = make_token("patients:read")
    for query in ("limit=0", "limit=201", "before=-1", "colour=blue", "limit=ten"):
        response = client.get(f"/patients/{patient.id}/notifications?{query}", headers=auth(token))
        assert response.status_code == 422, query
        assert response.get_json()["errors"][0]["in"] == "query"
