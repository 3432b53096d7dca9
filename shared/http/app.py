"""Dispatch one HTTP request: route, authenticate, authorise, call the handler, map errors.

Every 4xx/5xx leaves here as problem+json. A transient database fault becomes a 503 with
``Retry-After``; anything unexpected becomes a generic 500 whose body and log line carry no
exception text.
"""

from __future__ import annotations

import re
import time
import uuid

from flask import Request, Response
from werkzeug.exceptions import MethodNotAllowed as WzMethodNotAllowed
from werkzeug.exceptions import NotFound as WzNotFound

from shared.auth import Principal, authenticate
from shared.db import is_transient_db_error
from shared.errors import DomainError, Forbidden, MethodNotAllowed, NotFound, ServiceUnavailable
from shared.http.context import RequestContext
from shared.http.problems import from_domain_error, internal_error
from shared.http.routing import NO_STORE, Route, error_renderer_for, match_request, route_for
from shared.ids import uuid4
from shared.log import get_logger, info_fields
from shared.telemetry import spans

log = get_logger("patient_mgt.http")
ANONYMOUS = Principal(key_id=None, name="anonymous", scopes=frozenset())
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
AUDITED_FAILURES = {403, 404, 409, 412, 422, 428}


def _request_id(request: Request) -> str:
    incoming = request.headers.get("X-Request-Id", "")
    return incoming if _REQUEST_ID.match(incoming) else uuid4().hex


def handle(request: Request) -> Response:
    request_id = _request_id(request)
    # Each request is a new span in the caller's trace (traceparent); logs carry the span's ids.
    span = spans.start_server(request.method, request.headers, request_id)
    started = time.perf_counter()
    matched: Route | None = None
    principal = ANONYMOUS
    try:
        try:
            endpoint, args = match_request(request)
        except WzNotFound:
            raise NotFound("No such route") from None
        except WzMethodNotAllowed as exc:
            raise MethodNotAllowed(list(exc.valid_methods or [])) from None
        matched = route_for(endpoint)
        if matched.scope is not None:
            principal = authenticate(request.headers.get("Authorization"))
            if not principal.has(matched.scope):
                raise Forbidden(f"This route needs scope {matched.scope}")
        ctx = RequestContext(request=request, route=matched, principal=principal, request_id=request_id)
        response = matched.handler(ctx, **args)
    except DomainError as error:
        response = _render_error(matched, error, request_id, request.path)
        if matched is not None and matched.audit_action and error.status in AUDITED_FAILURES:
            _audit_failure(matched, principal, error, request)
    except Exception as exc:  # noqa: BLE001 — the one place that turns the unexpected into a response
        if is_transient_db_error(exc):
            log.warning("database unavailable", extra={"fields": {"route": _template(matched), "error_type": type(exc).__name__}})
            response = _render_error(matched, ServiceUnavailable("The database is unavailable; retry shortly"), request_id, request.path)
        else:
            log.error("unhandled error", exc_info=True, extra={"fields": {"route": _template(matched)}})
            response = _render_error(matched, None, request_id, request.path)
    response.headers["X-Request-Id"] = request_id
    response.headers["Cache-Control"] = _cache_control(matched, response)
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    info_fields(log, "request", {"httpRequest": {"requestMethod": request.method, "status": response.status_code,
                                                 "latency": f"{duration_ms / 1000:.4f}s"},
                                 "route": _template(matched), "principal": principal.name})
    spans.finish_server(span, request.method, _template(matched), response.status_code)
    return response


def _render_error(route: Route | None, error: DomainError | None, request_id: str, path: str) -> Response:
    """problem+json, unless the matched route renders its own errors (``Route.error_renderer``) or,
    before any route matched, the path's prefix has a renderer (``/fhir``: OperationOutcome).
    ``error`` None is an unexpected failure: a generic 500."""
    renderer = route.error_renderer if route is not None else error_renderer_for(path)
    if renderer is not None:
        return renderer(error, request_id)
    return from_domain_error(error, request_id) if error is not None else internal_error(request_id)


def _cache_control(route: Route | None, response: Response) -> str:
    """no-store unless the route is a public document and this is its success (docs/api.md, "Caching")."""
    if route is None or response.status_code >= 400:
        return NO_STORE
    return route.cache_control


def _template(route: Route | None) -> str:
    return route.path if route else "(unmatched)"


def _audit_failure(route: Route, principal: Principal, error: DomainError, request: Request) -> None:
    """Refused or failed access to patient data is audited too, in its own transaction."""
    from shared import audit  # noqa: PLC0415  (the ORM: loaded by the first failure to audit)
    from shared.db import unit_of_work  # noqa: PLC0415

    # Only the patient the route names: other ids in a path (dead letters, orders) are not patients.
    view_args = match_request(request)[1]  # what Flask matched: no second match, no map built on a refusal
    patient_ids = [view_args["patient_id"]] if isinstance(view_args.get("patient_id"), uuid.UUID) else []
    try:
        with unit_of_work() as uow:
            audit.record(uow, principal, route.audit_action or "unknown", patient_ids, outcome=error.slug)
    except Exception as exc:  # noqa: BLE001 — the request already failed; say so in the log, keep its response
        log.error("failure audit not written", extra={"fields": {"error_type": type(exc).__name__, "action": route.audit_action}})
