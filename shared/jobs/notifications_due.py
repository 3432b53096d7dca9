"""The ``notifications-due`` job: send notifications whose time has come.

The work is the notify layer's ``send_due_notifications`` (claim → send → record per row, stops at
the budget or when the provider is down). Rows left ``pending`` by a provider outage are retried by
the next tick, so a run that saw them is recorded ``failed`` with ``provider_unavailable`` (2xx).
"""

from __future__ import annotations

from shared.jobs.context import JobContext, JobResult


def run(ctx: JobContext) -> JobResult:
    from shared.notify.due import send_due_notifications  # noqa: PLC0415 — only this job needs the providers

    counts = send_due_notifications(ctx.time_left())
    ctx.merge_counts(counts)
    if counts.get("pending"):
        return JobResult(error_code="provider_unavailable")
    return JobResult(complete=not ctx.out_of_time())
