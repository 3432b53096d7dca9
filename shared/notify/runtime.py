"""Per-process notification plumbing: the provider (built once, lazily) and the settings-derived template context.

Building the provider does not import boto3 (the AWS provider creates its clients on the first
send), and nothing here runs at import time: the notify function's cold start pays for neither.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from shared.instants import utcnow
from shared.notify.providers import Provider, make_provider
from shared.settings import get_settings

Clock = Callable[[], datetime]
"""The time port: returns the current instant (timezone-aware). Tests inject a fixed one."""

system_clock: Clock = utcnow

_lock = threading.Lock()
_provider: Provider | None = None


def get_provider() -> Provider:
    """The process's provider, from NOTIFY_PROVIDER (``aws``: SES + SNS; ``console``: DATA_DIR/outbox)."""
    global _provider
    if _provider is None:
        with _lock:
            if _provider is None:
                settings = get_settings()
                if settings.notify_provider == "aws":
                    _provider = make_provider("aws", region=settings.aws_region, endpoint_url=settings.aws_endpoint_url)
                else:
                    _provider = make_provider("console", outbox_dir=settings.data_dir / "outbox")
    return _provider


def reset_provider() -> None:
    """Forget the process's provider (tests that change NOTIFY_PROVIDER or AWS_ENDPOINT_URL)."""
    global _provider
    with _lock:
        _provider = None


def provider_name(provider: Provider) -> str:
    return str(getattr(provider, "name", type(provider).__name__))[:16]


def email_context(given_name: str) -> dict[str, str]:
    """The e-mail template context: the greeting name, the portal link and the facility's name."""
    settings = get_settings()
    return {"given_name": given_name, "portal_url": settings.portal_url or "", "facility_name": settings.notify_facility_name}


def sms_context() -> dict[str, str]:
    """The SMS template context: the portal link only (no name, no facility, no identifier)."""
    return {"portal_url": get_settings().portal_url or ""}


def email_from() -> str:
    return get_settings().notify_email_from
