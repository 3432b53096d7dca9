"""Dispatch one console request: match the page, resolve the session, check the scope and (on every
POST) the CSRF token, call the page, and answer HTML with the security headers on every response.

Errors are pages: a domain error shows its title and detail (which never carry patient data), a
transient database fault is a 503, anything else a generic 500 quoting the request id. Log lines
carry the page template and status, never a query string or form field.
"""

from __future__ import annotations

import re
import time

from flask import Request, Response
from werkzeug.exceptions import MethodNotAllowed as WzMethodNotAllowed
from werkzeug.exceptions import NotFound as WzNotFound
from werkzeug.routing import RequestRedirect

from shared.auth import Principal
from shared.console import sessions
from shared.console.web import PREFIX, SECURITY_HEADERS, Page, View, page_for, redirect, url_map
from shared.db import is_transient_db_error
from shared.errors import DomainError, Forbidden, MethodNotAllowed, NotFound, PayloadTooLarge
from shared.ids import uuid4
from shared.log import get_logger
from shared.settings import get_settings
from shared.telemetry import spans

log = get_logger("patient_mgt.console")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def handle(request: Request) -> Response:
    incoming = request.headers.get("X-Request-Id", "")
    request_id = incoming if _REQUEST_ID.match(incoming) else uuid4().hex
    span = spans.start_server(request.method, request.headers, request_id)
    started = time.perf_counter()
    matched: Page | None = None
    principal: Principal | None = None
    try:
        try:
            endpoint, args = url_map().bind_to_environ(request.environ).match()
        except RequestRedirect as moved:  # /console → /console/
            response = redirect(moved.new_url.split("?", 1)[0])
            endpoint = None
        except WzNotFound:
            raise NotFound("No such page") from None
        except WzMethodNotAllowed as exc:
            raise MethodNotAllowed(list(exc.valid_methods or [])) from None
        if endpoint is not None:
            matched = page_for(endpoint)
            response, principal = _serve(request, matched, args, request_id)
    except DomainError as error:
        response = _error_page(request, principal, request_id, error.status, error.title, error.detail,
                               error.extensions.get("errors"))
        if isinstance(error, MethodNotAllowed):
            response.headers["Allow"] = ", ".join(error.allowed)
    except Exception as exc:  # noqa: BLE001 — the one place that turns the unexpected into a page
        if is_transient_db_error(exc):
            log.warning("database unavailable", extra={"fields": {"page": _template(matched), "error_type": type(exc).__name__}})
            response = _error_page(request, principal, request_id, 503, "Database unavailable",
                                   "The database is unavailable; try again shortly.")
            response.headers["Retry-After"] = "2"
        else:
            log.error("unhandled error", exc_info=True, extra={"fields": {"page": _template(matched)}})
            response = _error_page(request, principal, request_id, 500, "Internal error",
                                   "The console failed to handle the request. Quote the request id to support.")
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    response.headers["X-Request-Id"] = request_id
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    log.info("request", extra={"fields": {
        "httpRequest": {"requestMethod": request.method, "status": response.status_code, "latency": f"{duration_ms / 1000:.4f}s"},
        "route": _template(matched), "principal": principal.name if principal else "anonymous"}})
    spans.finish_server(span, request.method, _template(matched), response.status_code)
    return response


def _serve(request: Request, page: Page, args: dict, request_id: str) -> tuple[Response, Principal | None]:
    session_id = request.cookies.get(sessions.COOKIE)
    principal = sessions.principal_for(session_id) if session_id else None
    if page.scope is None:
        token = sessions.csrf_token(session_id) if principal and session_id else request.cookies.get(sessions.SIGN_IN_COOKIE, "")
        view = View(request=request, principal=principal, csrf_token=token, request_id=request_id)
        return page.handler(view, **args), principal
    if principal is None or session_id is None:
        if request.method == "GET":
            target = request.full_path.rstrip("?") if request.query_string else request.path
            return redirect(f"{PREFIX}/sign-in", next=target), None
        return redirect(f"{PREFIX}/sign-in"), None
    if page.scope and not principal.has(page.scope):
        raise Forbidden(f"This page needs an API key with scope {page.scope}")
    token = sessions.csrf_token(session_id)
    if request.method == "POST":
        limit = get_settings().max_body_bytes
        if (request.content_length or 0) > limit:
            raise PayloadTooLarge(f"Body exceeds {limit} bytes")
        if not sessions.tokens_match(token, request.form.get("csrf_token")):
            raise Forbidden("The form's CSRF token is missing or wrong: reload the page and try again")
    view = View(request=request, principal=principal, csrf_token=token, request_id=request_id)
    return page.handler(view, **args), principal


def _error_page(request: Request, principal: Principal | None, request_id: str, status: int, title: str,
                detail: str, errors: list[dict] | None = None) -> Response:
    """``errors``: the fields that failed validation (field, message; never the value sent)."""
    session_id = request.cookies.get(sessions.COOKIE)
    token = sessions.csrf_token(session_id) if principal and session_id else ""
    view = View(request=request, principal=principal, csrf_token=token, request_id=request_id)
    try:
        return view.render("error.html", status=status, status_code=status, title=title, detail=detail,
                           errors=errors or [])
    except Exception:  # noqa: BLE001 — a broken template must not hide the error it reports
        log.error("error page not rendered", exc_info=True)
        return Response(f"{status} {title}", status=status, mimetype="text/plain")


def _template(page: Page | None) -> str:
    return page.path if page else f"{PREFIX}/(unmatched)"

