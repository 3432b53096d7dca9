"""FHIR Bulk Data export end to end: the api and the jobs function as real functions-framework
processes on 127.0.0.1, the dev router between them reading knative/ (so the export's Trigger is the
one deployed). The api is restarted right after the kick-off: the export lives in PostgreSQL and the
outbox, not in the api. A tiny time budget makes the jobs function work one page per delivery, so
every continuation goes through the outbox, the router and the Trigger. Every NDJSON line is validated
with fhir.resources and the ids compared with the database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from tests.http.fhir.support import add_order, unique_family
from tests.support.fhir_export import expected_ids, exported_ids
from tests.support.processes import ROOT, free_port

pytestmark = pytest.mark.e2e


def _router(port: int, jobs_port: int, log_dir: Path) -> subprocess.Popen[bytes]:
    log = (log_dir / f"router-{port}.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "shared.devtools.devrouter", "--port", str(port), "--no-pingsources",
                             "--backoff-scale", "0.01", "--service", f"jobs=http://127.0.0.1:{jobs_port}"],
                            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the dev router did not start")


def test_export_through_the_real_api_and_jobs_processes(start_fn, make_token, tmp_path):
    token = make_token("patients:read", "patients:write")
    headers = {"Authorization": f"Bearer {token}"}
    jobs_port, router_port = free_port(), free_port()
    router = _router(router_port, jobs_port, tmp_path)
    try:
        sink = {"K_SINK": f"http://127.0.0.1:{router_port}"}
        jobs = start_fn("jobs", env={**sink, "JOB_TIME_BUDGET_SECONDS": "0.001"}, port=jobs_port, ready_path="/readyz")
        api = start_fn("api", env=sink, ready_path="/readyz")

        since = datetime.now(timezone.utc) - timedelta(milliseconds=1)
        for n in range(3):
            resp = requests.post(f"{api.url}/patients?allow_duplicate=true", headers=headers, timeout=30, json={
                "name": {"family": unique_family(), "given": ["Esi"]}, "birth_date": f"198{n}-01-02"})
            assert resp.status_code == 201, resp.text
            add_order(resp.json()["id"], results=[{"code_system": "LN", "code": "718-7", "code_display": "Hemoglobin",
                                                   "value_type": "NM", "value": f"13.{n}", "units": "g/dL", "status": "F"}])

        kick = requests.get(f"{api.url}/fhir/Patient/$export", timeout=30, params={
            "_since": since.isoformat(), "_type": "Patient,Observation,ServiceRequest,DiagnosticReport"},
            headers={**headers, "Prefer": "respond-async", "Accept": "application/fhir+json"})
        assert kick.status_code == 202, kick.text
        status_path = kick.headers["Content-Location"].split("/fhir/", 1)[1]
        api.stop()  # the export does not need the api that started it
        api = start_fn("api", env=sink, ready_path="/readyz")

        deadline, progress = time.monotonic() + 120, []
        while True:
            status = requests.get(f"{api.url}/fhir/{status_path}", headers=headers, timeout=30)
            if status.status_code != 202:
                break
            progress.append(status.headers["X-Progress"])
            assert time.monotonic() < deadline, (progress[-3:], jobs.logs()[-3000:])
            time.sleep(0.2)
        assert status.status_code == 200, status.text
        manifest = status.json()
        assert manifest["requiresAccessToken"] is True and manifest["error"] == []

        def download(url: str) -> tuple[str, bytes]:
            resp = requests.get(f"{api.url}/fhir/{url.split('/fhir/', 1)[1]}", headers=headers, timeout=60)
            assert resp.status_code == 200, resp.text
            return resp.headers["Content-Type"], resp.content

        got = exported_ids(manifest, download)
        expected = expected_ids(since)
        assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in expected.items() if v}
        assert [len(expected[t]) for t in ("Patient", "ServiceRequest", "Observation", "DiagnosticReport")] == [3, 3, 3, 3]
        # One slice per type: the continuations went through the outbox, the router and the Trigger.
        assert jobs.logs().count('"outcome": "continued"') >= 3, jobs.logs()[-3000:]

        # Cancel: the files go, the status URL is gone.
        assert requests.delete(f"{api.url}/fhir/{status_path}", headers=headers, timeout=30).status_code == 202
        gone = requests.get(f"{api.url}/fhir/{status_path}", headers=headers, timeout=30)
        assert gone.status_code == 404 and gone.json()["resourceType"] == "OperationOutcome"
        assert requests.get(manifest["output"][0]["url"].replace(manifest["output"][0]["url"].split("/fhir/")[0], api.url),
                            headers=headers, timeout=30).status_code == 404
    finally:
        router.terminate()
        router.wait(timeout=10)
