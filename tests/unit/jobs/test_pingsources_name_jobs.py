"""Every PingSource under knative/ names a job that exists, with the schedule the job registry uses
to compute slots; every job has its PingSource; docs/jobs.md documents each with its schedule."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from shared import cron
from shared.jobs.registry import JOBS

ROOT = Path(__file__).resolve().parents[3]


def _pingsources() -> dict[str, dict]:
    found: dict[str, dict] = {}
    for path in sorted((ROOT / "knative").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "PingSource":
                found[doc["metadata"]["name"]] = doc["spec"]
    return found


def test_every_pingsource_names_an_existing_job_with_the_same_schedule():
    pings = _pingsources()
    assert pings, "no PingSource found under knative/"
    for name, spec in pings.items():
        job_name = json.loads(spec["data"])["job"]
        assert job_name in JOBS, f"PingSource {name} names unknown job {job_name!r}"
        job = JOBS[job_name]
        assert (spec.get("schedule", "* * * * *"), spec.get("timezone", "Etc/UTC")) == (job.schedule, job.timezone), name
        assert spec["sink"]["ref"]["name"] == "jobs"
        cron.parse(spec["schedule"], spec.get("timezone"))  # a schedule the slot computation understands


def test_every_job_has_a_pingsource():
    named = {json.loads(spec["data"])["job"] for spec in _pingsources().values()}
    assert set(JOBS) == named


def test_docs_list_each_job_with_its_schedule():
    text = (ROOT / "docs" / "jobs.md").read_text()
    for job in JOBS.values():
        assert f"`{job.name}`" in text and f"`{job.schedule}`" in text, job.name
