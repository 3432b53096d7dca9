"""The lis_consumer function's CloudEvent path: a CloudEvent in, the ingest's acknowledgement out.

CloudEvents (Eventarc messagePublished, or a LIS's own application/hl7-v2 and application/json
events) reach `handle_event` through functions-framework. Raw Pub/Sub push bodies and requests
that are not CloudEvents are answered earlier, by `shared.lis.http.before_request`.
"""

from __future__ import annotations

import flask
from cloudevents.abstract import CloudEvent

from shared.consumer import bind_event_context, retry_response
from shared.lis.envelope import from_cloud_event
from shared.lis.ingest import PartOutcome, TransientFault, ingest
from shared.log import get_logger

log = get_logger("patient_mgt.lis")


def handle_event(event: CloudEvent) -> list[PartOutcome]:
    """Ingest one CloudEvent; a transient fault becomes a 503 (the platform redelivers)."""
    bind_event_context(event)
    try:
        return ingest(from_cloud_event(event.get_attributes(), event.get_data()))
    except TransientFault as fault:
        log.warning("lis delivery deferred for redelivery", extra={"fields": {"reason": fault.reason}})
        flask.abort(retry_response(fault.reason))
