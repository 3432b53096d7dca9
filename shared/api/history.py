"""Medical history routes: add, list (category/status), read one, change (merge patch + If-Match)."""

from __future__ import annotations

import uuid

from flask import Response

from shared.api.merge_patch_body import CONTENT_TYPES as MERGE_PATCH_TYPES
from shared.api.merge_patch_body import merge_patch_body
from shared.db import unit_of_work
from shared.http.context import RequestContext, etag, json_response
from shared.http.routing import route
from shared.schemas.history import HISTORY_READ_ONLY, HistoryEntry, HistoryEntryCreate, HistoryEntryPatch, HistoryPage, HistoryQuery
from shared.services import history as service


@route("POST", "/patients/<uuid:patient_id>/history", scope="patients:write", summary="Add a medical history entry",
       tag="history", body=HistoryEntryCreate, responses={201: HistoryEntry, 409: None}, audit_action="history.create",
       headers_out=("ETag",))
def add_entry(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    data = ctx.json_body(HistoryEntryCreate)
    with unit_of_work() as uow:
        entry = service.to_entry(service.add_entry(uow, ctx.principal, patient_id, data))
    return json_response(entry, 201, {"Location": f"/patients/{patient_id}/history/{entry.id}", "ETag": etag(entry.version)})


@route("GET", "/patients/<uuid:patient_id>/history", scope="patients:read",
       summary="List medical history entries, newest first", tag="history", query=HistoryQuery,
       responses={200: HistoryPage}, audit_action="history.read")
def list_entries(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    q = ctx.query(HistoryQuery)
    with unit_of_work() as uow:
        rows, next_cursor = service.list_entries(uow, ctx.principal, patient_id, q)
        page = HistoryPage(items=[service.to_entry(e) for e in rows], next_cursor=next_cursor)
    return json_response(page)


@route("GET", "/patients/<uuid:patient_id>/history/<uuid:entry_id>", scope="patients:read",
       summary="Read a medical history entry", tag="history", responses={200: HistoryEntry}, audit_action="history.read",
       headers_out=("ETag",))
def read_entry(ctx: RequestContext, patient_id: uuid.UUID, entry_id: uuid.UUID) -> Response:
    with unit_of_work() as uow:
        entry = service.to_entry(service.get_entry(uow, ctx.principal, patient_id, entry_id))
    return json_response(entry, 200, {"ETag": etag(entry.version)})


@route("PATCH", "/patients/<uuid:patient_id>/history/<uuid:entry_id>", scope="patients:write",
       summary="Change a medical history entry (JSON merge patch, If-Match required)", tag="history",
       body=HistoryEntryPatch, body_content_type=MERGE_PATCH_TYPES, headers_in=("If-Match",),
       responses={200: HistoryEntry}, audit_action="history.update", headers_out=("ETag",))
def patch_entry(ctx: RequestContext, patient_id: uuid.UUID, entry_id: uuid.UUID) -> Response:
    version = ctx.if_match_version()
    patch = merge_patch_body(ctx, HistoryEntryPatch, HISTORY_READ_ONLY)
    with unit_of_work() as uow:
        entry = service.to_entry(service.update_entry(uow, ctx.principal, patient_id, entry_id, patch,
                                                      expected_version=version))
    return json_response(entry, 200, {"ETag": etag(entry.version)})
