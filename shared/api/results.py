"""A patient's lab results: the list across orders, and one analyte's trend."""

from __future__ import annotations

import uuid

from flask import Response

from shared.db import unit_of_work
from shared.http.context import RequestContext, json_response
from shared.http.routing import route
from shared.schemas.results import ResultPage, ResultQuery, Trend, TrendQuery
from shared.services import results as service


@route("GET", "/patients/<uuid:patient_id>/results", scope="patients:read",
       summary="A patient's lab results across orders, newest observation first", tag="results", query=ResultQuery,
       responses={200: ResultPage}, audit_action="result.read")
def list_results(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    """Filters combine with AND: `code` (and `system`), `status` (OBX-11 codes), `from`/`to` (days, UTC,
    inclusive) on the observation time. Results the LIS sent without an order are included."""
    q = ctx.query(ResultQuery)
    with unit_of_work() as uow:
        items, next_cursor = service.list_results(uow, ctx.principal, patient_id, q)
    return json_response(ResultPage(items=items, next_cursor=next_cursor))


@route("GET", "/patients/<uuid:patient_id>/results/<code>/trend", scope="patients:read",
       summary="One analyte's values in observation-time order, with units, ranges, flags and earlier versions",
       tag="results", query=TrendQuery, responses={200: Trend}, audit_action="result.read")
def result_trend(ctx: RequestContext, patient_id: uuid.UUID, code: str) -> Response:
    """`code` is the OBX-3 code (e.g. 2345-7); `system` narrows it to one coding system. Oldest first;
    a corrected value lists the values it replaced under `previous_versions`."""
    q = ctx.query(TrendQuery)
    with unit_of_work() as uow:
        trend = service.trend(uow, ctx.principal, patient_id, code, q)
    return json_response(trend)
