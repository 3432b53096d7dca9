"""What every publisher adapter shares: the outgoing CloudEvent, the failure, the adapter interface.

Its own module (re-exported by ``shared.events.publishing``) so the adapters, which the package
imports lazily, import these without importing the package that imports them (no cycle).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class PublishError(Exception):
    """The sink did not accept an event. ``code`` is safe to log and store (no PHI)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class OutgoingEvent:
    """A CloudEvent ready for a sink: context attributes (canonical strings) and data bytes."""

    attributes: dict[str, str]
    data: bytes | None

    @property
    def id(self) -> str:
        return self.attributes["id"]

    @property
    def type(self) -> str:
        return self.attributes["type"]

    @property
    def subject(self) -> str | None:
        return self.attributes.get("subject")


# Outcomes for events a publisher did not attempt.
NOT_ATTEMPTED = ("blocked_by_earlier_event", "deadline", "sink_unavailable")


class Publisher(Protocol):
    """A sink adapter. ``publish_many`` returns one outcome per event (None = accepted).

    Events of one subject are given in order; after a failure, the adapter must not publish that
    subject's later events in the same call (they fail with ``blocked_by_earlier_event``). Each
    send waits at most ``timeout`` seconds and nothing is sent after ``deadline``
    (``time.monotonic()``).
    """

    name: str

    def publish_many(self, events: Sequence[OutgoingEvent], *, timeout: float, deadline: float) -> list[PublishError | None]: ...

    def publish(self, event: OutgoingEvent, timeout: float) -> None: ...
