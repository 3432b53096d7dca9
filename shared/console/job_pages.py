"""Jobs: each job's schedule and last runs, and Run now (``shared.jobs.manual``: the runner every
tick and ``patient-mgt jobs run`` use, audited as ``jobs.run``; a job the api cannot run is
requested from the jobs function, and its run shows up here once it has happened)."""

from __future__ import annotations

from flask import Response

from shared.console import forms
from shared.console.web import PREFIX, View, page, redirect
from shared.db import unit_of_work
from shared.errors import NotFound
from shared.jobs import history, manual
from shared.jobs.registry import JOBS

RUNS_SHOWN = 5


@page("GET", "/jobs", scope="admin")
def jobs_page(view: View) -> Response:
    q = forms.parse(view.request.args.to_dict(), forms.JobsQuery)
    with unit_of_work() as uow:
        runs = history.last_runs(uow, list(JOBS), RUNS_SHOWN)
        requested_run = history.run_in_slot(uow, q.ran, q.requested) if q.ran and q.requested else None
    return view.render("jobs.html", jobs=JOBS, runs=runs, not_from_api=manual.NOT_FROM_API,
                       ran=q.ran, ran_run=q.run, requested=q.requested, requested_run=requested_run)


@page("POST", "/jobs/<name>/run", scope="admin")
def run_now(view: View, name: str) -> Response:
    if name not in JOBS:
        raise NotFound("No such job")
    if name in manual.NOT_FROM_API:
        with unit_of_work() as uow:
            _event_id, requested_at = manual.request_run(uow, view.user, name)
        return redirect(f"{PREFIX}/jobs", ran=name, requested=requested_at.isoformat())
    outcome = manual.run_for_operator(view.user, name)
    return redirect(f"{PREFIX}/jobs", ran=name, run=str(outcome.run_id) if outcome.run_id else None)
