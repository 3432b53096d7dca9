"""The CapabilityStatement says exactly what the route table implements."""

import shared.api.every_route  # noqa: F401  (registers every route; the api function loads them lazily)
from shared.fhir.capability import capability_statement
from shared.fhir.params import (
    DiagnosticReportSearchParams,
    ObservationSearchParams,
    PatientSearchParams,
    ServiceRequestSearchParams,
)
from shared.http.routing import ROUTES
from tests.support.fhir import validate

INTERACTION_ROUTES = {
    ("Patient", "read"): "GET /fhir/Patient/<patient_id>",
    ("Patient", "vread"): "GET /fhir/Patient/<patient_id>/_history/<version_id>",
    ("ServiceRequest", "read"): "GET /fhir/ServiceRequest/<order_id>",
    ("Observation", "read"): "GET /fhir/Observation/<result_id>",
    ("Patient", "search-type"): "GET /fhir/Patient",
    ("Patient", "history-instance"): "GET /fhir/Patient/<patient_id>/_history",
    ("Patient", "create"): "POST /fhir/Patient",
    ("ServiceRequest", "search-type"): "GET /fhir/ServiceRequest",
    ("Observation", "search-type"): "GET /fhir/Observation",
    ("DiagnosticReport", "read"): "GET /fhir/DiagnosticReport/<report_id>",
    ("DiagnosticReport", "search-type"): "GET /fhir/DiagnosticReport",
}
# Operations → their kick-off route, and the routes of the IG's async pattern they bring.
OPERATION_ROUTES = {
    ("system", "export"): "GET /fhir/$export",
    ("Patient", "export"): "GET /fhir/Patient/$export",
}
EXPORT_ASYNC_ROUTES = {"GET /fhir/$export-status/<export_id>", "DELETE /fhir/$export-status/<export_id>",
                       "GET /fhir/$export-file/<file_id>"}
# Result parameters (paging, sorting, summaries): documented, not search parameters.
RESULT_PARAMETERS = {"_count", "_cursor", "_format", "_sort", "_total", "_summary", "_include", "_revinclude", "_elements"}
SEARCH_MODELS = {"Patient": PatientSearchParams, "ServiceRequest": ServiceRequestSearchParams,
                 "Observation": ObservationSearchParams, "DiagnosticReport": DiagnosticReportSearchParams}


def test_statement_validates_and_matches_the_route_table():
    doc = capability_statement("https://fhir.example.org/fhir")
    validate(doc)
    rest = doc["rest"][0]
    declared = {(r["type"], i["code"]) for r in rest["resource"] for i in r["interaction"]}
    assert declared == set(INTERACTION_ROUTES)
    fhir_routes = {r.endpoint for r in ROUTES if r.path.startswith("/fhir/")}
    operations = {("system", o["name"]) for o in rest["operation"]} | {
        (r["type"], o["name"]) for r in rest["resource"] for o in r.get("operation", [])}
    assert operations == set(OPERATION_ROUTES)
    assert fhir_routes == (set(INTERACTION_ROUTES.values()) | set(OPERATION_ROUTES.values()) | EXPORT_ASYNC_ROUTES
                           | {"GET /fhir/metadata"})
    assert "interaction" not in rest  # no system-level interactions (batch, transaction, whole-system search)


def test_declared_search_parameters_are_the_ones_accepted():
    for resource in capability_statement("http://x/fhir")["rest"][0]["resource"]:
        declared = {p["name"] for p in resource["searchParam"]}
        accepted = {f.alias or name for name, f in SEARCH_MODELS[resource["type"]].model_fields.items()}
        assert accepted - RESULT_PARAMETERS == declared, resource["type"]
    patient = capability_statement("http://x/fhir")["rest"][0]["resource"][0]
    assert patient["conditionalCreate"] is True and patient["readHistory"] is True  # vread of past versions
