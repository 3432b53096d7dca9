"""GET /jobs/runs and GET /jobs/data-quality: what the jobs function did and found (scope admin)."""

from __future__ import annotations

from flask import Response

from shared import audit
from shared.db import unit_of_work
from shared.http.context import RequestContext, json_response
from shared.http.routing import route
from shared.jobs import history
from shared.schemas.jobs import (
    DataQualityIssueOut,
    DataQualityItem,
    DataQualityPage,
    DataQualityQuery,
    JobRunOut,
    JobRunPage,
    JobRunsQuery,
)


@route("GET", "/jobs/runs", scope="admin", summary="List job runs, newest first", tag="jobs",
       query=JobRunsQuery, responses={200: JobRunPage})
def list_job_runs(ctx: RequestContext) -> Response:
    q = ctx.query(JobRunsQuery)
    with unit_of_work() as uow:
        runs = history.list_runs(uow, job=q.job, limit=q.limit)
        items = [JobRunOut(id=r.id, job=r.job, slot=r.slot, trigger=r.trigger, status=r.status, attempt=r.attempt,  # type: ignore[arg-type]
                           started_at=r.started_at, finished_at=r.finished_at, counts=r.counts or {}, error=r.error_code)
                 for r in runs]
    return json_response(JobRunPage(items=items))


@route("GET", "/jobs/data-quality", scope="admin", summary="Read the data-quality report (ids and reason codes)",
       tag="jobs", query=DataQualityQuery, responses={200: DataQualityPage}, audit_action="jobs.data_quality.read")
def data_quality_report(ctx: RequestContext) -> Response:
    q = ctx.query(DataQualityQuery)
    with unit_of_work() as uow:
        page = history.data_quality_page(uow, reason=q.reason, after=q.after, limit=q.limit)
        items = [DataQualityItem(patient_id=pid, issues=[
            DataQualityIssueOut(reason=i.reason, related_ids=list(i.related_ids or []),  # type: ignore[arg-type]
                                first_seen_at=i.first_seen_at, last_seen_at=i.last_seen_at) for i in issues])
            for pid, issues in page]
        # Which patients have suspect data is itself about those patients: audited like a read.
        audit.record(uow, ctx.principal, "jobs.data_quality.read", [i.patient_id for i in items],
                     details={"returned": len(items), "reason": q.reason})
    next_cursor = items[-1].patient_id if len(items) == q.limit else None
    return json_response(DataQualityPage(items=items, next_cursor=next_cursor))
