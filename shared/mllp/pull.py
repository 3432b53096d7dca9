"""A streaming pull on one subscription, started and stopped with the adapter (`outbound.OutboundRelay`,
`dead_letters.DeadLetterDrain`): the subclass's `handle` runs on the subscriber's thread, once per
message, and acks or nacks it."""

from __future__ import annotations

from typing import Any


class PullSubscriber:
    subscription: str
    max_messages: int = 1

    def __init__(self, subscription: str) -> None:
        self.subscription = subscription
        self._future: Any = None
        self._client: Any = None

    def handle(self, message: Any) -> None:
        raise NotImplementedError

    def start(self) -> None:
        from google.cloud import pubsub_v1  # noqa: PLC0415

        self._client = pubsub_v1.SubscriberClient()
        self._future = self._client.subscribe(self.subscription, self.handle,
                                              flow_control=pubsub_v1.types.FlowControl(max_messages=self.max_messages))

    def stop(self) -> None:
        if self._future is not None:
            self._future.cancel()
            try:
                self._future.result(timeout=10)
            except Exception:  # noqa: BLE001 — cancelled or already failed: nothing left to do
                pass
        if self._client is not None:
            self._client.close()
