"""``patient-mgt jobs``: list the jobs, run one now (the same code path and run history as a tick)."""

from __future__ import annotations

import argparse
import json
import sys


def _list(args: argparse.Namespace) -> int:
    from shared.jobs.registry import JOBS  # noqa: PLC0415

    for job in JOBS.values():
        print(f"{job.name}\t{job.schedule} ({job.timezone})\t{job.summary}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from shared.jobs.context import JobRetry  # noqa: PLC0415
    from shared.jobs.runner import manual_slot, run_job  # noqa: PLC0415

    try:
        outcome = run_job(args.name, slot=manual_slot(), trigger="cli", budget_seconds=args.budget)
    except JobRetry as exc:
        print(f"error: job {args.name} hit a transient fault ({exc.code}); run it again", file=sys.stderr)
        return 75  # EX_TEMPFAIL
    if outcome.status == "unknown_job":
        from shared.jobs.registry import JOBS  # noqa: PLC0415

        print(f"error: unknown job {args.name!r}; one of: {', '.join(sorted(JOBS))}", file=sys.stderr)
        return 2
    print(json.dumps({"job": outcome.job, "run_id": str(outcome.run_id) if outcome.run_id else None,
                      "slot": outcome.slot.isoformat() if outcome.slot else None, "status": outcome.status,
                      "counts": outcome.counts, "error": outcome.error_code}))
    return 1 if outcome.status in ("failed", "skipped") else 0


def _budget(value: str) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return seconds


def register(sub: argparse._SubParsersAction) -> None:
    jobs = sub.add_parser("jobs", help="scheduled jobs").add_subparsers(dest="jobs_command", required=True)
    jobs.add_parser("list", help="list the jobs and their schedules").set_defaults(func=_list)
    run = jobs.add_parser("run", help="run a job once now (recorded in the run history like a scheduled run)")
    run.add_argument("name", help="the job's name, e.g. retention")
    run.add_argument("--budget", type=_budget, default=None,
                     help="time budget in seconds (default JOB_TIME_BUDGET_SECONDS); a long job resumes at its next run")
    run.set_defaults(func=_run)
