"""GET /audit: who touched which patient's data, when, and with what outcome."""

from __future__ import annotations

from flask import Response

from shared import audit
from shared.db import unit_of_work
from shared.http.context import RequestContext, json_response
from shared.http.routing import route
from shared.schemas.audit import AuditEntry, AuditPage, AuditQuery


@route("GET", "/audit", scope="audit:read", summary="Read the audit trail", tag="audit", query=AuditQuery,
       responses={200: AuditPage})
def list_audit(ctx: RequestContext) -> Response:
    q = ctx.query(AuditQuery)
    with unit_of_work() as uow:
        rows = audit.query(uow, patient_id=q.patient_id, action=q.action, before_id=q.before, limit=q.limit)
        items = [AuditEntry.model_validate(r, from_attributes=True) for r in rows]
        if q.patient_id is not None:
            # Reading the audit trail of a patient is itself an access to that patient's record.
            audit.record(uow, ctx.principal, "audit.read", [q.patient_id], details={"returned": len(items)})
    next_cursor = items[-1].id if len(items) == q.limit else None
    return json_response(AuditPage(items=items, next_cursor=next_cursor))
