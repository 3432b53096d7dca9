"""The OpenAPI document is generated from the route table and the handlers' pydantic models."""

from typing import Literal

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel

import shared.api.every_route  # noqa: F401  (registers every route; the api function loads them lazily)
from shared.http.openapi import build_document, openapi_path
from shared.http.routing import ROUTES, Route
from shared.schemas.patients import Patient, PatientCreate

DOC = build_document()


def op(method: str, rule: str) -> dict:
    return DOC["paths"][openapi_path(rule)[0]][method.lower()]


def test_document_is_valid_openapi_3_1():
    assert DOC["openapi"] == "3.1.0"
    validate(DOC)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.endpoint)
def test_every_route_is_documented_with_its_security_and_problems(route):
    operation = op(route.method, route.path)
    assert operation["summary"] == route.summary
    responses = operation["responses"]
    assert "503" in responses
    if route.scope is None:
        assert operation["security"] == []
    else:
        assert operation["security"] == [{"bearerAuth": []}]
        assert operation["x-required-scope"] == route.scope and route.scope in operation["description"]
        assert {"401", "403"} <= set(responses)
    if "<" in route.path:
        assert "404" in responses
    if route.body is not None:
        assert {"400", "413", "415", "422"} <= set(responses)
        types = (route.body_content_type,) if isinstance(route.body_content_type, str) else route.body_content_type
        assert set(types) == set(operation["requestBody"]["content"])
    if "If-Match" in route.headers_in:
        assert {"412", "428"} <= set(responses)
        assert {"name": "If-Match", "in": "header", "required": True}.items() <= next(
            p for p in operation["parameters"] if p["in"] == "header").items()
    for status, body in responses.items():
        if int(status) >= 400 and getattr(route, "error_renderer", None) is None:
            assert list(body["content"]) == ["application/problem+json"]
            assert body["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
        elif int(status) >= 400:  # the route renders its own error format, in its own media type
            assert list(body["content"]) == [getattr(route, "media_type", "application/json")]
    ids = [o["operationId"] for p in DOC["paths"].values() for o in p.values()]
    assert len(ids) == len(set(ids))


def test_models_are_the_handlers_models():
    read = op("GET", "/patients/<uuid:patient_id>")
    ref = read["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    component = DOC["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(component["properties"]) == set(Patient.model_fields)
    assert read["parameters"][0] == {"name": "patient_id", "in": "path", "required": True,
                                     "schema": {"type": "string", "format": "uuid"}}
    create = op("POST", "/patients")
    ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = DOC["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(body["properties"]) == set(PatientCreate.model_fields) and body["additionalProperties"] is False
    assert {"201", "409"} <= set(create["responses"]) and "Location" in create["responses"]["201"]["headers"]
    search = op("GET", "/patients")
    params = {p["name"]: p for p in search["parameters"]}
    assert {"name", "family", "given", "birth_date", "identifier", "mrn", "phone", "email", "status", "limit",
            "cursor"} == set(params)
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
    assert params["birth_date"]["schema"] == {"type": "string", "format": "date"}
    assert op("PATCH", "/patients/<uuid:patient_id>")["requestBody"]["content"].keys() == {
        "application/merge-patch+json", "application/json"}  # both are accepted (shared/api/merge_patch_body.py)
    assert set(read["responses"]["200"]["headers"]) == {"ETag"}
    assert set(create["responses"]["201"]["headers"]) == {"Location", "ETag"}


def test_a_route_added_later_appears_with_its_models():
    class WidgetQuery(BaseModel):
        colour: Literal["red", "blue"] | None = None

    class Widget(BaseModel):
        id: int

    def list_widgets(ctx):  # pragma: no cover - never called
        """Widgets of the lab."""

    extra = Route(method="GET", path="/widgets/<int:widget_id>", handler=list_widgets, scope="lis:read",
                  summary="A widget", tag="widgets", query=WidgetQuery, responses={200: Widget, 409: None})
    doc = build_document(ROUTES + [extra])
    validate(doc)
    operation = doc["paths"]["/widgets/{widget_id}"]["get"]
    assert operation["x-required-scope"] == "lis:read" and operation["description"].startswith("Widgets of the lab.")
    assert {p["name"]: p["schema"] for p in operation["parameters"]} == {
        "widget_id": {"type": "integer"}, "colour": {"enum": ["red", "blue"], "type": "string"}}
    assert {"200", "401", "403", "404", "409", "422", "503"} == set(operation["responses"])
    assert "Widget" in doc["components"]["schemas"]
