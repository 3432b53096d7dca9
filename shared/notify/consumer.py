"""CloudEvent handling of the notify function: ``result.available`` (results ready; and critical results
raise their alert), ``patient.registered``, ``result.critical`` and ``critical_alert.escalated`` (send the
alert to the team, shared/notify/critical.py).

Its own boundary, built from the pieces of ``shared.consumer``: notify cannot claim
``processed_events`` in the transaction of its work, because the work spans three transactions
(the ``sending`` row must be committed before the provider is called). The notification rows,
unique per (event, kind, channel), are the idempotency record instead.

Answers (the HTTP status is the acknowledgement):
- 200: applied (sent, skipped, scheduled, failed permanently), a duplicate, or an event notify ignores;
- 400: the event can never apply (data not matching the catalog, an unknown patient) — Knative does not
  retry a 400 and hands the event to the dead-letter sink, where it is stored for an operator;
- 503: retry — the provider or the database is unavailable, or another delivery is sending right now;
- 500: a bug (a broken template, an unexpected provider error); the platform retries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import flask
from cloudevents.abstract import CloudEvent
from pydantic import ValidationError

from shared.consumer import RetryLater, bind_event_context, retry_response
from shared.db import is_transient_db_error, unit_of_work
from shared.events import catalog
from shared.log import get_logger
from shared.notify.service import NotifyRequest, UnknownPatient, notify_for_event

log = get_logger("patient_mgt.notify.consumer")

NOTIFYING_STATUSES = frozenset({"final", "corrected"})


class Rejected(Exception):
    """The event can never be applied; ``reason`` is a safe code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _data(event: CloudEvent) -> dict[str, Any]:
    data = event.get_data()
    if isinstance(data, (bytes, bytearray)):
        try:
            data = json.loads(data)
        except ValueError:
            raise Rejected("invalid_event_data") from None
    if not isinstance(data, dict):
        raise Rejected("invalid_event_data")
    return data


def _parse(model: type[catalog.EventData], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError:
        raise Rejected("invalid_event_data") from None


def _request(event: CloudEvent, kind: str, patient_id: uuid.UUID, order_id: uuid.UUID | None = None) -> NotifyRequest:
    return NotifyRequest(kind=kind, patient_id=patient_id, event_source=str(event["source"]), event_id=str(event["id"]),
                         event_type=str(event["type"]), order_id=order_id)


def on_result_available(event: CloudEvent) -> dict[str, int] | str:
    data = _data(event)
    if data.get("status") not in NOTIFYING_STATUSES:
        return "not_final"  # preliminary results never notify
    parsed: catalog.ResultAvailable = _parse(catalog.ResultAvailable, data)
    from shared.critical.check import any_critical  # noqa: PLC0415 — SQL text: no ORM for results that are not critical

    if any_critical(parsed.result_ids):
        from shared.critical.alerts import raise_alerts  # noqa: PLC0415 — the ORM, for the alerts to raise

        # Critical results first (their own transaction; once per result, whatever happens to the rest).
        with unit_of_work() as uow:
            raise_alerts(uow, parsed.result_ids)
    return notify_for_event(_request(event, "results_ready", parsed.patient_id, parsed.order_id))


def on_critical_alert(event: CloudEvent) -> str:
    parsed: catalog.CriticalAlertEvent = _parse(catalog.CriticalAlertEvent, _data(event))
    from shared.notify import critical  # noqa: PLC0415 — the ORM: a welcome's path does without it

    level = "alert" if event["type"] == catalog.RESULT_CRITICAL else "escalation"
    try:
        return critical.deliver(parsed.alert_id, level)
    except critical.UnknownAlert:
        raise Rejected("unknown_alert") from None


def on_patient_registered(event: CloudEvent) -> dict[str, int] | str:
    parsed: catalog.PatientRegistered = _parse(catalog.PatientRegistered, _data(event))
    return notify_for_event(_request(event, "welcome", parsed.patient_id))


HANDLERS: dict[str, Callable[[CloudEvent], dict[str, int] | str]] = {
    catalog.RESULT_AVAILABLE: on_result_available,
    catalog.PATIENT_REGISTERED: on_patient_registered,
    catalog.RESULT_CRITICAL: on_critical_alert,
    catalog.CRITICAL_ALERT_ESCALATED: on_critical_alert,
}


def _reply(status: int, body: dict[str, Any]) -> flask.Response:
    return flask.make_response(flask.json.dumps(body), status, {"Content-Type": "application/json"})


def handle_event(event: CloudEvent) -> None:
    """Apply one delivery; answers by returning (200) or by ``flask.abort`` with the response."""
    bind_event_context(event)
    fields = {"consumer": "notify", "event_type": event["type"], "event_id": event["id"]}
    handler = HANDLERS.get(event["type"])
    if handler is None:
        log.warning("no handler for event type", extra={"fields": fields})
        return
    try:
        outcome = handler(event)
    except Rejected as exc:
        log.warning("event rejected", extra={"fields": {**fields, "reason": exc.reason}})
        flask.abort(_reply(400, {"status": "rejected", "reason": exc.reason}))
    except UnknownPatient:
        log.warning("event rejected", extra={"fields": {**fields, "reason": "unknown_patient"}})
        flask.abort(_reply(400, {"status": "rejected", "reason": "unknown_patient"}))
    except RetryLater as exc:
        log.warning("event deferred for retry", extra={"fields": {**fields, "reason": exc.reason}})
        flask.abort(retry_response(exc.reason))
    except Exception as exc:
        if is_transient_db_error(exc):
            log.warning("database unavailable; event will be redelivered",
                        extra={"fields": {**fields, "error_type": type(exc).__name__}})
            flask.abort(retry_response("database_unavailable"))
        log.error("event handler failed", exc_info=True, extra={"fields": fields})
        flask.abort(_reply(500, {"status": "error"}))
    log.info("event handled", extra={"fields": {**fields, "outcome": outcome}})
