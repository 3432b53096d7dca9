"""``patient-mgt jobs run NAME``: the same runner, the same run history, a manual slot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa

from shared.db import unit_of_work
from shared.models.job_runs import JobRun

BIN = Path(sys.executable).parent / "patient-mgt"


def run(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DATABASE_URL": url})


def test_jobs_run_records_a_cli_run_in_the_history(database_url):
    out = run("jobs", "run", "lis-reconcile", url=database_url)
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout.strip().splitlines()[-1])
    assert printed["job"] == "lis-reconcile" and printed["status"] == "succeeded"
    with unit_of_work() as uow:
        row = uow.session.get(JobRun, uuid.UUID(printed["run_id"]))
        assert (row.job, row.trigger, row.status, row.event_id) == ("lis-reconcile", "cli", "succeeded", None)
        assert row.slot.isoformat() == printed["slot"] and row.finished_at is not None


def test_two_manual_runs_are_two_runs(database_url):
    ids = []
    for _ in range(2):
        out = run("jobs", "run", "retention", url=database_url)
        assert out.returncode == 0, out.stderr
        ids.append(json.loads(out.stdout.strip().splitlines()[-1])["run_id"])
    with unit_of_work() as uow:
        rows = uow.session.scalars(sa.select(JobRun).where(JobRun.id.in_([uuid.UUID(i) for i in ids]))).all()
    assert len({r.slot for r in rows}) == 2


def test_an_unknown_job_is_an_error_that_lists_the_jobs(database_url):
    out = run("jobs", "run", "defrag", url=database_url)
    assert out.returncode == 2
    assert "unknown job" in out.stderr and "retention" in out.stderr
    with unit_of_work() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(JobRun).where(JobRun.job == "defrag")) == 0


def test_jobs_list_shows_every_job_with_its_schedule(database_url):
    out = run("jobs", "list", url=database_url)
    assert out.returncode == 0
    lines = dict(line.split("\t")[:2] for line in out.stdout.strip().splitlines())
    assert lines["retention"] == "30 3 * * * (Etc/UTC)" and lines["outbox-sweep"] == "* * * * * (Etc/UTC)"
