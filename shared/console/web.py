"""The console's machinery: its route table, what a page handler gets, and rendering.

Pages register with ``@page(method, path, scope=...)`` like the api's routes do, on their own
table (the console is not part of the JSON API: no OpenAPI operation, cookie sessions instead of
bearer keys, HTML errors). Jinja2 renders with autoescape on, from templates in this package; the
environment is built once per process, at the first page.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Request, Response
from werkzeug.routing import Map, Rule

from shared.auth import Principal
from shared.console import PREFIX

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True)
class Page:
    method: str
    path: str
    handler: Callable[..., Response]
    # None: open to anyone (sign-in, the stylesheet); "": any signed-in key; else the scope needed.
    scope: str | None

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"


PAGES: list[Page] = []


def page(method: str, path: str, *, scope: str | None) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    def register(handler: Callable[..., Response]) -> Callable[..., Response]:
        PAGES.append(Page(method=method, path=PREFIX + path, handler=handler, scope=scope))
        return handler

    return register


_map: Map | None = None
_by_endpoint: dict[str, Page] = {}


def url_map() -> Map:
    global _map
    if _map is None:
        _by_endpoint.clear()
        for p in PAGES:
            _by_endpoint[p.endpoint] = p
        _map = Map([Rule(p.path, methods=[p.method], endpoint=p.endpoint) for p in PAGES],
                   strict_slashes=True, merge_slashes=False)
    return _map


def page_for(endpoint: str) -> Page:
    return _by_endpoint[endpoint]


@dataclass
class View:
    """What a page handler gets: the request, who is signed in (None on open pages), the CSRF token
    its forms must carry, and the request id to quote."""

    request: Request
    principal: Principal | None
    csrf_token: str
    request_id: str
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def user(self) -> Principal:
        """The signed-in principal (pages with a scope are only called with one)."""
        assert self.principal is not None
        return self.principal

    def can(self, scope: str) -> bool:
        return self.principal is not None and self.principal.has(scope)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        html = environment().get_template(template).render(view=self, **context)
        return Response(html, status=status, mimetype="text/html")


def redirect(location: str, **params: Any) -> Response:
    """303 See Other (a form's POST is followed by a GET) to a console path."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return Response(status=303, headers={"Location": location + (f"?{query}" if query else "")})


_env_lock = threading.Lock()
_env: Any = None


def environment() -> Any:
    global _env
    with _env_lock:
        if _env is None:
            from jinja2 import Environment, PackageLoader, StrictUndefined  # noqa: PLC0415

            from shared.console import filters  # noqa: PLC0415

            env = Environment(loader=PackageLoader("shared.console", "templates"), autoescape=True,
                              undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
            env.filters.update(filters.FILTERS)
            env.globals["prefix"] = PREFIX
            env.globals["qs"] = filters.query_string
            _env = env
        return _env


def sign_in_location(next_path: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if next_path and next_path.startswith(PREFIX + "/") and not next_path.startswith("//") and "\\" not in next_path:
        return next_path
    return PREFIX + "/"
