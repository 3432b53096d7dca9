"""The jobs: name, schedule and where the code lives.

Schedules here equal the PingSources in ``knative/app/pingsources.yaml`` (a test compares them):
the PingSource fires the tick, this table turns the tick into a slot. Each job's code is imported
only when the job runs, so a cold start for one job does not import the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.jobs.context import JobContext, JobResult


@dataclass(frozen=True)
class Job:
    name: str
    schedule: str  # 5-field cron, as in the PingSource
    timezone: str  # the PingSource's spec.timezone
    summary: str
    target: str  # "module:function" taking a JobContext and returning a JobResult

    def load(self) -> Callable[[JobContext], JobResult]:
        module, _, func = self.target.partition(":")
        return getattr(importlib.import_module(module), func)


_ALL = (
    Job("outbox-sweep", "* * * * *", "Etc/UTC",
        "Publish outbox rows the immediate publish missed.", "shared.jobs.outbox_sweep:run"),
    Job("notifications-due", "* * * * *", "Etc/UTC",
        "Send notifications whose time has come (quiet hours, scheduled reminders).", "shared.jobs.notifications_due:run"),
    Job("data-quality", "15 2 * * *", "Etc/UTC",
        "Flag patients with impossible or missing data into the data-quality report.", "shared.jobs.data_quality:run"),
    Job("retention", "30 3 * * *", "Etc/UTC",
        "Purge old processed_events, job runs and raw LIS payloads (metadata kept).", "shared.jobs.retention:run"),
    Job("lis-reconcile", "5 * * * *", "Etc/UTC",
        "Emit order-overdue once per order without results after LIS_ORDER_OVERDUE_HOURS.", "shared.jobs.lis_reconcile:run"),
    Job("critical-escalation", "* * * * *", "Etc/UTC",
        "Escalate critical-result alerts not acknowledged within CRITICAL_ALERT_ESCALATE_AFTER_SECONDS.",
        "shared.jobs.critical_escalation:run"),
)

JOBS: dict[str, Job] = {job.name: job for job in _ALL}


def get(name: str) -> Job | None:
    return JOBS.get(name)
