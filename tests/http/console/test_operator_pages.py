"""The console's dead letters, jobs and notifications pages: what they list, and their buttons going
through the API's services (same rows changed, same audit)."""

import re
import uuid
from datetime import datetime
from urllib.parse import parse_qs, urlparse

import pytest
import sqlalchemy as sa

from shared.db import unit_of_work
from shared.events import catalog
from shared.events import dead_letters as dl
from shared.models import ApiKey, AuditEntry, DeadLetter, JobRun, OutboxEvent
from shared.models.base import utcnow
from shared.notify import store
from shared.settings import reset_settings
from tests.support.jobs_data import make_patient, runs_of
from tests.support.sink import http_sink


@pytest.fixture()
def sink(monkeypatch):
    with http_sink() as s:
        monkeypatch.setenv("K_SINK", s.url)
        monkeypatch.delenv("EVENT_SINK", raising=False)
        reset_settings()
        yield s
    monkeypatch.undo()
    reset_settings()


def _dead_letter(event_type: str, subject: str) -> uuid.UUID:
    attributes = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/patient-mgt/api", "type": event_type,
                  "subject": subject, "datacontenttype": "application/json", "knativeerrorcode": "500",
                  "knativeerrordest": "http://notify.patient-mgt.svc.cluster.local/"}
    with unit_of_work() as uow:
        row_id, outcome = dl.record(uow, attributes, {"patient_id": subject, "version": 1, "origin": "api"})
    assert outcome == "stored" and row_id is not None
    return row_id


def test_dead_letters_are_listed_without_phi_inspected_and_redriven(console, make_token, sink):
    subject = str(uuid.uuid4())
    event_type = f"org.patientmgt.test.{uuid.uuid4().hex[:8]}.v1"
    first, second, third = (_dead_letter(event_type, subject) for _ in range(3))
    known = _dead_letter(catalog.PATIENT_REGISTERED, subject)
    name = f"dl-{uuid.uuid4().hex[:8]}"
    console.sign_in(make_token("admin", name=name))
    listing = console.get("/console/dead-letters", query_string={"type": event_type})
    assert set(re.findall(r'<tr data-id="([0-9a-f-]{36})">', listing.text)) == {str(first), str(second), str(third)}
    assert subject not in listing.text  # the list names no patient and shows no data
    inspect = console.get(f"/console/dead-letters/{known}")
    assert inspect.status_code == 200 and subject in inspect.text and "notify.patient-mgt" in inspect.text

    one = console.post_form(f"/console/dead-letters/{first}", f"/console/dead-letters/{first}/redrive")
    assert one.status_code == 303 and one.headers["Location"].endswith("?outcome=redriven")
    assert "Re-driven" in console.get(one.headers["Location"]).text
    redrive_all = console.post_form(f"/console/dead-letters?type={event_type}", "/console/dead-letters/redrive-type",
                                    {"type": event_type})
    assert redrive_all.status_code == 303
    assert parse_qs(urlparse(redrive_all.headers["Location"]).query)["outcome"] == ["redriven:2,skipped:0,refused:0"]
    with unit_of_work() as uow:
        rows = {r.id: r for r in uow.session.scalars(sa.select(DeadLetter).where(DeadLetter.event_type == event_type))}
        audits = list(uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.principal == name,
                                                                     AuditEntry.action == "events.dead_letter.redrive")))
    assert all(r.redriven_at is not None and r.redrive_count == 1 for r in rows.values())
    assert len(audits) == 3 and {a.details["dead_letter_id"] for a in audits} == {str(i) for i in (first, second, third)}
    assert all(a.patient_ids == [uuid.UUID(subject)] for a in audits)
    assert sorted(sink.ids()) == sorted(rows[i].event_id for i in (first, second, third))
    nameless = console.post_form("/console/dead-letters", "/console/dead-letters/redrive-type", {"type": ""})
    assert nameless.status_code == 422 and "<code>type</code>" in nameless.text


def test_run_now_goes_through_the_runner_and_is_audited(console, make_token):
    name = f"jobs-{uuid.uuid4().hex[:8]}"
    console.sign_in(make_token("admin", name=name))
    page = console.get("/console/jobs")
    assert page.status_code == 200 and 'id="run-retention"' in page.text
    started = utcnow()
    response = console.post_form("/console/jobs", "/console/jobs/retention/run")
    assert response.status_code == 303
    run_id = parse_qs(urlparse(response.headers["Location"]).query)["run"][0]
    with unit_of_work() as uow:
        run = uow.session.get(JobRun, uuid.UUID(run_id))
        entry = uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.principal == name, AuditEntry.action == "jobs.run")).one()
    assert (run.job, run.trigger, run.status) == ("retention", "console", "succeeded") and run.started_at >= started
    assert entry.details == {"job": "retention", "run_id": run_id, "status": "succeeded", "error": None}
    shown = console.get(response.headers["Location"])
    assert 'id="outcome"' in shown.text and "succeeded" in shown.text.split('id="outcome"')[1].split("</p>")[0]
    assert console.post_form("/console/jobs", "/console/jobs/no-such-job/run").status_code == 404


