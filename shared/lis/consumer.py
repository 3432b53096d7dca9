"""CloudEvent handling of the lis-consumer function: deduped, then dispatched by event type."""

from __future__ import annotations

from cloudevents.abstract import CloudEvent

from shared.consumer import Dispatcher

dispatcher = Dispatcher("lis-consumer")


def handle_event(event: CloudEvent) -> None:
    dispatcher.handle(event)
