"""An in-memory provider for tests of code that sends notifications (never used by make_provider)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from shared.notify.providers.base import ProviderError, check_email, check_phone, check_rendered

if TYPE_CHECKING:
    from shared.notify.render import Rendered


@dataclass(frozen=True)
class SentMessage:
    channel: Literal["email", "sms"]
    to: str
    rendered: Rendered
    from_address: str | None
    message_id: str


class FakeProvider:
    """Records what was sent in ``sent``; ``fail_next(error)`` makes the next send raise ``error``.

    Validates addresses like the real providers (invalid phone → PermanentProviderError).
    """

    name = "fake"

    def __init__(self) -> None:
        self.sent: list[SentMessage] = []
        self._failures: list[ProviderError] = []
        self._lock = threading.Lock()

    def fail_next(self, error: ProviderError, times: int = 1) -> None:
        with self._lock:
            self._failures.extend([error] * times)

    def send_email(self, to: str, rendered: Rendered, *, from_address: str) -> str:
        check_rendered(rendered, "email")
        check_email(to)
        check_email(from_address, reason="invalid_sender")
        return self._record("email", to, rendered, from_address)

    def send_sms(self, to: str, rendered: Rendered) -> str:
        check_rendered(rendered, "sms")
        check_phone(to)
        return self._record("sms", to, rendered, None)

    def _record(self, channel: Literal["email", "sms"], to: str, rendered: Rendered, from_address: str | None) -> str:
        with self._lock:
            if self._failures:
                raise self._failures.pop(0)
            message_id = f"fake-{len(self.sent) + 1}"
            self.sent.append(SentMessage(channel, to, rendered, from_address, message_id))
            return message_id
