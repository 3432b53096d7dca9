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

from flask import Response

from shared.db import check_ready
from shared.http.context import RequestContext, json_response
from shared.http.routing import route


@route("GET", "/healthz", scope=None, summary="Liveness: the process answers", tag="operations")
def healthz(ctx: RequestContext) -> Response:
    return json_response({"status": "ok"})


@route("GET", "/readyz", scope=None, summary="Readiness: the database answers through the pool", tag="operations")
def readyz(ctx: RequestContext) -> Response:
    check_ready()
    return json_response({"status": "ready"})

