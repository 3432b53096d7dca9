"""The api's route index (shared/api/index.py) names every route and the module that registers it, so
the route table can dispatch before importing a module, and a request imports only its route's module."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from shared.api.index import PREFIX_RENDERER_MODULES, ROUTE_MODULES
from shared.http import routing
from shared.http.openapi import build_document, openapi_path

ROOT = Path(__file__).resolve().parents[3]


def test_every_module_of_shared_api_with_a_route_is_in_the_index():
    with_routes = {f"shared.api.{p.stem}" for p in (ROOT / "shared" / "api").glob("*.py")
                   if re.search(r"^@route\(", p.read_text(), re.MULTILINE)}
    assert with_routes  # the scan sees the decorators
    assert with_routes == set(ROUTE_MODULES.values())


def test_the_index_names_each_registered_route_and_the_module_that_registers_it():
    registered = {r.endpoint: r.handler.__module__ for r in routing.load_all()}
    assert registered == ROUTE_MODULES
    assert set(PREFIX_RENDERER_MODULES) <= set(routing.PREFIX_ERROR_RENDERERS)


def test_the_openapi_document_still_lists_every_route():
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    documented = {(method.upper(), path) for path, item in build_document()["paths"].items()
                  for method in item if method in methods}
    indexed = {(method, openapi_path(path)[0]) for method, path in (e.split(" ", 1) for e in ROUTE_MODULES)}
    assert documented == indexed


_PROGRAM = """
import json, sys
import flask
import shared.api
from shared.http.app import handle

before = sorted(m for m in sys.modules if m.startswith("shared.api."))
app = flask.Flask("api")
with app.test_request_context("/healthz"):
    status = handle(flask.request).status_code
with app.test_request_context("/fhir/no-such-thing"):
    fhir = handle(flask.request)
print(json.dumps({"before": before, "status": status,
                  "after": sorted(m for m in sys.modules if m.startswith("shared.api.")),
                  "fhir_status": fhir.status_code, "fhir_type": fhir.content_type}))
"""


def test_a_request_imports_only_the_module_of_its_route():
    env = {**os.environ, "DATABASE_URL": "postgresql+pg8000://nobody@127.0.0.1:1/none"}  # /healthz reads nothing
    out = subprocess.run([sys.executable, "-c", _PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["before"] == ["shared.api.index"]
    assert result["status"] == 200
    # an unknown path under /fhir loads the FHIR routes for their OperationOutcome renderer, nothing else
    assert result["after"] == ["shared.api.fhir_routes", "shared.api.health", "shared.api.index"]
    assert result["fhir_status"] == 404
    assert result["fhir_type"].startswith("application/fhir+json")


def test_match_follows_the_table_when_a_route_registers_after_the_first_dispatch():
    import uuid  # noqa: PLC0415

    import pytest  # noqa: PLC0415
    from werkzeug.exceptions import MethodNotAllowed, NotFound  # noqa: PLC0415

    pid = uuid.uuid4()
    assert routing.match("GET", f"/patients/{pid}/") == ("GET /patients/<uuid:patient_id>", {"patient_id": pid})
    with pytest.raises(NotFound):
        routing.match("GET", "/patients/not-a-uuid")
    with pytest.raises(MethodNotAllowed):
        routing.match("PUT", "/healthz")
    path = f"/test-only-{uuid.uuid4().hex}"
    with pytest.raises(NotFound):
        routing.match("GET", path)
    handler = routing.route("GET", path, scope=None, summary="test only")(lambda ctx: None)
    try:
        assert routing.match("GET", path) == (f"GET {path}", {})
    finally:
        routing.ROUTES[:] = [r for r in routing.ROUTES if r.handler is not handler]
        routing._by_endpoint.pop(f"GET {path}", None)
        routing._map = None
