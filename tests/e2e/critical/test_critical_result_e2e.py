"""A critical result end to end, through real processes: an ORU with an HH potassium reaches lis_consumer,
notify raises the alert and texts the ward's team once (moto SNS), the jobs function escalates it when
nobody acknowledges it (notify e-mails the escalation once, moto SES), a clinician acknowledges it through
the api, and every step left its audit row. Events travel as the broker would carry the outbox rows."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa
from cloudevents.conversion import to_binary

from shared.db import unit_of_work
from shared.events import catalog
from shared.models import AuditEntry, CriticalAlert, OutboxEvent
from tests.support import lis_db
from tests.support.jobs_data import tick, unique_minute
from tests.support.lis_ingest import Feed, hl7
from tests.support.notify import notify_env, outbox_cloudevent

pytestmark = pytest.mark.e2e
LINK = "https://ward.example.org/alerts/{alert_id}"


def post_event(url: str, event) -> requests.Response:  # noqa: ANN001
    headers, body = to_binary(event)
    return requests.post(url, headers=headers, data=body, timeout=60)


def outbox_ids(event_type: str, patient_id: uuid.UUID) -> list[uuid.UUID]:
    with unit_of_work() as uow:
        return list(uow.session.scalars(sa.select(OutboxEvent.id).where(
            OutboxEvent.type == event_type, OutboxEvent.subject == str(patient_id)).order_by(OutboxEvent.seq)))


def test_an_hh_result_alerts_the_ward_once_escalates_and_is_acknowledged(start_fn, moto, make_token) -> None:
    f = Feed()
    ward_phone, lead_email = f"+1415{uuid.uuid4().int % 10**7:07d}", f"lead-{f.tag}@hosp.example.org"
    routes = {f"{f.facility}/ICU{f.tag}": {"channel": "sms", "to": ward_phone,
                                             "escalate_to": {"channel": "email", "to": lead_email}},
              f.facility: {"channel": "email", "to": f"wrong-{f.tag}@hosp.example.org"}}
    critical_env = {"CRITICAL_ALERT_ROUTES": json.dumps(routes), "CRITICAL_ALERT_LINK": LINK,
                    "CRITICAL_ALERT_ESCALATE_AFTER_SECONDS": "0"}  # due as soon as raised: nobody will acknowledge in time
    lis = start_fn("lis_consumer")
    notify = start_fn("notify", env={**notify_env(moto.url), **critical_env})
    jobs = start_fn("jobs", env=critical_env)
    api = start_fn("api")

    # 1. The LIS sends a final potassium of 7.937 mmol/L flagged HH for a patient on the ICU ward.
    oru = hl7(f.msh("ORU^R01^ORU_R01", "20260301090000"), f.pid("MRN1", name="QUILLBY^ZORIA"),
              f"PV1|1|I|ICU{f.tag}^101^A", f"ORC|RE|{f.id('PL1')}|{f.id('FI1')}",
              f"OBR|1|{f.id('PL1')}|{f.id('FI1')}|2823-3^Potassium^LN|||20260301080000",
              "OBX|1|NM|2823-3^Potassium^LN||7.937|mmol/L|3.5-5.1|HH|||F|||20260301080000")
    push = {"message": {"data": base64.b64encode(oru).decode(), "messageId": uuid.uuid4().hex,
                        "publishTime": "2026-03-01T09:00:01Z"}, "subscription": "projects/p/subscriptions/lis"}
    assert requests.post(lis.url + "/projects/p/topics/lis-inbound", json=push, timeout=60).status_code == 200
    pid = lis_db.patient_id_by_identifier(f.facility, f.id("MRN1"))
    assert pid is not None

    # 2. result.available reaches notify (twice, as a redelivery would): one alert, one result.critical event.
    [available] = outbox_ids(catalog.RESULT_AVAILABLE, pid)
    for _ in range(2):
        assert post_event(notify.url, outbox_cloudevent(available)).status_code == 200
    with unit_of_work() as uow:
        [alert] = uow.session.scalars(sa.select(CriticalAlert).where(CriticalAlert.patient_id == pid)).all()
        assert (alert.reason, alert.ward, alert.route, alert.status) == ("flag:HH", f"ICU{f.tag}", f"{f.facility}/ICU{f.tag}", "open")
    [raised] = outbox_ids(catalog.RESULT_CRITICAL, pid)

    # 3. notify texts the ward once, however often the event comes.
    for _ in range(3):
        assert post_event(notify.url, outbox_cloudevent(raised)).status_code == 200
    [sms] = moto.sms_to(ward_phone)
    link = LINK.format(alert_id=alert.id)
    assert sms["message"] == f"Critical lab result for a patient at ICU{f.tag} ({f.facility}). Open and acknowledge: {link}"
    assert moto.emails_to(lead_email) == [] and moto.emails_to(f"wrong-{f.tag}@hosp.example.org") == []

    # 4. Nobody acknowledges: the next tick escalates it (once), and notify e-mails the lead once.
    minute = unique_minute()
    for sent in (minute, minute + timedelta(minutes=1)):
        assert post_event(jobs.url, tick("critical-escalation", sent + timedelta(milliseconds=80))).status_code == 200
    [escalated] = outbox_ids(catalog.CRITICAL_ALERT_ESCALATED, pid)
    for _ in range(2):
        assert post_event(notify.url, outbox_cloudevent(escalated)).status_code == 200
    [email] = moto.emails_to(lead_email)
    assert email["subject"] == f"ESCALATED: Critical lab result at ICU{f.tag} ({f.facility})"
    assert "Potassium (2823-3)" in email["body"] and "7.937 mmol/L [HH]" in email["body"] and link in email["body"]
    for text in (sms["message"], email["subject"], email["body"]):
        assert "QUILLBY" not in text.upper() and "ZORIA" not in text.upper() and f.id("MRN1") not in text
    assert len(moto.sms_to(ward_phone)) == 1

    # 5. A clinician acknowledges it (twice: the same answer), and reads it back.
    token = make_token("patients:read", "patients:write", name=f"dr-ward-{f.tag}")
    auth = {"Authorization": f"Bearer {token}"}
    first = requests.post(f"{api.url}/critical-alerts/{alert.id}/acknowledge", headers=auth, timeout=30)
    again = requests.post(f"{api.url}/critical-alerts/{alert.id}/acknowledge", headers=auth, timeout=30)
    assert first.status_code == again.status_code == 200
    body = first.json()
    assert body["status"] == "acknowledged" and body["acknowledged_by"] == f"dr-ward-{f.tag}"
    assert again.json()["acknowledged_at"] == body["acknowledged_at"] and again.headers["ETag"] == first.headers["ETag"]
    assert [(m["level"], m["channel"], m["status"]) for m in body["messages"]] == [("alert", "sms", "sent"),
                                                                                    ("escalation", "email", "sent")]
    assert len(outbox_ids(catalog.CRITICAL_ALERT_ACKNOWLEDGED, pid)) == 1
    assert post_event(jobs.url, tick("critical-escalation", minute + timedelta(minutes=2, milliseconds=80))).status_code == 200
    assert len(outbox_ids(catalog.CRITICAL_ALERT_ESCALATED, pid)) == 1

    # 6. Every step is in the audit log, by whom it was done.
    with unit_of_work() as uow:
        rows = uow.session.execute(sa.select(AuditEntry.principal, AuditEntry.action, AuditEntry.outcome, AuditEntry.details)
                                   .where(AuditEntry.patient_ids.contains([pid]), AuditEntry.action.like("critical_alert.%"))
                                   .order_by(AuditEntry.id)).all()
    assert [(r.principal, r.action, r.outcome) for r in rows] == [
        ("system:notify", "critical_alert.raise", "success"),
        ("system:notify", "critical_alert.send", "success"),
        ("system:jobs", "critical_alert.escalate", "success"),
        ("system:notify", "critical_alert.send", "success"),
        (f"dr-ward-{f.tag}", "critical_alert.acknowledge", "success"),
        (f"dr-ward-{f.tag}", "critical_alert.acknowledge", "success"),
    ]
    assert [r.details.get("level") for r in rows if r.action == "critical_alert.send"] == ["alert", "escalation"]
    assert [r.details["first"] for r in rows if r.action == "critical_alert.acknowledge"] == [True, False]
    for proc in (lis, notify, jobs, api):
        # the value, not a log time's seconds and milliseconds (``…:07.937+00:00``)
        assert "QUILLBY" not in proc.logs().upper() and not re.search(r"(?<!\d)7\.937", proc.logs())
