"""CloudEvent handling of the notify function: dedupe, then dispatch by event type.

Event types without a handler here are acknowledged as `ignored` (a retry cannot make them
applicable) and logged with their type only.
"""

from __future__ import annotations

from collections.abc import Callable

from cloudevents.abstract import CloudEvent

from shared.consumer import run_idempotent
from shared.db import UnitOfWork
from shared.log import get_logger

CONSUMER = "notify"
log = get_logger(__name__)

HANDLERS: dict[str, Callable[[UnitOfWork, CloudEvent], str]] = {}


def _dispatch(uow: UnitOfWork, event: CloudEvent) -> str:
    handler = HANDLERS.get(event["type"])
    if handler is None:
        log.warning("no handler for event type", extra={"fields": {"event_type": event["type"]}})
        return "ignored"
    return handler(uow, event)


def handle_event(event: CloudEvent) -> None:
    run_idempotent(CONSUMER, event, _dispatch)