def test_run_now_for_notifications_due_requests_it_from_the_jobs_function(console, make_token, sink, jobs_client):
    """The api has no provider credentials: Run now writes job.run.requested (with its audit row), the
    jobs function runs it from the Broker's delivery, and the page shows the run once it has happened."""
    name = f"jobs-{uuid.uuid4().hex[:8]}"
    console.sign_in(make_token("admin", name=name))
    assert 'id="run-notifications-due"' in console.get("/console/jobs").text
    response = console.post_form("/console/jobs", "/console/jobs/notifications-due/run")
    assert response.status_code == 303
    query = parse_qs(urlparse(response.headers["Location"]).query)
    assert query["ran"] == ["notifications-due"]
    with unit_of_work() as uow:
        entry = uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.principal == name, AuditEntry.action == "jobs.run")).one()
        row = uow.session.get(OutboxEvent, uuid.UUID(entry.details["event_id"]))
        key_id = uow.session.scalars(sa.select(ApiKey.id).where(ApiKey.name == name)).one()
    assert entry.details == {"job": "notifications-due", "run_id": None, "status": "requested", "error": None,
                             "event_id": str(row.id)}
    assert (row.type, row.subject) == (catalog.JOB_RUN_REQUESTED, None)  # about no patient
    requested_at = datetime.fromisoformat(query["requested"][0])
    assert row.data == {"job": "notifications-due", "requested_by": str(key_id),
                        "requested_at": requested_at.isoformat().replace("+00:00", "Z")}
    shown = console.get(response.headers["Location"])
    notice = shown.text.split('id="outcome"')[1].split("</p>")[0]
    assert "requested" in notice and 'id="requested-runs"' in notice and "#job-notifications-due" in notice
    with unit_of_work() as uow:
        assert runs_of(uow, "notifications-due", requested_at) == []  # requested, not run by the api

    [published] = [r for r in sink.requests if r.header("ce-id") == str(row.id)]  # the Broker delivers it to jobs
    assert jobs_client.post("/", headers=published.headers, data=published.body).status_code == 200
    with unit_of_work() as uow:
        [run] = runs_of(uow, "notifications-due", requested_at)
    assert (run.trigger, run.event_id, run.status) == ("console", str(row.id), "succeeded")
    again = console.get(response.headers["Location"])  # "see its runs"
    notice = again.text.split('id="outcome"')[1].split("</p>")[0]
    assert "it ran" in notice and "succeeded" in notice and 'id="requested-runs"' not in notice
    assert console.post_form("/console/jobs", "/console/jobs/no-such-job/run").status_code == 404


def test_failed_and_outcome_unknown_notifications_are_listed(console, make_token):
    with unit_of_work() as uow:
        patient = make_patient(uow)
        ids = {}
        for reason in ("outcome_unknown", "MessageRejected"):
            ids[reason] = uuid.uuid4()
            assert store.insert(uow, {"id": ids[reason], "patient_id": patient, "kind": "welcome", "channel": "email",
                                      "event_source": "/tests/console", "event_id": str(uuid.uuid4()),
                                      "status": "failed", "reason": reason, "attempts": 1})
    name = f"notify-{uuid.uuid4().hex[:8]}"
    console.sign_in(make_token("admin", name=name))

    def listed(show: str) -> set[str]:
        page = console.get("/console/notifications", query_string={"show": show})
        assert page.status_code == 200
        return set(re.findall(r'<tr data-id="([0-9a-f-]{36})">', page.text))

    assert {str(ids["outcome_unknown"]), str(ids["MessageRejected"])} <= listed("all")
    assert str(ids["outcome_unknown"]) in listed("outcome_unknown") and str(ids["MessageRejected"]) not in listed("outcome_unknown")
    assert str(ids["MessageRejected"]) in listed("other") and str(ids["outcome_unknown"]) not in listed("other")
    with unit_of_work() as uow:
        entries = list(uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.principal == name,
                                                                      AuditEntry.action == "notifications.read")))
    assert len(entries) == 5 and all(patient in e.patient_ids for e in entries)  # one per page shown
    overview = console.get("/console/").text
    assert 'id="notifications"' in overview and 'id="dead-letters"' in overview and 'data-job="retention"' in overview
