"""Cold start: process launch → the first 200 on a route that touches the database, and the idle
memory right after, for every function beside the hello-world function.

Rounds interleave the functions (hello, api, lis_consumer, notify, jobs, hello, api, …) so a
burst of noise from the shared machine does not land on one function's runs only.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench import client
from bench.oru import EIGHT_OBX_PANEL, messages, push_body
from bench.procs import HELLO, ROOT, Fn, launch, production_env, wait_until
from shared.events.type_names import PATIENT_REGISTERED

Probe = Callable[[Fn], bool]


def _ok(status: int) -> bool:
    return 200 <= status < 300


def hello_probe(fn: Fn) -> bool:
    return client.request(fn.port, "GET", "/", timeout=30)[0] == 200


def api_probe(token: str, patient_id: str) -> Probe:
    """GET /patients/{id}: authentication, the read and its audit row — all in the database."""
    return lambda fn: client.request(fn.port, "GET", f"/patients/{patient_id}", headers=client.bearer(token), timeout=30)[0] == 200


def welcome_probe(patient_id: str) -> Probe:
    """What wakes a notify instance scaled to zero most often: a ``patient.registered`` event (every
    registration), as the Broker delivers it (structured mode, ``bench.notify``'s shape), for a patient who
    consented to e-mail (``bench.seed.register_welcome_patient``). Each launch gets an event of its own, so
    every round claims new rows, reads the patient (audited), renders and sends the welcome e-mail (the
    console provider, as the bench runs notify), and records the outcome."""

    def probe(fn: Fn) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", fn.port, timeout=30)
        conn.connect()  # refused until gunicorn listens: no event is spent on that
        try:
            body = json.dumps({"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/patient-mgt/api",
                               "type": PATIENT_REGISTERED, "datacontenttype": "application/json",
                               "data": {"patient_id": patient_id, "version": 1, "origin": "api"}}).encode()
            headers = {"Content-Type": "application/cloudevents+json"}
            return _ok(client.request(fn.port, "POST", "/", body=body, headers=headers, conn=conn)[0])
        finally:
            conn.close()

    return probe


# The PingSource that wakes the jobs function most often (every minute; knative/app/pingsources.yaml), the
# three that fire every minute and so reach a cold instance together, and the first minute of the ticks'
# slots: far from any real slot, and new for every bench process.
TICK_JOB = "outbox-sweep"
MINUTE_JOBS = ("outbox-sweep", "notifications-due", "critical-escalation")
_TICK_BASE = datetime(2200, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=(time.time_ns() // 1000) % (500 * 365 * 24 * 60))


def tick(sent_at: datetime, job: str = TICK_JOB) -> tuple[dict[str, str], bytes]:
    """The headers and body of a PingSource tick of ``job`` as the mt-ping adapter sends it (binary mode,
    ``time`` a moment after the scheduled minute, the PingSource's ``data``)."""
    headers = {"ce-specversion": "1.0", "ce-id": str(uuid.uuid4()), "ce-type": "dev.knative.sources.ping",
               "ce-source": f"/apis/v1/namespaces/patient-mgt/pingsources/{job}",
               "ce-time": sent_at.isoformat().replace("+00:00", "Z"), "Content-Type": "application/json"}
    return headers, json.dumps({"job": job}).encode()


def tick_probe() -> Probe:
    """What wakes a jobs instance scaled to zero: the minute's PingSource ticks (``MINUTE_JOBS``: outbox-sweep,
    notifications-due, critical-escalation), which fire together. Each probe names a minute of its own, so
    every launch claims new slots and runs the jobs: the runner's claim, the job (the sweep's claim of the
    oldest unpublished rows; the two others' question whether anything is due) and the finish. Done when
    all three answered 2xx."""
    minutes = iter(range(10**6))

    def probe(fn: Fn) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", fn.port, timeout=30)
        conn.connect()  # refused until gunicorn listens: no slot is spent on that
        try:
            minute = _TICK_BASE + timedelta(minutes=next(minutes), seconds=0.4)
            for job in MINUTE_JOBS:
                headers, body = tick(minute, job)
                if not _ok(client.request(fn.port, "POST", "/", body=body, headers=headers, conn=conn)[0]):
                    return False
            return True
        finally:
            conn.close()

    return probe


def lis_probe(namespace: str) -> Probe:
    """A Pub/Sub push body carrying a real 8-OBX ORU^R01 of a patient not seen before (a new one each
    time): parsed, stored, the patient created — the goal's probe (issue 15: "first 2xx of an 8-OBX
    ORU^R01 push"), and the heavier of a cold instance's first messages (a known patient's skips the
    MRN, the duplicate search and the patient's rows). It drew the generator's mix (2–10 OBX) for 20
    patients, so its later rounds were sometimes a known patient's, of another size."""
    raws = iter(messages(200, namespace, patients=200, panel=EIGHT_OBX_PANEL, each_patient_once=True))
    counter = iter(range(10**6))

    def probe(fn: Fn) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", fn.port, timeout=30)
        conn.connect()  # refused until gunicorn listens: no message is spent on that
        try:
            body = push_body(next(raws), f"{namespace}-{next(counter)}", datetime.now(timezone.utc))
            return _ok(client.request(fn.port, "POST", "/", body=json.dumps(body).encode(), conn=conn)[0])
        finally:
            conn.close()

    return probe


_IMPORT = """
import importlib.util, sys, time
t0 = time.perf_counter()
import functions_framework, flask
t1 = time.perf_counter()
spec = importlib.util.spec_from_file_location("function_main", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(t1 - t0, time.perf_counter() - t1)
"""


def import_seconds(source: str, env: dict[str, str], runs: int = 3) -> float:
    """Median time to import a function's module in a fresh interpreter (functions-framework and
    Flask already imported: what the function adds to the framework's own start)."""
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _IMPORT, str(ROOT / source)], capture_output=True, text=True,
                             env={**os.environ, **env}, cwd=ROOT, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"importing {source} failed: {out.stderr[-1000:]}")
        times.append(float(out.stdout.split()[-1]))
    return statistics.median(times)


def measure(targets: dict[str, Probe], env_overrides: dict[str, str], log_dir: Path, runs: int, log) -> dict:
    samples: dict[str, list[float]] = {t: [] for t in targets}
    idle: dict[str, list[dict[str, float]]] = {t: [] for t in targets}
    for r in range(runs):
        for target, probe in targets.items():
            fn = launch(target, {**production_env(target), **env_overrides}, log_dir)
            try:
                seconds = wait_until(fn, probe, timeout=90)
                time.sleep(1.0)  # settle: what an idle instance holds after serving its first request
                idle[target].append(fn.memory())
            finally:
                fn.stop()
            samples[target].append(seconds)
        log(f"cold start round {r + 1}/{runs}: " + ", ".join(f"{t} {samples[t][-1]:.2f}s" for t in targets))
    hello = statistics.median(samples[HELLO])
    out = {}
    for target in targets:
        median = statistics.median(samples[target])
        out[target] = {
            "runs_s": [round(s, 3) for s in samples[target]],
            "median_s": round(median, 3),
            "ratio_to_hello": round(median / hello, 2) if hello else None,
            "idle_rss_mb": statistics.median(m["rss_mb"] for m in idle[target]),
            "idle_pss_mb": statistics.median(m["pss_mb"] for m in idle[target]),
            "import_s": round(import_seconds(production_env(target)["FUNCTION_SOURCE"], env_overrides), 3),
        }
    return out
