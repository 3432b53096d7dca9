"""Messages for the LIS: pulled from the outbound subscription, sent over MLLP, acknowledged to
Pub/Sub only once the LIS accepted them.

`patient-mgt mllp` runs this beside the listener when `LIS_MLLP_HOST` is set. One message at a
time (flow control 1; with an ordered subscription, one patient's order messages keep their
order). Each message is sent with `sender.deliver`: up to `LIS_OUTBOUND_ATTEMPTS` sends with
backoff; AE/AR/no ACK/no connection use an attempt. When they are used up the message is nacked:
Pub/Sub redelivers it, and after the subscription's `max_delivery_attempts` moves it to the
dead-letter topic, where its hold subscription keeps it for an operator (docs/deploy.md). What the LIS answered is written to the order (`order_status`) before
the message is acked; when that write fails the message is nacked and sent again later (same
MSH-10, which the LIS deduplicates). Logs carry answer codes and counts, never the message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

from shared.log import get_logger

from .pull import PullSubscriber
from .sender import Answer, Outcome, deliver

log = get_logger(__name__)


class OutboundRelay(PullSubscriber):
    max_messages = 1  # one at a time: an ordered subscription keeps one patient's order messages in order

    def __init__(self, subscription: str, send: Callable[[bytes], Awaitable[Answer]], *, attempts: int, backoff: float,
                 loop: asyncio.AbstractEventLoop, on_outcome: Callable[[bytes, Outcome], str] | None = None) -> None:
        super().__init__(subscription)
        self.send = send
        self.attempts = attempts
        self.backoff = backoff
        self.loop = loop
        self.on_outcome = on_outcome

    def start(self) -> None:
        super().start()
        log.info("lis outbound relay started", extra={"fields": {"attempts": self.attempts}})

    def handle(self, message: Any) -> None:
        """Runs on the subscriber's thread; the MLLP exchange runs on the listener's event loop."""
        data = bytes(message.data)
        pending: Future[Outcome] = asyncio.run_coroutine_threadsafe(
            deliver(lambda: self.send(data), attempts=self.attempts, backoff=self.backoff), self.loop)
        try:
            outcome = pending.result()
        except Exception as exc:  # noqa: BLE001 — a bug must not ack: redelivered, then dead-lettered
            log.error("lis outbound failed", extra={"fields": {"error": type(exc).__name__}})
            message.nack()
            return
        fields = {"answer": outcome.last.code, "attempts": outcome.attempts, "order_control": outcome.last.order_control,
                  "delivery_attempt": getattr(message, "delivery_attempt", None)}
        if self.on_outcome is not None:
            try:
                fields["recorded"] = self.on_outcome(data, outcome)
            except Exception as exc:  # noqa: BLE001 — not recorded: resent later (the LIS deduplicates on MSH-10)
                log.error("lis outbound answer not recorded", extra={"fields": {**fields, "error": type(exc).__name__}})
                message.nack()
                return
        if outcome.delivered:
            log.info("lis outbound accepted", extra={"fields": fields})
            message.ack()
        else:
            log.warning("lis outbound not accepted; left to Pub/Sub's redelivery and dead-letter policy", extra={"fields": fields})
            message.nack()
