"""Notification channel adapters behind one port (``Provider``) and a factory.

``make_provider("aws", region=..., endpoint_url=...)`` for SES + SNS, or
``make_provider("console", outbox_dir=...)`` for files on disk in development.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from shared.notify.providers.aws import AwsProvider, classify_error
from shared.notify.providers.base import (
    PermanentProviderError,
    Provider,
    ProviderError,
    TransientProviderError,
    check_email,
    check_phone,
)
from shared.notify.providers.console import ConsoleProvider

DEFAULT_OUTBOX_DIR: Final = Path(".data/outbox")


def make_provider(name: str, **cfg: Any) -> Provider:
    """Build the provider called ``name`` ("aws" or "console") with its keyword configuration.

    aws: ``region`` (required), ``endpoint_url``, ``configuration_set``, ``sms_type``,
    ``sms_sender_id``, ``connect_timeout``, ``read_timeout``, ``total_attempts``.
    console: ``outbox_dir`` (default ``.data/outbox``, relative to the working directory).
    Cheap: no client is created and boto3 is not imported until the first send.
    """
    key = (name or "").strip().lower()
    if key == "aws":
        return AwsProvider(**cfg)
    if key == "console":
        return ConsoleProvider(**{"outbox_dir": DEFAULT_OUTBOX_DIR, **cfg})
    raise ValueError(f"unknown notification provider {name!r} (expected 'aws' or 'console')")


__all__ = [
    "DEFAULT_OUTBOX_DIR",
    "AwsProvider",
    "ConsoleProvider",
    "PermanentProviderError",
    "Provider",
    "ProviderError",
    "TransientProviderError",
    "check_email",
    "check_phone",
    "classify_error",
    "make_provider",
]
