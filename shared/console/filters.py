"""Jinja2 filters for the console's templates: times in UTC, ages, durations, counts, query strings."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from shared.console.chart import duration
from shared.models.base import utcnow


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(value: datetime | None) -> str:
    if value is None:
        return "—"
    seconds = max((utcnow() - value).total_seconds(), 0.0)
    return f"{duration(seconds)} ago"


def count(value: int | float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def query_string(args: Any, **overrides: Any) -> str:
    """The current query string with some parameters replaced (None removes one)."""
    merged = {k: v for k, v in (args or {}).items() if v not in (None, "")}
    for key, value in overrides.items():
        if value in (None, ""):
            merged.pop(key, None)
        else:
            merged[key] = value
    return "?" + urlencode(merged) if merged else ""


FILTERS = {"when": when, "ago": ago, "duration": duration, "count": count}
