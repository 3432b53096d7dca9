"""GET /openapi.json: the API description, generated from the route table (public)."""

from __future__ import annotations

import threading
from typing import Any

from flask import Response

from shared.http.context import RequestContext, json_response
from shared.http.openapi import build_document
from shared.http.routing import PUBLIC_DOCUMENT, load_all, route

_lock = threading.Lock()
_cache: dict[int, dict[str, Any]] = {}


def document() -> dict[str, Any]:
    """Built once per process (per size of the route table: routes register at import). Every route
    module is imported first: the table loads them lazily, the document lists them all."""
    key = len(load_all())
    with _lock:
        if key not in _cache:
            _cache.clear()
            _cache[key] = build_document()
        return _cache[key]


@route("GET", "/openapi.json", scope=None, summary="This API's OpenAPI 3.1 description", tag="operations",
       cache_control=PUBLIC_DOCUMENT)
def openapi_json(ctx: RequestContext) -> Response:
    return json_response(document())
