"""The overview: the LIS feed's health, and everything that waits for an operator."""

from __future__ import annotations

from flask import Response

from shared.console.chart import HourBucket, activity_chart
from shared.console.web import View, page
from shared.db import unit_of_work
from shared.jobs import history
from shared.jobs.registry import JOBS
from shared.lis import operator, operator_views
from shared.notify import store
from shared.telemetry.queues import read_depths


@page("GET", "/", scope="")
def overview(view: View) -> Response:
    lis = chart = oldest = depths = runs = notifications = None
    if view.can("lis:read"):
        with unit_of_work() as uow:
            lis = operator.status(uow)  # the same numbers as GET /lis/status
            hours = operator_views.last_24_hours(uow)
            oldest = operator_views.oldest_waiting(uow)
        chart = activity_chart([HourBucket(h.start, h.received, h.lag_p95) for h in hours])
    if view.can("admin"):
        depths = read_depths()
        with unit_of_work() as uow:
            runs = {job: rows[0] if rows else None for job, rows in history.last_runs(uow, list(JOBS), 1).items()}
            notifications = store.failed_counts(uow)
    return view.render("overview.html", lis=lis, chart=chart, oldest=oldest, depths=depths, runs=runs,
                       jobs=JOBS, notifications=notifications)
