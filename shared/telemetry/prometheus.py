"""The Prometheus text exposition of this process's instruments (``GET /metrics`` on the api).

The OpenTelemetry Prometheus reader collects on demand: each scrape reads the instruments and runs
the queue-depth callbacks (one PostgreSQL query). Scrapes are serialised: the reader hands its
data to the collector through a queue that two concurrent scrapes would split between them.
"""

from __future__ import annotations

import threading

from shared.telemetry import setup

_lock = threading.Lock()


def render() -> tuple[bytes, str] | None:
    """(body, content type) of the Prometheus text format, or None when ``prometheus`` is not a
    configured metrics exporter."""
    registry = setup.prometheus_registry()
    if registry is None:
        return None
    from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest  # noqa: PLC0415

    with _lock:
        return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4
