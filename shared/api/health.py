"""Liveness (process up) and readiness (the pool can run a query).

Readiness takes a connection from the request pool and runs a query on it, every time (nothing is
cached): the platform must stop sending traffic while this process's pool cannot reach PostgreSQL,
and send it again as soon as it can. The statement gets a short ``statement_timeout`` and must
return the row it asked for (a connection that answers with another statement's rows is out of step
with its server). The connection of a failed probe is discarded, so the next probe tries a fresh
one and readiness comes back with the database. The checkout waits at most
``DB_POOL_TIMEOUT_SECONDS`` and a connect at most 5 s; the probe's own ``timeoutSeconds``
(knative/app/services.yaml) counts a slower answer as a failure anyway.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Response

from shared.db import get_engine
from shared.errors import ServiceUnavailable
from shared.http.context import RequestContext, json_response
from shared.http.routing import route
from shared.log import get_logger

log = get_logger(__name__)
READY_STATEMENT_TIMEOUT_MS = 1000


@route("GET", "/healthz", scope=None, summary="Liveness: the process answers", tag="operations")
def healthz(ctx: RequestContext) -> Response:
    return json_response({"status": "ok"})


@route("GET", "/readyz", scope=None, summary="Readiness: the database answers through the pool", tag="operations")
def readyz(ctx: RequestContext) -> Response:
    try:
        with get_engine().connect() as conn:
            try:
                # SET LOCAL: the timeout ends with this transaction (rolled back when the connection returns).
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {READY_STATEMENT_TIMEOUT_MS}")
                if conn.execute(sa.text("SELECT 1")).scalar() != 1:
                    raise RuntimeError("wrong answer")
            except Exception:
                conn.invalidate()  # whatever failed here, the next probe starts from a new connection
                raise
    except Exception as exc:  # noqa: BLE001 — any failure to run a query means not ready
        log.warning("readiness check failed", extra={"fields": {"error_type": type(exc).__name__}})
        raise ServiceUnavailable("The database is not reachable", retry_after=2) from None
    return json_response({"status": "ready"})
