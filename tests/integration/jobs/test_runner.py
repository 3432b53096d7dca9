"""The run boundary against real PostgreSQL: one run per (job, slot), the lease, failure recording."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from shared.db import unit_of_work
from shared.jobs import registry
from shared.jobs.context import JobContext, JobResult, JobRetry
from shared.jobs.runner import LEASE_GRACE_SECONDS, run_job
from shared.models.base import utcnow
from shared.models.job_runs import JobRun, JobState
from tests.support.jobs_data import unique_minute
from tests.support.statements import counting, through_sqlalchemy


@dataclass(frozen=True)
class _TestJob(registry.Job):
    func: object = None

    def load(self):  # noqa: ANN201 — the job's code, given directly instead of by import path
        return self.func


@pytest.fixture()
def test_job(monkeypatch, database_url):
    """Register a job named uniquely for this test whose body the test supplies."""
    def register(func) -> str:
        name = f"test-{uuid.uuid4().hex[:10]}"
        monkeypatch.setitem(registry.JOBS, name, _TestJob(name, "* * * * *", "Etc/UTC", "test", "-", func=func))
        return name

    return register


def _runs(name: str) -> list[JobRun]:
    with unit_of_work() as uow:
        return list(uow.session.scalars(sa.select(JobRun).where(JobRun.job == name).order_by(JobRun.started_at)))


def test_the_same_slot_runs_once_and_a_new_slot_runs_again(test_job):
    calls = []

    def work(ctx: JobContext) -> JobResult:
        calls.append(ctx.slot)
        ctx.add("things", 3)
        return JobResult()

    name = test_job(work)
    slot = unique_minute()
    first = run_job(name, slot=slot, trigger="schedule", event_id="a")
    again = run_job(name, slot=slot, trigger="schedule", event_id="b")
    later = run_job(name, slot=slot + timedelta(minutes=1), trigger="schedule", event_id="c")
    assert (first.status, again.status, later.status) == ("succeeded", "duplicate", "succeeded")
    assert calls == [slot, slot + timedelta(minutes=1)]
    runs = _runs(name)
    assert [(r.slot, r.status, r.event_id, r.counts) for r in runs] == [
        (slot, "succeeded", "a", {"things": 3}), (slot + timedelta(minutes=1), "succeeded", "c", {"things": 3})]
    assert all(r.finished_at is not None and r.error_code is None for r in runs)


def test_concurrent_deliveries_of_one_slot_run_it_once(test_job):
    started = threading.Event()
    release = threading.Event()
    calls = []

    def work(ctx: JobContext) -> JobResult:
        calls.append(ctx.run_id)
        started.set()
        release.wait(10)
        return JobResult()

    name = test_job(work)
    slot = unique_minute()
    outcomes = []
    first = threading.Thread(target=lambda: outcomes.append(run_job(name, slot=slot, trigger="schedule", event_id="1")))
    first.start()
    assert started.wait(10)
    outcomes.append(run_job(name, slot=slot, trigger="schedule", event_id="2"))
    release.set()
    first.join(10)
    assert sorted(o.status for o in outcomes) == ["duplicate", "succeeded"]
    assert len(calls) == 1 and len(_runs(name)) == 1


def test_a_run_of_a_busy_job_is_recorded_as_skipped(test_job):
    started = threading.Event()
    release = threading.Event()

    def work(ctx: JobContext) -> JobResult:
        started.set()
        release.wait(10)
        return JobResult()

    name = test_job(work)
    slot = unique_minute()
    t = threading.Thread(target=lambda: run_job(name, slot=slot, trigger="schedule"))
    t.start()
    assert started.wait(10)
    busy = run_job(name, slot=slot + timedelta(minutes=1), trigger="schedule")
    release.set()
    t.join(10)
    assert (busy.status, busy.error_code) == ("skipped", "already_running")
    assert {r.slot: r.status for r in _runs(name)} == {slot: "succeeded", slot + timedelta(minutes=1): "skipped"}
    with unit_of_work() as uow:
        assert uow.session.get(JobState, name).holder is None  # released by the run that held it


def test_a_failing_job_records_a_safe_code_and_the_next_slot_runs(test_job):
    def work(ctx: JobContext) -> JobResult:
        ctx.add("before_failure")
        raise KeyError("Garcia 1980-05-06")  # the message may hold PHI: never recorded

    name = test_job(work)
    slot = unique_minute()
    outcome = run_job(name, slot=slot, trigger="schedule")
    assert (outcome.status, outcome.error_code) == ("failed", "KeyError")
    [run] = _runs(name)
    assert (run.status, run.error_code, run.counts) == ("failed", "KeyError", {"before_failure": 1})
    assert run_job(name, slot=slot, trigger="schedule").status == "duplicate"  # a retry cannot fix it


def test_a_transient_fault_marks_the_run_retry_and_a_redelivery_runs_it_again(test_job):
    attempts = []

    def work(ctx: JobContext) -> JobResult:
        attempts.append(ctx.run_id)
        if len(attempts) == 1:
            raise sa_exc.OperationalError("SELECT 1", {}, ConnectionError("server closed the connection"))
        return JobResult()

    name = test_job(work)
    slot = unique_minute()
    with pytest.raises(JobRetry) as info:
        run_job(name, slot=slot, trigger="schedule", event_id="first")
    assert info.value.code == "database_unavailable"
    [run] = _runs(name)
    assert (run.status, run.error_code) == ("retry", "database_unavailable")
    assert run_job(name, slot=slot, trigger="schedule", event_id="redelivered").status == "succeeded"
    [run] = _runs(name)
    assert (run.status, run.attempt, run.event_id, run.error_code) == ("succeeded", 2, "redelivered", None)
    assert attempts == [run.id, run.id]


def test_a_job_can_ask_for_a_retry(test_job):
    name = test_job(lambda ctx: (_ for _ in ()).throw(JobRetry("provider_unavailable")))
    with pytest.raises(JobRetry):
        run_job(name, slot=unique_minute(), trigger="schedule")
    [run] = _runs(name)
    assert (run.status, run.error_code) == ("retry", "provider_unavailable")


def test_a_job_reports_incomplete_and_failed_results(test_job):
    results = iter([JobResult(complete=False), JobResult(error_code="publish_failed")])
    name = test_job(lambda ctx: next(results))
    slot = unique_minute()
    assert run_job(name, slot=slot, trigger="schedule").status == "incomplete"
    failed = run_job(name, slot=slot + timedelta(minutes=1), trigger="schedule")
    assert (failed.status, failed.error_code) == ("failed", "publish_failed")


def test_an_unknown_job_runs_nothing_and_records_nothing(database_url):
    name = f"no-such-job-{uuid.uuid4().hex[:8]}"
    assert run_job(name, slot=unique_minute(), trigger="schedule").status == "unknown_job"
    assert _runs(name) == []


def test_the_cursor_is_kept_between_runs_and_written_only_by_the_lease_holder(test_job):
    seen = []

    def work(ctx: JobContext) -> JobResult:
        seen.append(ctx.cursor)
        with unit_of_work() as uow:
            ctx.save_cursor(uow, {"after": len(seen)})
        return JobResult(complete=False)

    name = test_job(work)
    slot = unique_minute()
    run_job(name, slot=slot, trigger="schedule")
    run_job(name, slot=slot + timedelta(minutes=1), trigger="schedule")
    assert seen == [None, {"after": 1}]
    with unit_of_work() as uow:
        state = uow.session.get(JobState, name)
        assert (state.cursor, state.holder) == ({"after": 2}, None)


def test_a_run_that_lost_its_lease_cannot_move_the_cursor(test_job):
    def work(ctx: JobContext) -> JobResult:
        with unit_of_work() as uow:  # another run took the job over (this one overstayed its lease)
            uow.session.execute(sa.update(JobState).where(JobState.job == ctx.job).values(holder=uuid.uuid4()))
        with unit_of_work() as uow:
            ctx.save_cursor(uow, {"after": "mine"})
        return JobResult()

    name = test_job(work)
    outcome = run_job(name, slot=unique_minute(), trigger="schedule")
    assert (outcome.status, outcome.error_code) == ("failed", "lease_lost")
    with unit_of_work() as uow:
        assert uow.session.get(JobState, name).cursor is None


def _insert_run(name: str, slot, *, started_ago: timedelta, lease_until_ago: timedelta | None) -> uuid.UUID:
    """A run of ``name`` left ``running`` (its process died without a trace), holding the job's lease."""
    now = utcnow()
    run_id = uuid.uuid4()
    with unit_of_work() as uow:
        uow.session.add(JobRun(id=run_id, job=name, slot=slot, trigger="schedule", event_id="lost", status="running",
                               attempt=1, started_at=now - started_ago, counts={"half": 1}))
        uow.session.flush()
        uow.session.merge(JobState(job=name, cursor={"after": "lost"}, holder=run_id, updated_at=now - started_ago,
                                   lease_until=None if lease_until_ago is None else now - lease_until_ago))
    return run_id


