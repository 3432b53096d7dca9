"""Run a job now on an operator's request (the console's **Run now**).

In the api process: the same runner as a tick and ``patient-mgt jobs run`` (claim, lease, budget,
run history), with ``trigger = console``, the current moment as its slot, and a budget that fits
inside the api's request timeout (a run that stops at it is ``incomplete``; the next run resumes).
Who asked is audited (``jobs.run``) with the run's id and outcome.

A job in ``NOT_FROM_API`` is requested instead: a ``job.run.requested`` event goes to the outbox in
the transaction of the ``jobs.run`` audit row (status ``requested``), and the jobs function runs
the job through the same runner (``shared.jobs.consumer.handle_run_request``), its run recorded
with ``trigger = console`` and the event's id.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from shared import audit
from shared.auth import Principal
from shared.db import UnitOfWork, unit_of_work
from shared.errors import Conflict, NotFound, ServiceUnavailable
from shared.events import catalog, outbox
from shared.jobs import registry
from shared.jobs.context import JobRetry
from shared.jobs.runner import RunOutcome, manual_slot, run_job
from shared.models.base import utcnow
from shared.settings import get_settings

# The api Service's timeoutSeconds is 30 (knative/app/services.yaml).
OPERATOR_BUDGET_SECONDS = 20.0
# Jobs the api cannot run itself, and why: Run now asks the jobs function to.
NOT_FROM_API = {
    "notifications-due": "sends through the notification provider, whose credentials only the notify and jobs "
                         "functions have",
}


def run_for_operator(principal: Principal, name: str) -> RunOutcome:
    if registry.get(name) is None:
        raise NotFound("No such job")
    if name in NOT_FROM_API:
        raise Conflict(f"{name} cannot be run in the api: it {NOT_FROM_API[name]}; request it instead")
    budget = min(get_settings().job_time_budget_seconds, OPERATOR_BUDGET_SECONDS)
    try:
        outcome = run_job(name, slot=manual_slot(), trigger="console", budget_seconds=budget)
    except JobRetry as exc:
        _audit(principal, name, None, "retry", exc.code)
        raise ServiceUnavailable("The job hit a transient fault (the database?); run it again shortly") from None
    _audit(principal, name, outcome, outcome.status, outcome.error_code)
    return outcome


def request_run(uow: UnitOfWork, principal: Principal, name: str) -> tuple[uuid.UUID, datetime]:
    """Ask the jobs function to run ``name`` now (the event and its audit row in the caller's
    transaction); returns the request's CloudEvent id (the run's ``event_id``) and moment (its slot)."""
    if registry.get(name) is None:
        raise NotFound("No such job")
    requested_at = utcnow()
    event_id = outbox.emit(uow, catalog.JOB_RUN_REQUESTED, None, catalog.JobRunRequested(
        job=name, requested_by=principal.key_id, requested_at=requested_at))
    audit.record(uow, principal, "jobs.run", [], outcome="success",
                 details={"job": name, "run_id": None, "status": "requested", "error": None, "event_id": str(event_id)})
    return event_id, requested_at


def _audit(principal: Principal, name: str, outcome: RunOutcome | None, status: str, error: str | None) -> None:
    with unit_of_work() as uow:
        audit.record(uow, principal, "jobs.run", [], outcome="success" if status in ("succeeded", "incomplete") else status,
                     details={"job": name, "run_id": str(outcome.run_id) if outcome and outcome.run_id else None,
                              "status": status, "error": error})
