"""CloudEvent handling of the jobs function: deduped, then dispatched by event type."""

from __future__ import annotations

from cloudevents.abstract import CloudEvent

from shared.consumer import Dispatcher

dispatcher = Dispatcher("jobs")


def handle_event(event: CloudEvent) -> None:
    dispatcher.handle(event)
