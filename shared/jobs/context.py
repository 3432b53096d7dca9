"""What a running job receives (its budget, cursor and counters) and what it returns.

A job works in batches, each in its own unit of work, and checks ``ctx.out_of_time()`` between
them. A job that resumes from a cursor saves it with ``ctx.save_cursor(uow, ...)`` in the same
transaction as the batch it covers: the write is conditional on this run still holding the job's
lease, so a run that overstayed its lease stops instead of overwriting a newer run's progress.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.instants import utcnow

if TYPE_CHECKING:
    from shared.db import UnitOfWork


class LeaseLost(Exception):
    """Another run holds the job now (this one overstayed its lease): stop without writing."""


class JobRetry(Exception):
    """A transient fault a retry of the tick could fix (answered 5xx). ``code`` is safe to record."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class JobResult:
    # False: the job stopped at its time budget with work left; the next run resumes it.
    complete: bool = True
    # Set when the job ran but could not do its work (recorded as failed, answered 2xx).
    error_code: str | None = None


@dataclass
class JobContext:
    job: str
    run_id: uuid.UUID
    slot: datetime
    budget_seconds: float
    cursor: dict[str, Any] | None = None
    clock: Callable[[], float] = time.monotonic
    counts: dict[str, int] = field(default_factory=dict)
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def time_left(self) -> float:
        return max(0.0, self.budget_seconds - (self.clock() - self.started))

    def out_of_time(self) -> bool:
        return self.time_left() <= 0

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(n)

    def merge_counts(self, counts: dict[str, Any]) -> None:
        for name, value in counts.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.add(name, int(value))

    def save_cursor(self, uow: UnitOfWork, cursor: dict[str, Any] | None) -> None:
        """Store where the next run resumes (None: start over), in the caller's transaction."""
        import sqlalchemy as sa  # noqa: PLC0415 — only jobs that work in units of work keep a cursor

        from shared.models import JobState  # noqa: PLC0415

        updated = uow.session.execute(
            sa.update(JobState)
            .where(JobState.job == self.job, JobState.holder == self.run_id)
            .values(cursor=cursor, updated_at=utcnow())
        ).rowcount
        if updated != 1:
            raise LeaseLost(self.job)
        self.cursor = cursor
