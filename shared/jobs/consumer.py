"""CloudEvent handling of the jobs function.

Four kinds of delivery arrive here:
- PingSource ticks (``dev.knative.sources.ping``): run the named job at most once per scheduled
  slot (``shared.jobs.runner``; the slot claim replaces the per-event dedupe, since every tick has a
  new random id). Unknown jobs are logged and acknowledged; a transient fault is a 503.
- Run requests (``job.run.requested``, the console's Run now for a job the api cannot run): run
  the job once per request, the same way (the request's moment is the slot).
- FHIR Bulk Data exports (``fhir.export.requested``): one slice of the export per delivery
  (``shared.fhir.export_job``); like a run request, not through the dispatcher, since a slice works
  in transactions of its own, and each slice asks for the next.
- Broker events routed by Triggers: deduped, then dispatched by type to the default worker.
- Dead letters (path ``/dead-letter``, or Knative's error extensions): stored for an operator.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import flask
from cloudevents.abstract import CloudEvent

from shared.consumer import Dispatcher, bind_event_context, retry_response
from shared.events import type_names
from shared.events.dead_letter_route import is_dead_letter
from shared.jobs import ping, registry
from shared.jobs.context import JobRetry
from shared.jobs.runner import run_job
from shared.log import get_logger
from shared.settings import get_settings

if TYPE_CHECKING:
    from shared.db import UnitOfWork

log = get_logger("patient_mgt.jobs")



def _loaded_on_use(module: str, name: str) -> Callable[[UnitOfWork, CloudEvent], str]:
    """The handler ``module.name``, imported by its first event (cold start: a tick or a dead letter
    does not load the data-quality checks or the HL7 order rendering)."""

    def handler(uow: UnitOfWork, event: CloudEvent) -> str:
        return getattr(importlib.import_module(module), name)(uow, event)

    handler.__name__ = handler.__qualname__ = name
    return handler


dispatcher = Dispatcher("jobs")
dispatcher.on(type_names.PATIENT_UPDATED)(_loaded_on_use("shared.jobs.worker", "recheck_patient"))
dispatcher.on(type_names.LIS_PATIENT_UPDATED)(_loaded_on_use("shared.jobs.worker", "recheck_patient"))
dispatcher.on(type_names.LIS_PATIENT_CREATED)(_loaded_on_use("shared.jobs.worker", "recheck_patient"))
dispatcher.on(type_names.PATIENT_MERGED)(_loaded_on_use("shared.jobs.worker", "recheck_merged"))
dispatcher.on(type_names.PATIENT_UNMERGED)(_loaded_on_use("shared.jobs.worker", "recheck_unmerged"))
dispatcher.on(type_names.ORDER_OVERDUE)(_loaded_on_use("shared.jobs.worker", "record_overdue"))
# Order messages for the LIS (docs/lis.md §9); shared.jobs.orders_out.ACTIONS maps these types to actions.
for _order_event in (type_names.ORDER_REQUESTED, type_names.ORDER_CHANGED, type_names.ORDER_CANCELLED):
    dispatcher.on(_order_event)(_loaded_on_use("shared.jobs.orders_out", "send_order_to_lis"))


def handle_event(event: CloudEvent) -> None:
    # Dead letters (path /dead-letter, or Knative's knativeerror* extensions) are stored, not dispatched.
    path = flask.request.path if flask.has_request_context() else None
    if is_dead_letter(event.get_attributes(), path):
        from shared.events import dead_letters  # noqa: PLC0415 — the store, its model and the audit trail

        bind_event_context(event)  # its consumer span and log lines continue the event's trace
        dead_letters.handle_delivery(dict(event.get_attributes()), event.get_data())
        return
    if ping.is_ping(event):
        handle_tick(event)
        return
    if event["type"] == type_names.JOB_RUN_REQUESTED:
        handle_run_request(event)
        return
    if event["type"] == type_names.FHIR_EXPORT_REQUESTED:
        handle_export(event)
        return
    dispatcher.handle(event)


def handle_tick(event: CloudEvent) -> str:
    """Run the job a PingSource tick names; returns the run's status."""
    bind_event_context(event)
    name = ping.job_name(event)
    job = registry.get(name) if name else None
    if job is None:
        # A retry cannot make the job exist: acknowledge, loudly.
        log.error("PingSource tick names no known job", extra={"fields": {
            "job": (name or "")[:64], "event_id": event["id"], "source": str(event["source"])[:300]}})
        return "unknown_job"
    try:
        outcome = run_job(job.name, slot=ping.slot(job, event), trigger="schedule", event_id=str(event["id"]))
    except JobRetry as exc:
        flask.abort(retry_response(exc.code))
    return outcome.status


def handle_run_request(event: CloudEvent) -> str:
    """Run the job an operator asked for, with ``trigger = console``; returns the run's status.

    The slot is the moment of the request (in the data), so every delivery of one request claims
    the same (job, slot) and the job runs once; a run that ended in ``retry`` is claimed again by
    the redelivery the 503 asks for. Not through the dispatcher: its per-event claim would hold a
    transaction (and the request thread's one pooled connection) open across a run that works in
    transactions of its own.
    """
    from shared.events import catalog  # noqa: PLC0415 — the payload models; a tick needs none
    from shared.jobs.worker import event_data  # noqa: PLC0415

    bind_event_context(event)
    data = event_data(event, catalog.JobRunRequested)
    if data is None:
        return "ignored"
    try:
        outcome = run_job(data.job, slot=data.requested_at, trigger="console", event_id=str(event["id"]))
    except JobRetry as exc:
        flask.abort(retry_response(exc.code))
    return outcome.status


def handle_export(event: CloudEvent) -> str:
    """One slice of a FHIR Bulk Data export. Every delivery of one step is answered once: the export
    row's step and lease decide (a duplicate of a past step is acknowledged; a step another delivery
    still holds is a 503, redelivered until that delivery finishes or its lease runs out)."""
    from shared.events import catalog  # noqa: PLC0415
    from shared.fhir import export_job  # noqa: PLC0415 — only exports need the FHIR mappings
    from shared.jobs.worker import event_data  # noqa: PLC0415

    bind_event_context(event)
    data = event_data(event, catalog.FhirExportRequested)
    if data is None:
        return "ignored"
    try:
        return export_job.run_slice(data.export_id, data.step, get_settings().job_time_budget_seconds)
    except export_job.ExportRetry as exc:
        flask.abort(retry_response(str(exc)))