def test_a_run_left_running_past_its_lease_is_claimed_again_and_one_within_it_is_not(test_job):
    seen = []

    def work(ctx: JobContext) -> JobResult:
        seen.append((ctx.run_id, ctx.cursor))
        return JobResult()

    name = test_job(work)
    slot = unique_minute()
    budget = 30.0
    # within budget + grace: the run may still be working
    live = _insert_run(name, slot, started_ago=timedelta(seconds=budget), lease_until_ago=None)
    assert run_job(name, slot=slot, trigger="schedule", event_id="early", budget_seconds=budget).status == "duplicate"
    [run] = _runs(name)
    assert (run.id, run.status, run.attempt, run.event_id) == (live, "running", 1, "lost")
    assert seen == []

    stale_slot = slot + timedelta(minutes=1)
    stale = _insert_run(name, stale_slot, started_ago=timedelta(seconds=budget + LEASE_GRACE_SECONDS + 5),
                        lease_until_ago=timedelta(seconds=5))
    with unit_of_work() as uow:  # the live run's lease is the stale one's: the last writer holds the job
        assert uow.session.get(JobState, name).holder == stale
    outcome = run_job(name, slot=stale_slot, trigger="schedule", event_id="redelivered", budget_seconds=budget)
    assert (outcome.status, outcome.run_id) == ("succeeded", stale)
    assert seen == [(stale, {"after": "lost"})]  # the same run, resuming from the job's cursor
    run = next(r for r in _runs(name) if r.slot == stale_slot)
    assert (run.status, run.attempt, run.event_id, run.counts, run.error_code) == ("succeeded", 2, "redelivered", {}, None)
    assert run.finished_at is not None
    with unit_of_work() as uow:
        state = uow.session.get(JobState, name)
        assert (state.holder, state.lease_until) == (None, None)


