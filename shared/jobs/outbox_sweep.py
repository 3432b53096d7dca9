"""The ``outbox-sweep`` job: publish outbox rows the immediate publish missed.

The work is the event backbone's ``sweep_outbox`` (claims rows ``FOR UPDATE SKIP LOCKED``, keeps
per-subject order, stops at the budget). This module maps its counts onto the run: publish
failures are a ``failed`` run (2xx: the next tick retries, a redelivery of this one would not help);
unpublished rows with no sink configured are ``failed`` with ``no_sink``; rows left for lack of
time make the run ``incomplete``.
"""

from __future__ import annotations

from shared.jobs.context import JobContext, JobResult


def run(ctx: JobContext) -> JobResult:
    from shared.events.publishing.sweep import sweep_outbox  # noqa: PLC0415 — only this job needs the publishers

    counts = sweep_outbox(ctx.time_left())
    ctx.merge_counts(counts)
    if not counts.get("sink_configured") and counts.get("remaining"):
        return JobResult(error_code="no_sink")
    if counts.get("failed"):
        return JobResult(error_code="publish_failed")
    return JobResult(complete=not counts.get("deferred"))
