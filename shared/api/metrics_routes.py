"""GET /metrics: this api instance's instruments and the queue depths, in Prometheus text format.

Served when ``OTEL_METRICS_EXPORTER`` includes ``prometheus``; otherwise 404 with a problem saying
how to turn it on. Needs the ``metrics:read`` scope (or ``admin``): a scraper's key reads metrics
and nothing else. Nothing in it is patient data (``docs/operations.md`` lists every series).
"""

from __future__ import annotations

from flask import Response

from shared.errors import NotFound
from shared.http.context import RequestContext
from shared.http.routing import route


@route("GET", "/metrics", scope="metrics:read", summary="Metrics in Prometheus text format", tag="operations",
       responses={200: None, 404: None})
def metrics(ctx: RequestContext) -> Response:
    from shared.telemetry.prometheus import render  # noqa: PLC0415

    rendered = render()
    if rendered is None:
        raise NotFound("Metrics are not served here: set OTEL_METRICS_EXPORTER to include prometheus")
    body, content_type = rendered
    return Response(body, status=200, content_type=content_type)
