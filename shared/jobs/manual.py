"""Run a job now on an operator's request (the console's **Run now**), in the api process.

The same runner as a tick and ``patient-mgt jobs run`` (claim, lease, budget, run history), with
``trigger = console``, the current moment as its slot, and a budget that fits inside the api's
request timeout (a run that stops at it is ``incomplete``; the next run resumes). Who asked is
audited (``jobs.run``) with the run's id and outcome.

``notifications-due`` is not run here: it sends through the notification provider, whose
credentials only the notify and jobs functions are given; it runs every minute anyway.
"""

from __future__ import annotations

from shared import audit
from shared.auth import Principal
from shared.db import unit_of_work
from shared.errors import Conflict, NotFound, ServiceUnavailable
from shared.jobs import registry
from shared.jobs.context import JobRetry
from shared.jobs.runner import RunOutcome, manual_slot, run_job
from shared.settings import get_settings

# The api Service's timeoutSeconds is 30 (knative/app/services.yaml).
OPERATOR_BUDGET_SECONDS = 20.0
NOT_FROM_API = {
    "notifications-due": "sends through the notification provider, whose credentials only the notify and jobs "
                         "functions have; it runs every minute",
}


def runnable(name: str) -> bool:
    return registry.get(name) is not None and name not in NOT_FROM_API


def run_for_operator(principal: Principal, name: str) -> RunOutcome:
    if registry.get(name) is None:
        raise NotFound("No such job")
    if name in NOT_FROM_API:
        raise Conflict(f"{name} cannot be run from here: it {NOT_FROM_API[name]}")
    budget = min(get_settings().job_time_budget_seconds, OPERATOR_BUDGET_SECONDS)
    try:
        outcome = run_job(name, slot=manual_slot(), trigger="console", budget_seconds=budget)
    except JobRetry as exc:
        _audit(principal, name, None, "retry", exc.code)
        raise ServiceUnavailable("The job hit a transient fault (the database?); run it again shortly") from None
    _audit(principal, name, outcome, outcome.status, outcome.error_code)
    return outcome


def _audit(principal: Principal, name: str, outcome: RunOutcome | None, status: str, error: str | None) -> None:
    with unit_of_work() as uow:
        audit.record(uow, principal, "jobs.run", [], outcome="success" if status in ("succeeded", "incomplete") else status,
                     details={"job": name, "run_id": str(outcome.run_id) if outcome and outcome.run_id else None,
                              "status": status, "error": error})
