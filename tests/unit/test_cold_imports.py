"""Cold start: importing a function's main module (what a new instance does before its first request)
loads nothing that request does not use. Each function is imported in a fresh interpreter, as
functions-framework does, and its sys.modules compared with what must wait for first use: route
modules, OpenAPI, FHIR, the console, telemetry exporters, the Pub/Sub client, dev tooling.

SQLAlchemy's ORM is loaded by lis_consumer (its first message goes through the models), but not by
notify: its import, and its first patient.registered event (the welcome's claim, send and record on the
driver pool, shared.notify.event_sql), load no SQLAlchemy, no models and no audit module. Nor by the api: its import, and its first GET /patients/{id} with a bearer token (the key lookup and the
read with its audit row on the driver pool, shared.db.pool), load no SQLAlchemy, no models and no
pydantic schemas (docs/performance.md). Nor by jobs: its import, and its first outbox-sweep tick (the
runner's claim and finish and the sweep on the driver pool), load no SQLAlchemy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_PROGRAM = """
import importlib.util, json, sys
import functions_framework, flask
spec = importlib.util.spec_from_file_location("function_main", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(sys.modules)))
"""

# Never on any function's import: loaded when configured (exporters, Pub/Sub sink, AWS provider) or
# when a request needs them (OpenAPI, FHIR, console), or never in a deployed function (tooling).
EVERYWHERE = ("opentelemetry", "prometheus_client", "google.cloud.pubsub", "google.cloud.pubsub_v1", "boto3",
              "botocore", "shared.fhir", "shared.http.openapi", "shared.console.app", "shared.console.web",
              "shared.devtools", "shared.cli", "shared.events.publishing.pubsub_sink",
              # the notification templates' sandbox (Flask itself imports jinja2's core for its own templates)
              "jinja2.sandbox")

NOT_ON_IMPORT = {
    # Route modules load on their first request (shared.api.index); a GET /patients/{id} needs none of the others.
    "api": ("shared.services", "shared.schemas", "shared.hl7", "shared.lis", "shared.jobs", "shared.notify",
            "shared.mllp", "shared.events.publishing", "shared.api.patients", "shared.api.fhir_routes",
            "shared.api.openapi", "shared.console.routes", "sqlalchemy", "shared.models", "shared.db.orm",
            "shared.audit"),
    # PyJWT and cryptography load with the first push token to verify (PUSH_AUDIENCE set), not before.
    # The api's order service (and its schemas) is not the LIS's: they share one constant, in the model.
    "lis_consumer": ("shared.api", "shared.jobs", "shared.notify", "shared.mllp", "jwt", "cryptography",
                     "shared.services.orders", "shared.schemas.orders",
                     # the JSON event schema loads with the first application/json event (an HL7 feed never needs it)
                     "shared.lis.json_event"),
    # An event's notifications run on the driver pool; critical alerts (the ORM) load with their first event.
    "notify": ("shared.api", "shared.lis", "shared.hl7", "shared.jobs", "shared.mllp", "sqlalchemy", "shared.models",
               "shared.db.orm", "shared.audit", "shared.notify.store", "shared.critical", "shared.notify.critical"),
    # A tick or a dead letter does not need the data-quality checks or the HL7 order rendering.
    "jobs": ("shared.api", "shared.lis", "shared.hl7", "shared.notify", "shared.mllp", "shared.jobs.worker",
             "shared.jobs.orders_out", "shared.jobs.data_quality", "shared.services", "shared.schemas",
             # the runner's tables carry no foreign key: a tick maps no patient or order table
             "shared.models.patients", "shared.models.orders",
             # only a dead letter needs the store, its model and the audit trail (shared.events.dead_letter_route)
             "shared.events.dead_letters", "shared.models.dead_letters", "shared.audit", "shared.auth",
             # routing by type needs the names (shared.events.type_names), not the payload models
             "shared.events.catalog",
             # the consumer boundary's claim (shared.consumer) loads the ORM with the first broker event
             "sqlalchemy", "shared.models", "shared.db.orm"),
}


def _imported(function: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run([sys.executable, "-c", _PROGRAM, str(ROOT / "functions" / function / "main.py")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


# A cold api's first GET /patients/{id} with a bearer token loads its route module, patient_sql and the
# driver pool, and none of these.
FIRST_READ_NEVER = ("sqlalchemy", "shared.models", "shared.schemas", "shared.db.orm", "shared.audit",
                    "shared.services.patients", "shared.services.search", "shared.api.patients")

_FIRST_READ = """
import json, os, sys
from functions_framework import create_app
app = create_app(target="api", source=sys.argv[1], signature_type="http")
response = app.test_client().get("/patients/" + os.environ["PROBE_PATIENT"],
                                 headers={"Authorization": "Bearer " + os.environ["PROBE_TOKEN"]})
