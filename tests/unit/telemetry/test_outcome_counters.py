"""Registration, notification and job counters: each outcome lands under a bounded label."""

import pytest
from flask import Response
from sqlalchemy import exc as sa_exc

from shared.errors import (
    Conflict,
    DuplicateIdentifier,
    InvalidJson,
    NotFound,
    PayloadTooLarge,
    ProbableDuplicate,
    ServiceUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from shared.telemetry import outcomes, registrations
from tests.support.telemetry import capture


@pytest.fixture()
def cap():
    yield from capture(traces=False)


@pytest.mark.parametrize(("error", "reason"), [
    (ValidationFailed([{"field": "name"}]), "validation"), (InvalidJson(), "validation"), (PayloadTooLarge(), "validation"),
    (UnsupportedMediaType(), "validation"), (ProbableDuplicate("x"), "duplicate"), (DuplicateIdentifier("x"), "conflict"),
    (Conflict("x"), "conflict"), (ServiceUnavailable("x"), "unavailable"),
    (sa_exc.OperationalError("SELECT", {}, ConnectionError()), "unavailable"), (NotFound(), "error"), (RuntimeError(), "error"),
])
def test_rejection_reasons(error, reason):
    assert registrations.rejection_reason(error) == reason


def test_a_counted_handler_counts_attempts_successes_and_rejections(cap):
    calls = iter([Response(status=201), ProbableDuplicate("x"), ValidationFailed([]), Response(status=201)])

    @registrations.counted
    def handler(ctx):
        result = next(calls)
        if isinstance(result, Exception):
            raise result
        return result

    for _ in range(4):
        try:
            handler(None)
        except (ProbableDuplicate, ValidationFailed):
            pass
    data = cap.collect()
    assert cap.value("patient_mgt.registrations.attempted", data) == 4
    assert cap.value("patient_mgt.registrations.succeeded", data) == 2
    assert cap.value("patient_mgt.registrations.rejected", data, reason="duplicate") == 1
    assert cap.value("patient_mgt.registrations.rejected", data, reason="validation") == 1
    assert handler.__name__ == "handler"


def test_notification_and_job_outcomes_keep_their_labels_bounded(cap):
    outcomes.record_notification("sms", "sent", "results_ready")
    outcomes.record_notification("pigeon", "lost", "Dear Mrs Smith")
    outcomes.record_job_run("outbox-sweep", "succeeded", 1.5)
    outcomes.record_job_run("Mrs Smith's job", "exploded", -3)
    data = cap.collect()
    assert cap.value("patient_mgt.notifications", data, channel="sms", status="sent", kind="results_ready") == 1
    assert cap.value("patient_mgt.notifications", data, channel="other", status="other", kind="other") == 1
    assert cap.value("patient_mgt.job.runs", data, job="outbox-sweep", status="succeeded") == 1
    assert cap.value("patient_mgt.job.runs", data, job="other", status="other") == 1
    [sweep] = cap.histogram("patient_mgt.job.run.duration", data, job="outbox-sweep")
    assert sweep.count == 1 and sweep.sum == 1.5
    [other] = cap.histogram("patient_mgt.job.run.duration", data, job="other")
    assert other.sum == 0.0
    assert "Smith" not in data.to_json()


def test_lis_outcomes_are_read_back_only_when_metrics_are_on(monkeypatch):
    import uuid

    from shared.telemetry import setup

    class Outcome:
        message_id = uuid.uuid4()
        status = "processed"

    reads = []
    monkeypatch.setattr(outcomes, "_lis_rows", lambda ids: reads.append(ids) or {})
    setup.shutdown()
    outcomes.record_lis_outcomes([Outcome()])
    assert reads == []
    with_metrics = capture(traces=False)
    cap = next(with_metrics)
    outcomes.record_lis_outcomes([Outcome()])
    assert reads == [[Outcome.message_id]]
    # a row that cannot be read back still counts, under an unknown type and without a lag
    assert cap.value("patient_mgt.lis.messages", message_type="unknown", outcome="processed") == 1
    assert cap.histogram("patient_mgt.lis.lag") == []
    with_metrics.close()
