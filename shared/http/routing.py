"""The api function's route table: one list, used for dispatch, OpenAPI and the scope tests.

A module's ``@route`` registers on import. With an index (``use_index``, the api's is
``shared.api.index``) the table dispatches on routes whose modules are not imported yet and imports
a module when a request first matches one of its routes; ``load_all`` imports them all.

Paths use werkzeug rules (``/patients/<uuid:patient_id>``), so a malformed UUID simply matches no
route (404) instead of reaching a handler.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from werkzeug.routing import Map, MapAdapter, Rule

if TYPE_CHECKING:
    from flask import Flask, Request, Response

    from shared.errors import DomainError


NO_STORE = "no-store"
# The API description and the FHIR CapabilityStatement: public, the same for every caller, no patient data.
PUBLIC_DOCUMENT = "public, max-age=300"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[..., Any]
    scope: str | None  # None: public (health checks, OpenAPI)
    summary: str
    tag: str = "patients"
    body: type[BaseModel] | None = None
    # The media type(s) the body is accepted in (OpenAPI lists each), e.g. a merge patch's two.
    body_content_type: str | tuple[str, ...] = "application/json"
    query: type[BaseModel] | None = None
    # status -> response model (None: no body); problem responses are added by the OpenAPI generator.
    # A model may be named "module:Class" instead, imported only for OpenAPI (``response_models``): a
    # hot route whose handler never builds its response model does not load it on its first request.
    responses: dict[int, type[BaseModel] | str | None] = field(default_factory=dict)
    # When set, failures after authentication (403/404/409/412/422) are audited under this action.
    audit_action: str | None = None
    headers_in: tuple[str, ...] = ()
    # Headers a successful response carries besides Location on a 201 (OpenAPI), e.g. ("ETag",).
    headers_out: tuple[str, ...] = ()
    # Renders this route's errors instead of problem+json (the FHIR view answers OperationOutcome).
    # Called with the domain error, or None for an unexpected failure (a generic 500), and the request id.
    error_renderer: Callable[[DomainError | None, str], Response] | None = None
    # Media type of the response bodies, success and error (OpenAPI); problem+json unless error_renderer.
    media_type: str = "application/json"
    # Cache-Control of this route's successful responses. Every response that may carry patient data
    # is no-store (errors always are); only public documents without patient data may say otherwise.
    cache_control: str = NO_STORE

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"

    def response_models(self) -> dict[int, type[BaseModel] | None]:
        """``responses`` with every model named "module:Class" imported."""
        return {status: _model(model) if isinstance(model, str) else model for status, model in self.responses.items()}


def _model(name: str) -> type[BaseModel]:
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)  # type: ignore[no-any-return]


ROUTES: list[Route] = []
# Path prefix → the renderer of errors under it that no route has matched yet (unknown path, wrong
# method): ``/fhir`` answers OperationOutcome there too. Longest prefix wins.
PREFIX_ERROR_RENDERERS: dict[str, Callable[[DomainError | None, str], Response]] = {}

# The lazy index (``use_index``): "METHOD path" → module that registers it, and prefix → module that
# registers the prefix's error renderer. Empty: every route is registered by importing its module first.
_index: dict[str, str] = {}
_renderer_modules: dict[str, str] = {}


def use_index(routes: Mapping[str, str], renderers: Mapping[str, str] = {}) -> None:  # noqa: B006 — read only
    """Dispatch on ``routes`` ("METHOD path" → module) before their modules are imported; a module is
    imported when a request first matches one of its routes (cold start: only what a request uses)."""
    global _map
    _index.update(routes)
    _renderer_modules.update(renderers)
    _map = None


def load_all() -> list[Route]:
    """Import every module of the index (OpenAPI, the tests that walk the whole table) and return the table."""
    for module in sorted({*_index.values(), *_renderer_modules.values()}):
        importlib.import_module(module)
    return ROUTES


def error_renderer_for(path: str) -> Callable[[DomainError | None, str], Response] | None:
    """The renderer registered for ``path``'s prefix (a whole segment: ``/fhirx`` is not ``/fhir``)."""
    for prefix, module in _renderer_modules.items():
        if prefix not in PREFIX_ERROR_RENDERERS and _under(path, prefix):
            importlib.import_module(module)
    for prefix in sorted(PREFIX_ERROR_RENDERERS, key=len, reverse=True):
        if _under(path, prefix):
            return PREFIX_ERROR_RENDERERS[prefix]
    return None


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def route(method: str, path: str, *, scope: str | None, summary: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        global _map
        registered = Route(method=method, path=path, handler=handler, scope=scope, summary=summary, **kwargs)
        ROUTES.append(registered)
        _by_endpoint[registered.endpoint] = registered
        if registered.endpoint not in _index:
            _map = None  # a route outside the index: the next dispatch rebuilds the map with it
        return handler

    return register


_map: Map | None = None
_adapter: tuple[Map, MapAdapter] | None = None
_by_endpoint: dict[str, Route] = {}
# One thread builds the map; the others wait for it. Building it compiles every rule (werkzeug parses
# generated Python with ``ast.parse``), and request threads that built it at once — the first refused
# PATCHes of a new process, each auditing its failure — raised SystemError from that parse in one of
# them while another thread imported (tests/unit/http/test_route_map.py; the registry's race e2e test).
_map_lock = threading.Lock()


def url_map() -> Map:
    """Every indexed route and every registered one, whether or not its module is imported yet."""
    global _map
    current = _map
    if current is None:
        with _map_lock:
            current = _map
            if current is None:
                paths = {endpoint: endpoint.split(" ", 1) for endpoint in _index}
                paths.update({r.endpoint: (r.method, r.path) for r in ROUTES})
                rules = [Rule(path, methods=[method], endpoint=endpoint, strict_slashes=False)
                         for endpoint, (method, path) in paths.items()]
                current = _map = Map(rules, strict_slashes=False, merge_slashes=False)
    return current


def match(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """(endpoint, arguments) of the rule ``method path`` matches, or werkzeug's NotFound/MethodNotAllowed.

    One adapter per map, bound once: the rules match on path and method only (no host, no
    subdomain, no redirects: ``strict_slashes`` is off), so binding to each request's environ (its
    host and script name decoded on every request) bought nothing. Matching does not change the
    adapter, so the request threads share it."""
    global _adapter
    current = url_map()
    bound = _adapter
    if bound is None or bound[0] is not current:
        bound = _adapter = (current, current.bind("localhost"))
    return bound[1].match(path, method)


_in_flask: frozenset[str] = frozenset()


def match_in_flask(app: Flask) -> None:
    """Add the table's rules (indexed and registered) to ``app``'s own URL map, so that the one match
    Flask makes of every request finds the route (``match_request``) instead of functions-framework's
    catch-all ``/<path:path>`` followed by a second match here. Each dispatches to
    functions-framework's view as the catch-all does (the same function, the same execution context).
    Static segments are tried before the catch-all, so a request Flask matches to a rule of the table
    is one ``match`` would match to it; a wrong method, an unknown path or a route registered later
    still falls to the catch-all and is matched here (404 and 405 as before). The rules keep Flask's
    map's slash merging, as the catch-all did: a path with ``//`` is redirected as before."""
    global _in_flask
    views = app.view_functions  # functions-framework adds its view ("run") after loading the function

    def view(**_arguments: Any) -> Any:  # the arguments are read from the request (``match_request``)
        return views["run"]("")

    paths = {endpoint: endpoint.split(" ", 1) for endpoint in _index}
    paths.update({r.endpoint: (r.method, r.path) for r in ROUTES})
    for endpoint, (method, path) in paths.items():
        app.url_map.add(Rule(path, methods=[method], endpoint=endpoint, strict_slashes=False))
        app.view_functions[endpoint] = view
    _in_flask = frozenset(paths)


def match_request(request: Request) -> tuple[str, dict[str, Any]]:
    """``match`` for ``request``: what Flask matched, when it was a rule of the table (``match_in_flask``)."""
    rule = request.url_rule
    if rule is not None and rule.endpoint in _in_flask and request.view_args is not None:
        return rule.endpoint, request.view_args
    return match(request.method, request.path)


def route_for(endpoint: str) -> Route:
    """The matched route, importing the module that registers it on its first request."""
    found = _by_endpoint.get(endpoint)
    if found is None:
        importlib.import_module(_index[endpoint])
        found = _by_endpoint[endpoint]
    return found
