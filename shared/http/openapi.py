"""OpenAPI 3.1 generated from the route table and the same pydantic models the handlers use.

Every route in ``shared.http.routing.ROUTES`` becomes an operation, so routes added later appear
without touching this module. What a route declares (``scope``, ``body``, ``query``,
``headers_in``, ``responses``) decides its parameters, request body, security and the problem
responses it can give; a status ≥ 400 in ``responses`` is documented as a problem.
"""

from __future__ import annotations

import re
from importlib import metadata
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from shared.http.problems import PROBLEM_CONTENT_TYPE
from shared.http.routing import Route, load_all

REF = "#/components/schemas/{model}"
_RULE_PARAM = re.compile(r"<(?:(?P<converter>[a-z]+):)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)>")
_CONVERTERS: dict[str, dict[str, Any]] = {
    "uuid": {"type": "string", "format": "uuid"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
}

PROBLEM_DESCRIPTIONS = {
    400: "The body is not valid UTF-8 JSON",
    401: "No, malformed, unknown or revoked API key",
    403: "The API key lacks the required scope",
    404: "No such resource",
    409: "Conflict with the current state (duplicate identifier, probable duplicate, merged record…)",
    412: "If-Match does not match the current version (or is not an ETag this server issued)",
    413: "The body is too large",
    415: "Unsupported Content-Type",
    422: "A parameter or the body failed validation; `errors` lists each field",
    428: "If-Match is required",
    503: "The database is unavailable; retry after Retry-After seconds",
}
DESCRIPTIONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No content"}
RESPONSE_HEADERS = {
    "Location": "URL of the new resource",
    "ETag": 'The version as a weak ETag, e.g. W/"3": send it back in If-Match to change the resource',
    "Last-Modified": "When this version was written (HTTP date)",
}


class ProblemFieldError(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    in_: str = Field(alias="in", description="body, query or header")
    field: str
    message: str
    code: str


class Problem(BaseModel):
    """RFC 9457 problem details; extension members name ids (never patient data)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    request_id: str | None = None
    errors: list[ProblemFieldError] | None = None


def openapi_path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """``/patients/<uuid:patient_id>`` → ``/patients/{patient_id}`` and its path parameters."""
    params = []
    for m in _RULE_PARAM.finditer(rule):
        schema = dict(_CONVERTERS.get(m.group("converter") or "string", {"type": "string"}))
        params.append({"name": m.group("name"), "in": "path", "required": True, "schema": schema})
    return _RULE_PARAM.sub(lambda m: "{" + m.group("name") + "}", rule), params


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """Query parameters are absent rather than null: drop the ``null`` branch and ``default: null``."""
    schema = dict(schema)
    schema.pop("title", None)
    if schema.get("default", ...) is None:
        schema.pop("default")
    branches = schema.get("anyOf")
    if branches and {"type": "null"} in branches:
        rest = [b for b in branches if b != {"type": "null"}]
        schema.pop("anyOf")
        if len(rest) == 1:
            schema = {**rest[0], **schema}
        else:
            schema["anyOf"] = rest
    return schema


def _query_parameters(model_schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(model_schema.get("required", []))
    params = []
    for name, prop in model_schema.get("properties", {}).items():
        schema = _without_null(prop)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in schema:
            param["description"] = schema.pop("description")
        param["schema"] = schema
        params.append(param)
    return params


def _problem(status: int, route: Route) -> dict[str, Any]:
    description = PROBLEM_DESCRIPTIONS.get(status, "Problem")
    if getattr(route, "error_renderer", None) is not None:
        # The route renders its own errors (e.g. a FHIR OperationOutcome), not problem+json.
        return {"description": description, "content": {route.media_type: {"schema": {"type": "object"}}}}
    return {"description": description,
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": REF.format(model="Problem")}}}}


def problem_statuses(route: Route, path_params: list[dict[str, Any]]) -> set[int]:
    statuses = {503} | {s for s in route.responses if s >= 400}
    if route.scope is not None:
        statuses |= {401, 403}
    if path_params:
        statuses.add(404)
    if route.query is not None:
        statuses.add(422)
    if route.body is not None:
        statuses |= {400, 413, 415, 422}
    if "If-Match" in route.headers_in:
        statuses |= {412, 428}
    return statuses


def _operation(route: Route, refs: dict[tuple[type[BaseModel], str], dict[str, Any]],
               defs: dict[str, Any], operation_id: str) -> tuple[str, dict[str, Any]]:
    path, params = openapi_path(route.path)
    op: dict[str, Any] = {"operationId": operation_id, "summary": route.summary, "tags": [route.tag]}
    description = route.handler.__doc__.strip() if route.handler.__doc__ else ""
    if route.query is not None:
        ref = refs[(route.query, "validation")]["$ref"].rsplit("/", 1)[-1]
        params = params + _query_parameters(defs[ref])
    for header in route.headers_in:
        params.append({"name": header, "in": "header", "required": True, "schema": {"type": "string", "maxLength": 64},
                       "description": "The ETag of the version you read, e.g. W/\"3\"" if header == "If-Match" else ""})
    if params:
        op["parameters"] = params
    if route.body is not None:
        types = (route.body_content_type,) if isinstance(route.body_content_type, str) else route.body_content_type
        op["requestBody"] = {"required": True,
                             "content": {t: {"schema": refs[(route.body, "validation")]} for t in types}}
    responses: dict[str, Any] = {}
    for status, model in sorted(route.response_models().items()):
        if status >= 400:
            continue
        response: dict[str, Any] = {"description": DESCRIPTIONS.get(status, "OK")}
        if model is not None:
            response["content"] = {route.media_type: {"schema": refs[(model, "serialization")]}}
        headers = (("Location",) if status == 201 else ()) + tuple(h for h in route.headers_out if h != "Location")
        if headers:
            response["headers"] = {h: {"schema": {"type": "string"}, "description": RESPONSE_HEADERS.get(h, "")}
                                   for h in headers}
        responses[str(status)] = response
    if not any(s < 400 for s in route.responses):
        responses["200"] = {"description": "OK", "content": {route.media_type: {"schema": {"type": "object"}}}}
    for status in sorted(problem_statuses(route, params)):
        responses[str(status)] = _problem(status, route)
    op["responses"] = responses
    if route.scope is None:
        op["security"] = []
    else:
        op["security"] = [{"bearerAuth": []}]
        op["x-required-scope"] = route.scope
        description = f"{description}\n\nRequires scope `{route.scope}` (or `admin`).".strip()
    if route.audit_action:
        op["x-audit-action"] = route.audit_action
    if description:
        op["description"] = description
    return path, op


def _version() -> str:
    try:
        return metadata.version("patient-mgt")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def build_document(routes: list[Route] | None = None) -> dict[str, Any]:
    routes = list(load_all() if routes is None else routes)
    wanted: list[tuple[type[BaseModel], str]] = [(Problem, "serialization")]
    for r in routes:
        wanted += [(m, "validation") for m in (r.body, r.query) if m is not None]
        wanted += [(m, "serialization") for m in r.response_models().values() if m is not None]
    refs, top = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)
    defs = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    seen_ids: set[str] = set()
    for r in routes:
        operation_id = r.handler.__name__
        if operation_id in seen_ids:
            operation_id = f"{r.handler.__module__.rsplit('.', 1)[-1]}_{operation_id}"
        seen_ids.add(operation_id)
        path, op = _operation(r, refs, defs, operation_id)
        paths.setdefault(path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "patient-mgt API",
            "version": _version(),
            "description": "Patient registry of a hospital lab. Authenticate with `Authorization: Bearer <API key>`. "
            "Errors are application/problem+json (RFC 9457). See docs/api.md.",
        },
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "An API key made with `patient-mgt apikey create`."}},
        },
        "tags": [{"name": t} for t in sorted({r.tag for r in routes})],
    }
