"""The ``notifications-due`` job: send notifications whose time has come.

The work is the notify layer's ``send_due_notifications`` (claim → send → record per row, stops at
the budget or when the provider is down). Rows left ``pending`` by a provider outage are retried by
the next tick, so a run that saw them is recorded ``failed`` with ``provider_unavailable`` (2xx).
A tick first asks whether anything is due (``shared.notify.due_check``, SQL text): most find nothing
and load neither the ORM nor a provider.
"""

from __future__ import annotations

from datetime import timedelta

from shared.jobs.context import JobContext, JobResult


def run(ctx: JobContext) -> JobResult:
    from shared.notify import runtime  # noqa: PLC0415
    from shared.notify.due_check import anything_due  # noqa: PLC0415
    from shared.settings import get_settings  # noqa: PLC0415

    # most ticks: one statement on the driver pool, no ORM or provider loaded
    if not anything_due(runtime.system_clock(), timedelta(seconds=get_settings().notify_sending_lease_seconds)):
        return JobResult(complete=True)
    from shared.notify.due import send_due_notifications  # noqa: PLC0415 — only this job needs the providers

    counts = send_due_notifications(ctx.time_left())
    ctx.merge_counts(counts)
    if counts.get("pending"):
        return JobResult(error_code="provider_unavailable")
    return JobResult(complete=not ctx.out_of_time())
