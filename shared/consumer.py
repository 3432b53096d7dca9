"""The CloudEvent consumer boundary shared by lis_consumer, notify and jobs.

A consumer's HTTP status is its acknowledgement: 2xx when the event was applied, was a
duplicate, or was recorded as impossible; 5xx when a retry could help (the platform redelivers).
Deduplication is a row in ``processed_events`` keyed by (consumer, source, id), inserted in the
same transaction as the work: a redelivery hits the primary key and has no second effect, and two
copies arriving at once serialise on that key.

SQLAlchemy and the model are loaded by the first claim, not by importing this module: the jobs
function imports it for its dispatcher, and its PingSource ticks claim nothing here (the runner's
(job, slot) claim replaces the per-event dedupe) and load no SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import flask
from cloudevents.abstract import CloudEvent
from flask import Response

from shared.db import is_transient_db_error, unit_of_work
from shared.log import get_logger
from shared.telemetry import spans

if TYPE_CHECKING:
    from shared.db import UnitOfWork

log = get_logger("patient_mgt.consumer")


class RetryLater(Exception):
    """A transient fault outside the database (a provider is down): answer 5xx so the platform retries."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def claim_event(uow: UnitOfWork, consumer: str, source: str, event_id: str, event_type: str | None) -> bool:
    """True if this transaction is the first to process the event; False for a duplicate."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415 — a tick, which needs no claim, loads no SQLAlchemy

    from shared.models import ProcessedEvent  # noqa: PLC0415

    row = uow.session.execute(
        pg_insert(ProcessedEvent)
        .values(consumer=consumer, source=source, event_id=event_id, event_type=event_type)
        .on_conflict_do_nothing()
        .returning(ProcessedEvent.event_id)
    ).first()
    return row is not None


def bind_event_context(event: CloudEvent) -> None:
    """Continue the producer's trace (the event's ``traceparent``/``tracestate`` extension): this
    delivery's consumer span, its log lines and the events it emits carry the producer's trace id.
    Idempotent within one delivery; the span ends when the answer is ready."""
    spans.begin_event(event)


def acknowledge(status: int = 200, body: dict[str, Any] | None = None) -> Response:
    return flask.make_response(flask.json.dumps(body or {"status": "ok"}), status, {"Content-Type": "application/json"})


def retry_response(reason: str) -> Response:
    """5xx with no detail beyond a safe reason code."""
    return flask.make_response(flask.json.dumps({"status": "retry", "reason": reason}), 503,
                               {"Content-Type": "application/json", "Retry-After": "5"})


def run_idempotent(
    consumer: str,
    event: CloudEvent,
    work: Callable[[UnitOfWork, CloudEvent], str],
) -> str:
    """Claim the event and do the work in one transaction; returns the outcome ("duplicate" or work's).

    Raises ``flask.abort(503)`` for transient faults so functions-framework answers 5xx without
    logging exception text.
    """
    bind_event_context(event)
    fields = {"consumer": consumer, "event_type": event["type"], "event_id": event["id"]}
    try:
        with unit_of_work() as uow:
            if not claim_event(uow, consumer, event["source"], event["id"], event["type"]):
                outcome = "duplicate"
            else:
                outcome = work(uow, event)
    except RetryLater as exc:
        log.warning("event deferred for retry", extra={"fields": {**fields, "reason": exc.reason}})
        flask.abort(retry_response(exc.reason))
    except Exception as exc:
        if is_transient_db_error(exc):
            log.warning("database unavailable; event will be redelivered", extra={"fields": {**fields, "error_type": type(exc).__name__}})
            flask.abort(retry_response("database_unavailable"))
        log.error("event handler failed", exc_info=True, extra={"fields": fields})
        flask.abort(flask.make_response(flask.json.dumps({"status": "error"}), 500, {"Content-Type": "application/json"}))
    log.info("event handled", extra={"fields": {**fields, "outcome": outcome}})
    return outcome


Work = Callable[["UnitOfWork", CloudEvent], str]


class Dispatcher:
    """One consumer's handlers by CloudEvent type, behind the idempotent boundary.

    Types without a handler are acknowledged as ``ignored`` (a retry cannot make them
    applicable) and logged with their type only.
    """

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer
        self.handlers: dict[str, Work] = {}

    def on(self, event_type: str) -> Callable[[Work], Work]:
        def register(func: Work) -> Work:
            self.handlers[event_type] = func
            return func

        return register

    def _dispatch(self, uow: UnitOfWork, event: CloudEvent) -> str:
        handler = self.handlers.get(event["type"])
        if handler is None:
            log.warning("no handler for event type", extra={"fields": {"consumer": self.consumer, "event_type": event["type"]}})
            return "ignored"
        return handler(uow, event)

    def handle(self, event: CloudEvent) -> str:
        return run_idempotent(self.consumer, event, self._dispatch)