def test_a_lease_that_ran_out_is_taken_by_the_next_slot(test_job):
    name = test_job(lambda ctx: JobResult())
    slot = unique_minute()
    _insert_run(name, slot, started_ago=timedelta(hours=1), lease_until_ago=timedelta(seconds=1))
    later = run_job(name, slot=slot + timedelta(minutes=1), trigger="schedule", budget_seconds=30)
    assert later.status == "succeeded"
    held = _insert_run(name, slot + timedelta(minutes=2), started_ago=timedelta(seconds=1),
                       lease_until_ago=timedelta(seconds=-60))  # held for another minute
    busy = run_job(name, slot=slot + timedelta(minutes=3), trigger="schedule", budget_seconds=30)
    assert (busy.status, busy.error_code) == ("skipped", "already_running")
    with unit_of_work() as uow:
        assert uow.session.get(JobState, name).holder == held  # the skipped run did not release it


def test_an_unreachable_database_is_a_retry_and_runs_nothing(test_job, database_down):
    calls = []
    name = test_job(lambda ctx: calls.append(ctx) or JobResult())
    with pytest.raises(JobRetry) as info:
        run_job(name, slot=unique_minute(), trigger="schedule")
    assert info.value.code == "database_unavailable" and calls == []


def test_a_run_takes_two_statements_on_the_driver_pool_and_none_through_sqlalchemy(test_job):
    """The claim (with its BEGIN, then COMMIT) and the finish: what a tick costs beyond its job's work."""
    name = test_job(lambda ctx: JobResult())
    slot = unique_minute()
    run_job(name, slot=slot, trigger="schedule")  # a pooled connection is open: no connect is counted below
    with through_sqlalchemy() as orm_statements, counting() as statements:
        outcome = run_job(name, slot=slot + timedelta(minutes=1), trigger="schedule", event_id="counted")
    assert outcome.status == "succeeded"
    assert (statements["statements"], statements["round_trips"]) == (2, 3)
    assert orm_statements == []
    run = next(r for r in _runs(name) if r.event_id == "counted")
    assert (run.status, run.attempt, run.counts) == ("succeeded", 1, {})
