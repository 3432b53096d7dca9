"""Liveness (process up) and readiness (database reachable)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Response

from shared.db import get_engine
from shared.errors import ServiceUnavailable
from shared.http.context import RequestContext, json_response
from shared.http.routing import route
from shared.log import get_logger

log = get_logger(__name__)


@route("GET", "/healthz", scope=None, summary="Liveness: the process answers", tag="operations")
def healthz(ctx: RequestContext) -> Response:
    return json_response({"status": "ok"})


@route("GET", "/readyz", scope=None, summary="Readiness: the database answers", tag="operations")
def readyz(ctx: RequestContext) -> Response:
    try:
        with get_engine().connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 — any failure to reach the database means not ready
        log.warning("readiness check failed", extra={"fields": {"error_type": type(exc).__name__}})
        raise ServiceUnavailable("The database is not reachable", retry_after=2) from None
    return json_response({"status": "ready"})
