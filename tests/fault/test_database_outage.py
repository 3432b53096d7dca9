"""PostgreSQL goes away while the api is under load, then comes back.

During the outage every answer is a 503 problem with Retry-After (never a 500, never a hang, never
a stack trace); afterwards the same processes serve again without a restart, and every patient
whose registration was answered 201 can be read.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest
import requests

from tests.fault.conftest import api_token, migrated_database

pytestmark = [pytest.mark.fault, pytest.mark.e2e]
REQUEST_TIMEOUT = 20  # above the pool (5 s), connect (5 s) and statement (15 s) timeouts: a hang shows as a timeout
_counter = itertools.count()


@dataclass
class Outcome:
    method: str
    status: int | None  # None: no HTTP answer (connection error or timeout)
    content_type: str = ""
    retry_after: str | None = None
    body: str = ""
    error: str | None = None
    patient: dict | None = None


@dataclass
class LoadRecorder:
    outcomes: list[Outcome] = field(default_factory=list)
    created: list[tuple[str, dict]] = field(default_factory=list)  # (id, body) answered 201
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)

    def count(self, status: int) -> int:
        with self.lock:
            return sum(1 for o in self.outcomes if o.status == status)


def patient_body(n: int) -> dict:
    tag = uuid.uuid4().hex[:6]
    return {
        "name": {"family": f"Outagefam{tag}", "given": [f"Outagegiv{tag}"]},
        "birth_date": f"19{50 + n % 50:02d}-0{1 + n % 9}-1{n % 10}",
        "phone": f"+1415555{n % 10000:04d}",
        "identifiers": [{"system": "urn:fault:outage", "value": f"OUT-{uuid.uuid4().hex[:12]}"}],
    }


def _call(session: requests.Session, method: str, url: str, **kwargs) -> tuple[requests.Response | None, str | None]:
    try:
        return session.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs), None
    except requests.RequestException as exc:
        return None, type(exc).__name__


def load_worker(base_url: str, token: str, recorder: LoadRecorder, stop: threading.Event, phi: set[str]) -> None:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    while not stop.is_set():
        n = next(_counter)
        body = patient_body(n)
        phi.update([body["name"]["family"], body["name"]["given"][0], body["identifiers"][0]["value"], body["phone"]])
        resp, error = _call(session, "POST", f"{base_url}/patients?allow_duplicate=true", json=body, headers=headers)
        recorder.add(_outcome("POST", resp, error))
        if resp is not None and resp.status_code == 201:
            created = resp.json()
            with recorder.lock:
                recorder.created.append((created["id"], body))
            got, error = _call(session, "GET", f"{base_url}/patients/{created['id']}", headers=headers)
            recorder.add(_outcome("GET", got, error))
        ready, error = _call(session, "GET", f"{base_url}/readyz")
        recorder.add(_outcome("READYZ", ready, error))


def _outcome(method: str, resp: requests.Response | None, error: str | None) -> Outcome:
    if resp is None:
        return Outcome(method, None, error=error)
    return Outcome(method, resp.status_code, resp.headers.get("Content-Type", ""), resp.headers.get("Retry-After"),
                   resp.text[:2000])


def _wait_for(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("stop_mode", ["immediate", "fast", "freeze"])
def test_api_answers_503_during_a_database_restart_and_recovers_without_restart(private_pg, fault_run, stop_mode):
    url = migrated_database(private_pg)
    token = api_token(url, "patients:read", "patients:write")
    # Two processes: one with the production key cache (requests reach the handlers' database work
    # during the outage), one without (authentication itself meets the outage).
    cached = fault_run.start("api", {"DATABASE_URL": url, "THREADS": "8", "DB_POOL_SIZE": "8",
                                     "API_KEY_CACHE_SECONDS": "300"}, ready_path="/readyz")
    uncached = fault_run.start("api", {"DATABASE_URL": url, "THREADS": "8", "DB_POOL_SIZE": "8",
                                       "API_KEY_CACHE_SECONDS": "0"}, ready_path="/readyz")
    pids = {p.port: p.proc.pid for p in (cached, uncached)}
    recorders = {p.port: LoadRecorder() for p in (cached, uncached)}
    stop = threading.Event()
    threads = [
        threading.Thread(target=load_worker, args=(p.url, token, recorders[p.port], stop, fault_run.phi), daemon=True)
        for p in (cached, uncached) for _ in range(3)
    ]
    for t in threads:
        t.start()
    try:
        assert _wait_for(lambda: all(r.count(201) >= 5 for r in recorders.values()), 30), "no load before the outage"
        before = {port: len(r.outcomes) for port, r in recorders.items()}
        down_at = time.monotonic()
        if stop_mode == "freeze":
            private_pg.freeze()  # a hung server: only client-side timeouts get the requests out
        else:
            private_pg.stop(stop_mode)
        # Keep the database down for a while, and until each process has answered without it.
        assert _wait_for(lambda: all(r.count(503) >= 3 for r in recorders.values()), 60), "no 503 during the outage"
        time.sleep(max(0.0, 2.0 - (time.monotonic() - down_at)))
        if stop_mode == "freeze":
            private_pg.thaw()
        else:
            private_pg.start()
        restarted = {port: len(r.outcomes) for port, r in recorders.items()}
        assert _wait_for(
            lambda: all(sum(1 for o in r.outcomes[restarted[port]:] if o.status == 201) >= 5
                        for port, r in recorders.items()), 60), "the processes did not serve again after the restart"
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=REQUEST_TIMEOUT + 5)

    for proc in (cached, uncached):
        assert proc.proc.poll() is None and proc.proc.pid == pids[proc.port], "the api process was restarted"
        outcomes = recorders[proc.port].outcomes
        no_answer = [o for o in outcomes if o.status is None]
        assert not no_answer, f"requests without an HTTP answer (hang or dropped connection): {no_answer[:3]}"
        unexpected = [o for o in outcomes if o.status not in (200, 201, 503)]
        assert not unexpected, f"unexpected answers: {[(o.method, o.status, o.body[:200]) for o in unexpected[:3]]}"
        during = [o for o in outcomes[before[proc.port]:restarted[proc.port]] if o.status == 503]
        assert during, "the outage window saw no 503"
        for o in (o for o in outcomes if o.status == 503):
            assert o.content_type.startswith("application/problem+json"), o
            assert o.retry_after and int(o.retry_after) > 0, o
            doc = json.loads(o.body)
            assert doc["status"] == 503 and doc["type"].startswith("https://")
            assert "Traceback" not in o.body and "pg8000" not in o.body and "sqlalchemy" not in o.body.lower()
        assert '"unhandled error"' not in proc.logs()

    # Every patient whose registration was answered 201 is there, with the data that was sent.
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    created = [c for r in recorders.values() for c in r.created]
    assert len(created) >= 20
    for patient_id, body in created:
        got = session.get(f"{cached.url}/patients/{patient_id}", headers=headers, timeout=REQUEST_TIMEOUT)
        assert got.status_code == 200, (patient_id, got.status_code)
        doc = got.json()
        assert doc["name"]["family"] == body["name"]["family"]
        assert body["identifiers"][0]["value"] in [i["value"] for i in doc["identifiers"]]


@pytest.mark.timeout(240)
def test_lis_consumer_answers_5xx_during_a_database_restart_and_redelivery_applies_each_message_once(
        private_pg, fault_run, lis_reference):
    from tests.fault.conftest import LIS_FEED_SIZE, LIS_NAMESPACE  # noqa: PLC0415
    from tests.fault.lis_support import Pusher, assert_applied_exactly_once, feed, phi_values  # noqa: PLC0415

    url = migrated_database(private_pg)
    messages = feed(LIS_FEED_SIZE, LIS_NAMESPACE)
    fault_run.remember_phi(*phi_values(messages))
    lis = fault_run.start("lis_consumer", {"DATABASE_URL": url, "THREADS": "4", "DB_POOL_SIZE": "4"})
    pid = lis.proc.pid
    reached = threading.Event()
    pusher = Pusher(url=lambda: lis.url, concurrency=4, timeout=REQUEST_TIMEOUT, deadline_s=180)
    outcome: dict = {}
    sender = threading.Thread(target=lambda: outcome.update(
        failed=pusher.deliver(messages, on_ack=lambda n: n >= 50 and reached.set())), daemon=True)
    sender.start()
    assert reached.wait(120), "the stream never got going"
    private_pg.stop("immediate")
    down_at = time.monotonic()
    assert _wait_for(lambda: sum(1 for a in list(pusher.attempts) if a.status == 503) >= 3, 60), "no 5xx during the outage"
    time.sleep(max(0.0, 2.0 - (time.monotonic() - down_at)))
    private_pg.start()
    sender.join(timeout=200)

    assert outcome.get("failed") == [], "messages were never acknowledged after the outage"
    assert lis.proc.poll() is None and lis.proc.pid == pid, "the lis_consumer process was restarted"
    statuses = pusher.statuses()
    assert set(statuses) <= {200, 503}, f"answers other than 200 and 503 (a hang, a 500, a dropped connection): {statuses}"
    retry_bodies = [a.body for a in pusher.attempts if a.status == 503]
    assert all("Traceback" not in b and "pg8000" not in b for b in retry_bodies)
    assert '"event handler failed"' not in lis.logs() and '"lis message failed"' not in lis.logs()
    assert_applied_exactly_once(url, LIS_NAMESPACE, messages, lis_reference)
