"""Which module registers each route of the api: the index the route table dispatches on before
the module is imported (``shared.http.routing.use_index``).

A request imports only the module of the route it matched, on first use; a process answering
``GET /patients/<id>`` never loads FHIR, jobs, LIS or OpenAPI code. ``/openapi.json`` loads them all
(``shared.api.load_all``). tests/unit/http/test_route_index.py fails when a ``@route`` is missing
here or an entry names a route no module registers.
"""

from __future__ import annotations

# "METHOD path" (werkzeug rule, as in @route) -> the module whose import registers it.
ROUTE_MODULES: dict[str, str] = {
    "GET /audit": "shared.api.audit_routes",
    "GET /healthz": "shared.api.health",
    "GET /readyz": "shared.api.health",
    "POST /patients": "shared.api.patients",
    "GET /patients": "shared.api.patients",
    "GET /patients/<uuid:patient_id>": "shared.api.patient_read",
    "PATCH /patients/<uuid:patient_id>": "shared.api.patients",
    "DELETE /patients/<uuid:patient_id>": "shared.api.patients",
    "POST /patients/<uuid:patient_id>/history": "shared.api.history",
    "GET /patients/<uuid:patient_id>/history": "shared.api.history",
    "GET /patients/<uuid:patient_id>/history/<uuid:entry_id>": "shared.api.history",
    "PATCH /patients/<uuid:patient_id>/history/<uuid:entry_id>": "shared.api.history",
    "GET /openapi.json": "shared.api.openapi",
    "GET /patients/<uuid:patient_id>/orders": "shared.api.orders",
    "GET /patients/<uuid:patient_id>/observations": "shared.api.orders",
    "POST /patients/<uuid:patient_id>/orders": "shared.api.orders",
    "GET /orders/<uuid:order_id>": "shared.api.orders",
    "PATCH /orders/<uuid:order_id>": "shared.api.orders",
    "POST /orders/<uuid:order_id>/cancel": "shared.api.orders",
    "GET /patients/<uuid:patient_id>/duplicates": "shared.api.patient_merge",
    "POST /patients/<uuid:patient_id>/duplicates/<uuid:candidate_id>/review": "shared.api.patient_merge",
    "POST /patients/<uuid:patient_id>/merge": "shared.api.patient_merge",
    "POST /patients/<uuid:patient_id>/unmerge": "shared.api.patient_merge",
    "GET /patients/<uuid:patient_id>/versions": "shared.api.patient_merge",
    "GET /events/dead-letters": "shared.api.events_routes",
    "POST /events/dead-letters/<uuid:dead_letter_id>/redrive": "shared.api.events_routes",
    "GET /patients/<uuid:patient_id>/notifications": "shared.api.notifications_routes",
    "GET /jobs/runs": "shared.api.jobs_routes",
    "GET /jobs/data-quality": "shared.api.jobs_routes",
    "GET /lis/status": "shared.api.lis_routes",
    "GET /lis/messages": "shared.api.lis_routes",
    "GET /lis/messages/<uuid:message_id>": "shared.api.lis_routes",
    "POST /lis/messages/<uuid:message_id>/replay": "shared.api.lis_routes",
    "GET /metrics": "shared.api.metrics_routes",
    "GET /fhir/metadata": "shared.api.fhir_routes",
    "GET /fhir/Patient/<patient_id>": "shared.api.fhir_routes",
    "GET /fhir/Patient": "shared.api.fhir_routes",
    "GET /fhir/Patient/<patient_id>/_history": "shared.api.fhir_routes",
    "GET /fhir/Patient/<patient_id>/_history/<version_id>": "shared.api.fhir_routes",
    "POST /fhir/Patient": "shared.api.fhir_routes",
    "GET /fhir/ServiceRequest": "shared.api.fhir_routes",
    "GET /fhir/Observation": "shared.api.fhir_routes",
    "GET /fhir/ServiceRequest/<order_id>": "shared.api.fhir_routes",
    "GET /fhir/Observation/<result_id>": "shared.api.fhir_routes",
    "GET /fhir/DiagnosticReport/<report_id>": "shared.api.fhir_routes",
    "GET /fhir/DiagnosticReport": "shared.api.fhir_routes",
    "GET /fhir/$export": "shared.api.fhir_export_routes",
    "GET /fhir/Patient/$export": "shared.api.fhir_export_routes",
    "GET /fhir/$export-status/<export_id>": "shared.api.fhir_export_routes",
    "DELETE /fhir/$export-status/<export_id>": "shared.api.fhir_export_routes",
    "GET /fhir/$export-file/<file_id>": "shared.api.fhir_export_routes",
    "GET /patients/<uuid:patient_id>/results": "shared.api.results",
    "GET /patients/<uuid:patient_id>/results/<code>/trend": "shared.api.results",
    "GET /critical-alerts/<uuid:alert_id>": "shared.api.critical_routes",
    "POST /critical-alerts/<uuid:alert_id>/acknowledge": "shared.api.critical_routes",
}

# Path prefix -> the module that registers the prefix's error renderer (unmatched paths under /fhir
# answer OperationOutcome, not problem+json).
PREFIX_RENDERER_MODULES: dict[str, str] = {
    "/fhir": "shared.api.fhir_routes",
}
