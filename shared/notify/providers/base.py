"""The provider port: what a notification channel adapter must do, and how it fails.

A provider sends one rendered message and returns the provider's message id, or raises:

* ``TransientProviderError`` — try again later (network down, throttling, 5xx, account or
  credential trouble on our side). The caller answers 5xx so the platform redelivers.
* ``PermanentProviderError`` — this message can never be sent as addressed (rejected or invalid
  address, invalid phone number, unverified sender). The caller records it as failed and answers 2xx.

``reason`` is a short code safe to log and store ("MessageRejected", "invalid_phone"); it never
contains an address, a phone number or provider text. Errors are raised without their cause
chained, because a provider's own message can quote the recipient.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

if TYPE_CHECKING:
    from shared.notify.render import Rendered

E164: Final = re.compile(r"\+[1-9][0-9]{7,14}")
# Deliberately loose (the provider is the authority): one address, no spaces, no header-breaking
# or list characters, something on both sides of a single "@".
_EMAIL: Final = re.compile(r"[^@\s<>,;:\"()\[\]\\]+@[^@\s<>,;:\"()\[\]\\]+")
_SAFE_REASON: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


class ProviderError(Exception):
    """A send failed. ``reason`` is a safe code; ``request_id`` the provider's id for support."""

    def __init__(self, reason: str, *, request_id: str | None = None) -> None:
        self.reason = reason if _SAFE_REASON.fullmatch(reason or "") else "provider_error"
        self.request_id = request_id
        super().__init__(self.reason)


class TransientProviderError(ProviderError):
    """Retry later: the message may succeed on a later attempt."""


class PermanentProviderError(ProviderError):
    """Never retry this message as addressed: record it as failed."""


@runtime_checkable
class Provider(Protocol):
    """A notification channel adapter. Implementations are safe to share between threads."""

    def send_email(self, to: str, rendered: Rendered, *, from_address: str) -> str:
        """Send an e-mail; return the provider's message id."""
        ...

    def send_sms(self, to: str, rendered: Rendered) -> str:
        """Send an SMS to an E.164 number; return the provider's message id."""
        ...


def check_phone(to: str) -> None:
    """Raise PermanentProviderError('invalid_phone') unless ``to`` is E.164 (+ and 8–15 digits)."""
    if not isinstance(to, str) or not E164.fullmatch(to):
        raise PermanentProviderError("invalid_phone")


def check_email(to: str, *, reason: str = "invalid_address") -> None:
    """Raise PermanentProviderError(reason) unless ``to`` looks like a single e-mail address."""
    if not isinstance(to, str) or len(to) > 254 or not _EMAIL.fullmatch(to):
        raise PermanentProviderError(reason)


def check_rendered(rendered: Rendered, channel: str) -> None:
    """Programming errors (not the patient's): an SMS rendering sent as e-mail, or the reverse."""
    if channel == "email" and not rendered.subject:
        raise ValueError("an e-mail needs a rendering with a subject (render(..., 'email', ...))")
    if not rendered.text:
        raise ValueError("nothing to send: the rendering has no text")
