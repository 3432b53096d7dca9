"""The four function images, run as knative/app/services.yaml runs them (`make image-test`).

Each image built by `make images` is started with podman the way its Knative revision starts it
(tests/support/containers.py: uid 10001, read-only root with an in-memory /tmp, no capabilities,
the Service's env and the ConfigMap, PORT and K_* injected, its resource limits), against a fresh
database on the machine's PostgreSQL. Each function gets its own run: probe, one real request whose
resulting state is read back from the database (and moto, and the broker stand-in), then SIGTERM.
The tests assert on what each run recorded. A second run of each image with a writable root shows
what, if anything, the process writes outside /tmp (podman's diff of the container's own layer).

Knative gives a revision's pod a terminationGracePeriodSeconds equal to its timeoutSeconds; the
runtime kills the process when it has not exited by then (exit code 137 here).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.support import containers
from tests.support.lis_delivery import push
from tests.support.notify import Moto, create_patient
from tests.support.sink import Sink
from tests.support.waiting import wait_for
from tools.images import artifacts, podman

pytestmark = pytest.mark.images

# function folder -> Knative Service
SERVICES = {"api": "api", "lis_consumer": "lis-consumer", "notify": "notify", "jobs": "jobs"}
LIS_PATH = "/projects/patient-mgt-local/topics/lis-inbound"
BAD_SEVERITIES = {"WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY"}
CGROUP_LIMITS = {  # cgroup v2 file, cgroup v1 file
    "memory": ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    "cpu": ("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
}


@dataclass
class Run:
    """What one container did, from start to exit."""

    service: str
    probe: dict[str, Any] | None
    probe_response: requests.Response | None
    observed: dict[str, Any] = field(default_factory=dict)
    cgroup: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None
    logs: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    ready_seconds: float | None = None


def oru(tag: str) -> bytes:
    return "\r".join([
        f"MSH|^~\\&|LIS|EVTLAB|PMGT|HOSP|20260301120000||ORU^R01^ORU_R01|IMG{tag}|P|2.5.1",
        f"PID|1||IMG{tag}^^^EVTLAB^MR||Tester^Eve||19800101|F",
        f"ORC|RE|PL{tag}|FI{tag}",
        f"OBR|1|PL{tag}|FI{tag}|2345-7^Glucose^LN|||20260301110000",
        "OBX|1|NM|2345-7^Glucose^LN||95|mg/dL|70-99|N|||F|||20260301115500",
    ]).encode() + b"\r"


def _broker_got(broker: Sink, event_type: str, subject: str | None = None, event_id: str | None = None) -> list[Any]:
    with broker.lock:
        received = list(broker.requests)
    return [r for r in received if r.header("ce-type") == event_type
            and (subject is None or r.header("ce-subject") == subject)
            and (event_id is None or r.header("ce-id") == event_id)]


# --- what each function is asked to do -------------------------------------------------------


def exercise_api(c: containers.Container, broker: Sink, _moto: Moto) -> dict[str, Any]:
    from shared.auth import create_api_key  # noqa: PLC0415
    from shared.db import unit_of_work  # noqa: PLC0415
    from shared.models import Patient  # noqa: PLC0415

    with unit_of_work() as uow:
        _key, token = create_api_key(uow, f"image-test-{uuid.uuid4().hex[:8]}", ["patients:read", "patients:write"])
    tag = uuid.uuid4().hex[:8]
    body = {"name": {"family": f"Imagetest{tag}", "given": ["Ama"]}, "birth_date": "1990-05-17",
            "email": f"img.{tag}@example.org", "communication": {"email": True, "sms": False}}
    seen: dict[str, Any] = {"family": body["name"]["family"]}
    seen["anonymous_write"] = requests.post(f"{c.url}/patients", json=body, timeout=30)
    auth = {"Authorization": f"Bearer {token}"}
    seen["write"] = created = requests.post(f"{c.url}/patients", json=body, headers=auth, timeout=30)
    if created.status_code == 201:
        patient_id = created.json()["id"]
        seen["read"] = requests.get(f"{c.url}/patients/{patient_id}", headers=auth, timeout=30)
        with unit_of_work() as uow:
            seen["stored_family"] = uow.session.scalar(sa.select(Patient.family).where(Patient.id == uuid.UUID(patient_id)))
        seen["published"] = wait_for(lambda: _broker_got(broker, "org.patientmgt.patient.registered.v1", subject=patient_id),
                                     what="patient.registered at K_SINK")
    return seen


def exercise_lis_consumer(c: containers.Container, _broker: Sink, _moto: Moto) -> dict[str, Any]:
    from shared.db import unit_of_work  # noqa: PLC0415
    from shared.models import LabResult, PatientIdentifier  # noqa: PLC0415
    from shared.models.lis import LisMessage  # noqa: PLC0415

    tag = uuid.uuid4().hex[:10].upper()
    message_id = str(uuid.uuid4().int)[:16]
    headers, body = push(oru(tag), message_id)
    seen: dict[str, Any] = {"response": requests.post(c.url + LIS_PATH, data=body, headers=headers, timeout=60)}
    with unit_of_work() as uow:
        seen["messages"] = [(m.status, m.control_id) for m in uow.session.scalars(
            sa.select(LisMessage).where(LisMessage.pubsub_message_id == message_id))]
        patient_id = uow.session.scalar(sa.select(PatientIdentifier.patient_id).where(PatientIdentifier.value == f"IMG{tag}"))
        seen["results"] = [] if patient_id is None else [(r.code, r.value) for r in uow.session.scalars(
            sa.select(LabResult).where(LabResult.patient_id == patient_id))]
    seen["control_id"] = f"IMG{tag}"
    return seen


def exercise_notify(c: containers.Container, _broker: Sink, moto: Moto) -> dict[str, Any]:
    from shared.db import unit_of_work  # noqa: PLC0415
    from shared.events.publishing.envelope import from_outbox_row, to_http_binary  # noqa: PLC0415
    from shared.models import OutboxEvent  # noqa: PLC0415
    from tests.support.notify import notification_rows  # noqa: PLC0415

    patient = create_patient(sms_opt_in=False, with_phone=False)
    with unit_of_work() as uow:
        row = uow.session.get(OutboxEvent, patient.registered_event_id)
        headers, body = to_http_binary(from_outbox_row(row))  # what the broker delivers (binary mode)
    seen: dict[str, Any] = {"response": requests.post(c.url + "/", data=body, headers=headers, timeout=60)}
    seen["notifications"] = [(n.kind, n.channel, n.status) for n in notification_rows(event_id=patient.registered_event_id)]
    seen["emails"] = len(moto.emails_to(patient.email or ""))
    return seen


def exercise_jobs(c: containers.Container, broker: Sink, _moto: Moto) -> dict[str, Any]:
    from shared.db import unit_of_work  # noqa: PLC0415
    from shared.devtools.devrouter import manifests  # noqa: PLC0415
    from shared.events import catalog  # noqa: PLC0415
    from shared.events.outbox import emit  # noqa: PLC0415
    from shared.events.publishing import OutgoingEvent  # noqa: PLC0415
    from shared.events.publishing.envelope import to_http_binary  # noqa: PLC0415
    from shared.models import OutboxEvent  # noqa: PLC0415
    from tests.support.event_samples import sample_data  # noqa: PLC0415

    subject = uuid.uuid4()
    with unit_of_work() as uow:  # this process has no K_SINK: the row waits for the sweep
        event_id = emit(uow, catalog.PATIENT_UPDATED, subject, sample_data(catalog.PATIENT_UPDATED, subject))
    (tick,) = [p for p in manifests.load().pingsources if p.name == "outbox-sweep"]
    attributes = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": tick.source, "type": "dev.knative.sources.ping",
                  "time": datetime.now(timezone.utc).isoformat()}
    if tick.content_type:
        attributes["datacontenttype"] = tick.content_type
    headers, body = to_http_binary(OutgoingEvent(attributes, tick.data))
    seen: dict[str, Any] = {"response": requests.post(c.url + "/", data=body, headers=headers, timeout=120)}
    with unit_of_work() as uow:
        seen["published_at"] = uow.session.scalar(sa.select(OutboxEvent.published_at).where(OutboxEvent.id == event_id))
    seen["at_broker"] = len(_broker_got(broker, catalog.PATIENT_UPDATED, event_id=str(event_id)))
    return seen


EXERCISES = {"api": exercise_api, "lis_consumer": exercise_lis_consumer, "notify": exercise_notify, "jobs": exercise_jobs}


# --- runs ------------------------------------------------------------------------------------


def _cgroup_limits(c: containers.Container) -> dict[str, str]:
    found = {}
    for name, paths in CGROUP_LIMITS.items():
        out = podman("exec", c.name, "cat", *paths, check=False, capture=True).stdout.split()
        found[name] = " ".join(out)
    return found


class Runs:
    """Each image run once read-only (as deployed) and once writable (to see what it writes); cached."""

    def __init__(self, ctx: containers.PodContext, broker: Sink, moto: Moto) -> None:
        self.ctx, self.broker, self.moto = ctx, broker, moto
        self.cache: dict[tuple[str, bool], Any] = {}

    def function(self, folder: str, *, read_only: bool = True) -> Run:
        key = (folder, read_only)
        if key not in self.cache:
            self.migration()  # the functions need the schema
            self.cache[key] = self._run(folder, read_only)
        return self.cache[key]

    def _run(self, folder: str, read_only: bool) -> Run:
        service = containers.services()[SERVICES[folder]]
        (spec,) = service["spec"]["template"]["spec"]["containers"]
        probe = spec.get("readinessProbe")
        c = containers.start_service(service, self.ctx, read_only=read_only)
        run = Run(service=SERVICES[folder], probe=probe, probe_response=None)
        try:
            run.probe_response = containers.wait_ready(c, probe)
            run.ready_seconds = c.ready_seconds
            if read_only:
                run.cgroup = _cgroup_limits(c)
            run.observed = EXERCISES[folder](c, self.broker, self.moto)
            run.exit_code = c.terminate()
            run.logs = c.logs()
            run.written = c.written()
        finally:
            if not run.logs:
                run.logs = c.logs()
            c.remove()
        return run

    def migration(self, *, read_only: bool = True) -> dict[str, Any]:
        key = ("migrate", read_only)
        if not read_only:
            self.migration()  # the writable run comes second: it finds the schema current
        if key not in self.cache:
            from shared.db import get_engine  # noqa: PLC0415
            from shared.migrate import pending_revisions  # noqa: PLC0415

            before = pending_revisions(get_engine())
            c, code = containers.run_job(containers.migration_job(), self.ctx, read_only=read_only)
            try:
                self.cache[key] = {"pending_before": before, "exit_code": code, "logs": c.logs(), "written": c.written(),
                                   "pending_after": pending_revisions(get_engine())}
            finally:
                c.remove()
        return self.cache[key]


@pytest.fixture(scope="module")
def runs(built_images: None, pod_context: containers.PodContext, broker: Sink, moto: Moto) -> Runs:
    return Runs(pod_context, broker, moto)


def log_entries(lines: list[str]) -> list[dict[str, Any]]:
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            raise AssertionError(f"a log line that is not JSON: {line!r}") from None
        assert isinstance(entry, dict) and "severity" in entry, f"a log line without severity: {line!r}"
        entries.append(entry)
    return entries


# --- the images ------------------------------------------------------------------------------


def test_the_four_images_differ_only_in_the_functions_own_layers(built_images: None) -> None:
    """Base, user and venv are one set of layers: a registry stores them once, a node pulls them once."""
    layers = {a.image: json.loads(podman("image", "inspect", "--format", "{{json .RootFS.Layers}}", a.image,
                                         capture=True).stdout) for a in artifacts()}
    shared = os.path.commonprefix(list(layers.values()))
    assert {image: len(own) - len(shared) for image, own in layers.items()} == {image: 2 for image in layers}  # folder, bytecode


# --- the migration Job -------------------------------------------------------------------------


def test_the_migration_command_of_the_jobs_image_migrates_a_fresh_database(runs: Runs) -> None:
    migration = runs.migration()
    assert migration["pending_before"], "the database was not fresh"
    assert migration["exit_code"] == 0, "\n".join(migration["logs"])
    assert migration["pending_after"] == []
    # One line for the operator (the CLI's result), then nothing but clean JSON log lines.
    result, *rest = migration["logs"]
    assert result.startswith("applied ") and "migration(s)" in result, migration["logs"]
    assert not [e for e in log_entries(rest) if e["severity"] in BAD_SEVERITIES]


# --- each function, as its Service runs it ---------------------------------------------------


@pytest.mark.parametrize("folder", SERVICES)
def test_each_function_answers_its_readiness_probe(runs: Runs, folder: str) -> None:
    run = runs.function(folder)
    if run.probe and "httpGet" in run.probe:
        assert run.probe_response is not None and run.probe_response.status_code == 200
        assert run.probe["httpGet"]["path"] == "/readyz" and run.probe_response.json() == {"status": "ready"}
    else:  # Knative's default: the container port accepts a TCP connection
        assert run.probe_response is None and run.ready_seconds is not None


def test_the_api_serves_an_authenticated_write_and_read(runs: Runs) -> None:
    seen = runs.function("api").observed
    assert seen["anonymous_write"].status_code == 401
    assert seen["write"].status_code == 201, seen["write"].text
    assert seen["read"].status_code == 200 and seen["read"].json()["name"]["family"] == seen["family"]
    assert seen["stored_family"] == seen["family"]
    assert len(seen["published"]) == 1  # patient.registered reached K_SINK after the commit


def test_lis_consumer_applies_an_oru_push_body(runs: Runs) -> None:
    seen = runs.function("lis_consumer").observed
    assert seen["response"].status_code == 200, seen["response"].text
    assert seen["messages"] == [("processed", seen["control_id"])]
    assert seen["results"] == [("2345-7", "95")]


def test_notify_accepts_a_patient_registered_cloudevent_and_sends_the_welcome(runs: Runs) -> None:
    seen = runs.function("notify").observed
    assert seen["response"].status_code == 200, seen["response"].text
    assert seen["notifications"] == [("welcome", "email", "sent"), ("welcome", "sms", "skipped")]  # no SMS consent
    assert seen["emails"] == 1


def test_jobs_accepts_a_pingsource_event_and_sweeps_the_outbox(runs: Runs) -> None:
    seen = runs.function("jobs").observed
    assert seen["response"].status_code == 200, seen["response"].text
    assert seen["published_at"] is not None
    assert seen["at_broker"] == 1


@pytest.mark.parametrize("folder", SERVICES)
def test_every_log_line_is_json_and_none_is_a_warning_or_worse(runs: Runs, folder: str) -> None:
    run = runs.function(folder)
    entries = log_entries(run.logs)
    assert entries, "the function logged nothing (not even its requests)"
    assert [e for e in entries if e["severity"] in BAD_SEVERITIES] == []


@pytest.mark.parametrize("folder", SERVICES)
def test_each_function_stops_cleanly_on_sigterm_within_its_grace_period(runs: Runs, folder: str) -> None:
    assert runs.function(folder).exit_code == 0  # 137: still running when the grace period ended


@pytest.mark.parametrize("folder", SERVICES)
def test_the_services_resource_limits_apply_to_the_container(runs: Runs, folder: str) -> None:
    service = containers.services()[SERVICES[folder]]
    (spec,) = service["spec"]["template"]["spec"]["containers"]
    limits = spec["resources"]["limits"]
    cgroup = runs.function(folder).cgroup
    memory = str(containers._quantity_mib(limits["memory"]) * 1024 * 1024)
    quota = str(int(float(containers._cpus(limits["cpu"])) * 100_000))
    assert cgroup["memory"] == memory
    assert cgroup["cpu"] in (quota, f"{quota} 100000")


# --- nothing written outside /tmp ------------------------------------------------------------


@pytest.mark.parametrize("folder", SERVICES)
def test_a_function_writes_nothing_outside_tmp_even_when_it_could(runs: Runs, folder: str) -> None:
    run = runs.function(folder, read_only=False)
    assert run.observed, "the writable run did not get as far as its request"
    assert run.exit_code == 0
    assert run.written == []


def test_the_migration_command_writes_nothing_outside_tmp_even_when_it_could(runs: Runs) -> None:
    migration = runs.migration(read_only=False)  # a second run: the schema is current, nothing to apply
    assert migration["exit_code"] == 0, "\n".join(migration["logs"])
    assert migration["written"] == []
