"""The api function's route table: one list, used for dispatch, OpenAPI and the scope tests.

Paths use werkzeug rules (``/patients/<uuid:patient_id>``), so a malformed UUID simply matches no
route (404) instead of reaching a handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from werkzeug.routing import Map, Rule

if TYPE_CHECKING:
    from flask import Response

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
    responses: dict[int, type[BaseModel] | None] = field(default_factory=dict)
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


ROUTES: list[Route] = []
# Path prefix → the renderer of errors under it that no route has matched yet (unknown path, wrong
# method): ``/fhir`` answers OperationOutcome there too. Longest prefix wins.
PREFIX_ERROR_RENDERERS: dict[str, Callable[[DomainError | None, str], Response]] = {}


def error_renderer_for(path: str) -> Callable[[DomainError | None, str], Response] | None:
    """The renderer registered for ``path``'s prefix (a whole segment: ``/fhirx`` is not ``/fhir``)."""
    for prefix in sorted(PREFIX_ERROR_RENDERERS, key=len, reverse=True):
        if path == prefix or path.startswith(prefix + "/"):
            return PREFIX_ERROR_RENDERERS[prefix]
    return None


def route(method: str, path: str, *, scope: str | None, summary: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        ROUTES.append(Route(method=method, path=path, handler=handler, scope=scope, summary=summary, **kwargs))
        return handler

    return register


_map: Map | None = None
_by_endpoint: dict[str, Route] = {}


def url_map() -> Map:
    global _map
    if _map is None:
        _by_endpoint.clear()
        rules = []
        for r in ROUTES:
            _by_endpoint[r.endpoint] = r
            rules.append(Rule(r.path, methods=[r.method], endpoint=r.endpoint, strict_slashes=False))
        _map = Map(rules, strict_slashes=False, merge_slashes=False)
    return _map


def route_for(endpoint: str) -> Route:
    return _by_endpoint[endpoint]