print(json.dumps([response.status_code, sorted(sys.modules)]))
"""


def _loaded(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def _first_request(function: str, program: str, **probe: str) -> tuple[int, set[str]]:
    """Run `program` (a first request through functions-framework's app) in a fresh interpreter with the
    function's production environment (its manifest) and `probe`; its status and sys.modules after it."""
    from bench.procs import production_env  # noqa: PLC0415

    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | production_env(function) | probe
    out = subprocess.run([sys.executable, "-c", program, str(ROOT / "functions" / function / "main.py")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    status, modules = json.loads(out.stdout.strip().splitlines()[-1])
    return status, set(modules)


@pytest.mark.parametrize("function", sorted(NOT_ON_IMPORT))
def test_importing_a_function_loads_only_what_its_first_request_uses(function):
    modules = _imported(function)
    assert "shared.db" in modules  # the check sees the function's own imports
    assert _loaded(modules, EVERYWHERE + NOT_ON_IMPORT[function]) == []


def test_a_cold_api_serves_its_first_patient_read_without_sqlalchemy(database_url, make_token):
    from shared.auth import SYSTEM_CLI  # noqa: PLC0415
    from shared.services import patient_sql  # noqa: PLC0415
    from tests.http.registry.support import patient_body  # noqa: PLC0415
    from shared.schemas.patients import PatientCreate  # noqa: PLC0415

    patient = patient_sql.register_patient(SYSTEM_CLI, PatientCreate.model_validate_json(json.dumps(patient_body())))

    # the api's production environment (its manifest: the Prometheus exporter and its queue gauges on)
    status, modules = _first_request("api", _FIRST_READ, PROBE_PATIENT=patient["id"],
                                     PROBE_TOKEN=make_token("patients:read"), DATABASE_URL=database_url)
    assert status == 200
    assert "opentelemetry.sdk.metrics" in modules  # the manifest's metrics exporter was on
    assert "shared.db.pool" in modules and "shared.api.patient_read" in modules  # the check sees the request's imports
    configured = ("opentelemetry", "prometheus_client")  # the exporter the manifest configures loads on first use
    assert _loaded(modules, tuple(p for p in EVERYWHERE if p not in configured) + FIRST_READ_NEVER) == []


# A cold lis_consumer's first message — an 8-OBX ORU^R01 for a patient it has never seen, as the cold-start
# probe sends — creates the patient, its version, the order and results without these: the registry's
# patient and merge services, the API's schemas and e-mail validation, the push token's JWT stack.
FIRST_LIS_MESSAGE_NEVER = ("shared.schemas", "shared.services.patients", "shared.services.merge",
                           "shared.services.history", "email_validator", "jwt", "cryptography", "shared.lis.json_event")

_FIRST_PUSH = """
import json, os, sys
from functions_framework import create_app
app = create_app(target="lis_consumer", source=sys.argv[1], signature_type="cloudevent")
response = app.test_client().post("/", data=os.environ["PROBE_BODY"], headers={"Content-Type": "application/json"})
print(json.dumps([response.status_code, sorted(sys.modules)]))
"""


def test_a_cold_lis_consumer_stores_a_new_patient_without_the_registry_services(database_url):
    import sqlalchemy as sa  # noqa: PLC0415

    from bench.oru import EIGHT_OBX_PANEL, messages, push_body  # noqa: PLC0415
    from shared.auth import SYSTEM_CLI  # noqa: PLC0415
    from shared.db import get_engine  # noqa: PLC0415
    from shared.services import patient_sql  # noqa: PLC0415

    namespace = "C" + uuid.uuid4().hex[:6].upper()
    raw = messages(1, namespace, patients=1, panel=EIGHT_OBX_PANEL)[0]
    body = json.dumps(push_body(raw, uuid.uuid4().hex, datetime.now(timezone.utc)))
    status, modules = _first_request("lis_consumer", _FIRST_PUSH, PROBE_BODY=body, DATABASE_URL=database_url)
    assert status == 200
    assert "shared.lis.patients" in modules and "shared.lis.sql" in modules  # the request's imports are seen
    assert _loaded(modules, FIRST_LIS_MESSAGE_NEVER) == []
    with get_engine().connect() as conn:
        found = conn.execute(sa.text(
            "SELECT m.status, m.patient_id, v.snapshot, v.change FROM lis_messages m "
            "JOIN resource_versions v ON v.resource_type = 'patient' AND v.resource_id = m.patient_id "
            "WHERE m.control_id LIKE :ns"), {"ns": namespace + "%"}).all()
    assert [(row.status, row.change) for row in found] == [("processed", "lis-create")]
    # the snapshot built without the schemas is the document the API serves for that patient
    assert found[0].snapshot == json.loads(patient_sql.read_patient(SYSTEM_CLI, found[0].patient_id).json)


# Nor SQLAlchemy at all: the fast path runs as SQL text on the driver pool (shared.lis.sql, shared.db.driver_uow),
# for a new patient's first ORU (the cold-start probe's) as for a known patient's.
FIRST_ORU_NEVER = ("sqlalchemy", "shared.models", "shared.db.orm", "shared.direct_sql", "shared.audit",
                   "shared.services.versions", "shared.services.duplicate_flags")


def test_a_cold_lis_consumer_applies_an_oru_of_a_new_and_of_a_known_patient_without_sqlalchemy(database_url):
    import sqlalchemy as sa  # noqa: PLC0415

    from bench.oru import EIGHT_OBX_PANEL, messages, push_body  # noqa: PLC0415
    from shared.db import get_engine  # noqa: PLC0415

    namespace = "K" + uuid.uuid4().hex[:6].upper()
    first, second = messages(2, namespace, patients=1, panel=EIGHT_OBX_PANEL)  # one patient: new, then known
    for raw in (first, second):
        body = json.dumps(push_body(raw, uuid.uuid4().hex, datetime.now(timezone.utc)))
        status, modules = _first_request("lis_consumer", _FIRST_PUSH, PROBE_BODY=body, DATABASE_URL=database_url)
        assert status == 200
        assert {"shared.lis.sql", "shared.db.driver_uow", "shared.db.pool"} <= modules  # the request's imports are seen
        assert _loaded(modules, FIRST_ORU_NEVER) == []
    with get_engine().connect() as conn:
        found = conn.execute(sa.text(
            "SELECT m.status, m.patient_id, (SELECT count(*) FROM lab_results r WHERE r.lis_message_id = m.id) AS results "
            "FROM lis_messages m WHERE m.control_id LIKE :ns ORDER BY m.control_id"), {"ns": namespace + "%"}).all()
    assert [(row.status, row.results) for row in found] == [("processed", 8), ("processed", 8)]
    assert found[0].patient_id == found[1].patient_id is not None


def test_the_jobs_function_routes_every_order_action_to_the_lis():
    """The order event types are listed in the jobs consumer without importing orders_out: the same set."""
    from shared.jobs import orders_out  # noqa: PLC0415
    from shared.jobs.consumer import dispatcher  # noqa: PLC0415

    order_handlers = {t for t, h in dispatcher.handlers.items() if h.__name__ == "send_order_to_lis"}
    assert order_handlers == set(orders_out.ACTIONS)


# A cold jobs function's first PingSource tick — outbox-sweep, every minute, through the runner's claim and
# the sweep — loads none of these: the event payload models, the dead-letter store, the audit trail, and no
# SQLAlchemy at all (the claim, the finish and the sweep's statements run on the driver pool).
FIRST_TICK_NEVER = ("shared.events.catalog", "shared.events.dead_letters", "shared.audit", "shared.auth",
                    "shared.jobs.worker", "shared.models.patients",
                    "sqlalchemy", "shared.models", "shared.db.orm")

_FIRST_TICK = """
import json, os, sys
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from functions_framework import create_app
app = create_app(target="jobs", source=sys.argv[1], signature_type="cloudevent")
event = CloudEvent({"type": "dev.knative.sources.ping", "source": "/apis/v1/namespaces/patient-mgt/pingsources/outbox-sweep",
                    "time": os.environ["PROBE_TIME"], "datacontenttype": "application/json"}, {"job": "outbox-sweep"})
headers, body = to_binary(event)
response = app.test_client().post("/", headers=headers, data=body)
print(json.dumps([response.status_code, sorted(sys.modules)]))
"""


def test_a_cold_jobs_function_runs_its_first_tick_without_the_event_models(database_url):
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.db import get_engine  # noqa: PLC0415
    from tests.support.jobs_data import unique_minute  # noqa: PLC0415

    minute = unique_minute()
    status, modules = _first_request("jobs", _FIRST_TICK, PROBE_TIME=minute.isoformat(), DATABASE_URL=database_url)
    assert status == 200
    # the tick's imports are seen: the job, the sweep, the driver pool
    assert {"shared.jobs.outbox_sweep", "shared.events.publishing.sweep", "shared.db.pool"} <= modules
    assert _loaded(modules, FIRST_TICK_NEVER) == []
    assert "sqlalchemy" not in modules
    with get_engine().connect() as conn:
        statuses = conn.execute(sa.text("SELECT status || coalesce(' ' || error_code, '') FROM job_runs "
                                        "WHERE job = 'outbox-sweep' AND slot = :slot"),
                                {"slot": minute}).scalars().all()
    # the sweep ran to its end: with other tests' outbox rows pending and no sink configured it reports no_sink
    assert statuses in (["succeeded"], ["failed no_sink"])


def test_a_cold_jobs_tick_publishes_what_the_immediate_publish_missed_without_sqlalchemy(database_url, monkeypatch):
    """With a sink configured (as in production: the SinkBinding's K_SINK), the cold tick's sweep claims,
    sends and records the outbox rows waiting for it, oldest first, on the driver pool alone."""
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.db import get_engine, unit_of_work  # noqa: PLC0415
    from shared.events import type_names  # noqa: PLC0415
    from shared.events.outbox import emit  # noqa: PLC0415
    from shared.settings import reset_settings  # noqa: PLC0415
    from tests.support.event_samples import sample_data  # noqa: PLC0415
    from tests.support.jobs_data import unique_minute  # noqa: PLC0415
    from tests.support.sink import http_sink  # noqa: PLC0415

    for name in ("K_SINK", "EVENT_SINK"):  # no sink in this process: the rows wait unpublished
        monkeypatch.delenv(name, raising=False)
    reset_settings()
    subject = uuid.uuid4()
    with unit_of_work() as uow:
        ids = [emit(uow, t, subject, sample_data(t, subject)) for t in (type_names.PATIENT_REGISTERED,
                                                                        type_names.PATIENT_UPDATED)]
    minute = unique_minute()
    with http_sink() as sink:
        status, modules = _first_request("jobs", _FIRST_TICK, PROBE_TIME=minute.isoformat(), DATABASE_URL=database_url,
                                         K_SINK=sink.url)
    assert status == 200
    assert "shared.events.publishing.http_sink" in modules  # the sweep had a publisher
    assert "sqlalchemy" not in modules
    mine = [str(i) for i in ids]
    assert [i for i in sink.ids() if i in mine] == mine  # each once, the patient's events in order
    with get_engine().connect() as conn:
        published = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE id = ANY(:ids) AND published_at IS NOT NULL "
                                         "AND attempts = 1"), {"ids": ids}).scalar()
        [(run_status, counts)] = conn.execute(sa.text("SELECT status, counts FROM job_runs WHERE job = 'outbox-sweep' "
                                                      "AND slot = :slot"), {"slot": minute}).all()
    assert published == 2
    assert run_status == "succeeded" and counts["published"] >= 2


# A cold notify's first patient.registered event — what wakes it most (every registration), as the cold-start
# probe sends it — claims the welcome's rows, sends the e-mail (the console provider, as the bench runs it)
# and records the outcome with its audit rows, without these: SQLAlchemy, the models, the ORM's audit and
# notification store, the critical alerts.
FIRST_WELCOME_NEVER = ("sqlalchemy", "shared.models", "shared.db.orm", "shared.audit", "shared.notify.store",
                       "shared.critical", "shared.notify.critical", "shared.services", "shared.schemas")

_FIRST_EVENT = """
import json, os, sys
from functions_framework import create_app
app = create_app(target="notify", source=sys.argv[1], signature_type="cloudevent")
response = app.test_client().post("/", data=os.environ["PROBE_BODY"],
                                  headers={"Content-Type": "application/cloudevents+json"})
print(json.dumps([response.status_code, sorted(sys.modules)]))
"""


def test_a_cold_notify_sends_its_first_welcome_without_sqlalchemy(database_url, tmp_path):
    from shared.events import catalog  # noqa: PLC0415
    from tests.support.notify import create_patient, notification_rows  # noqa: PLC0415

    patient = create_patient(sms_opt_in=False)  # e-mail only: what quiet hours would do to an SMS is not this test's
    body = json.dumps({"specversion": "1.0", "id": str(patient.registered_event_id), "source": "/patient-mgt/api",
                       "type": catalog.PATIENT_REGISTERED, "datacontenttype": "application/json",
                       "data": {"patient_id": str(patient.id), "version": 1, "origin": "api"}})
    status, modules = _first_request("notify", _FIRST_EVENT, PROBE_BODY=body, DATABASE_URL=database_url,
                                     DATA_DIR=str(tmp_path), NOTIFY_PROVIDER="console")
    assert status == 200
    # the event's imports are seen: the statements, the provider, the templates, the pool
    assert {"shared.notify.event_sql", "shared.notify.providers.console", "jinja2.sandbox", "shared.db.pool"} <= modules
    assert _loaded(modules, FIRST_WELCOME_NEVER) == []
    assert [(r.channel, r.status, r.reason) for r in notification_rows(event_id=patient.registered_event_id)] == [
        ("email", "sent", None), ("sms", "skipped", "no_consent")]
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


# A cold notify's first result.available event for results that are not critical — what most lab results
# are — checks them with one SQL statement (shared.critical.check) and sends the results-ready message
# without these: raising a critical alert is the ORM's (shared.critical.alerts), only when one is due.
FIRST_RESULT_NEVER = ("sqlalchemy", "shared.models", "shared.db.orm", "shared.audit", "shared.notify.store",
                      "shared.critical.alerts", "shared.services", "shared.schemas")


def test_a_cold_notify_answers_its_first_result_event_without_sqlalchemy(database_url, tmp_path):
    from tests.support.notify import create_final_result, create_patient, notification_rows, outbox_cloudevent  # noqa: PLC0415

    patient = create_patient(sms_opt_in=False)
    event_id = create_final_result(patient.id)
    event = outbox_cloudevent(event_id)
    body = json.dumps({"specversion": "1.0", **{k: event[k] for k in ("id", "source", "type", "subject")},
                       "datacontenttype": "application/json", "data": event.get_data()})
    status, modules = _first_request("notify", _FIRST_EVENT, PROBE_BODY=body, DATABASE_URL=database_url,
                                     DATA_DIR=str(tmp_path), NOTIFY_PROVIDER="console")
    assert status == 200
    assert {"shared.critical.check", "shared.notify.event_sql", "shared.notify.providers.console"} <= modules
    assert _loaded(modules, FIRST_RESULT_NEVER) == []
    assert [(r.channel, r.status, r.reason) for r in notification_rows(event_id=event_id)] == [
        ("email", "sent", None), ("sms", "skipped", "no_consent")]


# The three PingSources that fire every minute (outbox-sweep, notifications-due, critical-escalation) reach a
# cold jobs instance together: with nothing due — most minutes — none of them loads SQLAlchemy. The two
# ORM jobs ask first, with one statement on the driver pool (shared.notify.due_check, shared.critical.check).
_MINUTE_TICKS = """
import json, os, sys
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from functions_framework import create_app
app = create_app(target="jobs", source=sys.argv[1], signature_type="cloudevent")
client = app.test_client()
statuses = []
for job in ("outbox-sweep", "notifications-due", "critical-escalation"):
    event = CloudEvent({"type": "dev.knative.sources.ping", "source": f"/apis/v1/namespaces/patient-mgt/pingsources/{job}",
                        "time": os.environ["PROBE_TIME"], "datacontenttype": "application/json"}, {"job": job})
    headers, body = to_binary(event)
    statuses.append(client.post("/", headers=headers, data=body).status_code)
print(json.dumps([statuses, sorted(sys.modules)]))
"""


def test_a_cold_jobs_instance_runs_the_three_minute_ticks_with_nothing_due_without_sqlalchemy(database_url):
    import sqlalchemy as sa  # noqa: PLC0415

    from shared.migrate import migrate  # noqa: PLC0415
    from tests.support.database import admin_url, create_database, drop_database  # noqa: PLC0415
    from tests.support.jobs_data import unique_minute  # noqa: PLC0415

    # A database of its own: other tests leave notifications and alerts due in the shared one.
    url = create_database(admin_url(), prefix="pmcold")
    engine = sa.create_engine(url)
    try:
        migrate(engine)
        minute = unique_minute()
        statuses, modules = _first_request("jobs", _MINUTE_TICKS, PROBE_TIME=minute.isoformat(), DATABASE_URL=url)
        assert statuses == [200, 200, 200]
        assert {"shared.jobs.notifications_due", "shared.notify.due_check", "shared.jobs.critical_escalation",
                "shared.critical.check"} <= modules  # the ticks' checks are seen
        assert _loaded(modules, FIRST_TICK_NEVER + ("shared.notify.due", "shared.notify.store",
                                                    "shared.critical.alerts")) == []
        with engine.connect() as conn:
            runs = conn.execute(sa.text("SELECT job, status, counts FROM job_runs WHERE slot = :slot ORDER BY job"),
                                {"slot": minute}).all()
        assert [(r.job, r.status) for r in runs] == [
            ("critical-escalation", "succeeded"), ("notifications-due", "succeeded"), ("outbox-sweep", "succeeded")]
        assert runs[0].counts == {"escalated": 0}
    finally:
        engine.dispose()
        drop_database(admin_url(), url)
