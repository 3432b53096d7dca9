"""GET /patients/{id}/notifications: what the patient was (or was not) sent, and why."""

from __future__ import annotations

import uuid

from flask import Response

from shared import audit
from shared.db import unit_of_work
from shared.http.context import RequestContext, json_response
from shared.http.routing import route
from shared.notify import store
from shared.schemas.notifications import NotificationOut, NotificationPage, NotificationQuery
from shared.services.patients import load_patient


@route("GET", "/patients/<uuid:patient_id>/notifications", scope="patients:read", summary="List a patient's notifications",
       tag="notifications", query=NotificationQuery, responses={200: NotificationPage}, audit_action="notifications.read")
def list_notifications(ctx: RequestContext, patient_id: uuid.UUID) -> Response:
    q = ctx.query(NotificationQuery)
    with unit_of_work() as uow:
        load_patient(uow, patient_id)  # 404 for an unknown patient
        rows = store.page_for_patient(uow, patient_id, before=q.before, limit=q.limit)
        items = [NotificationOut.model_validate(r, from_attributes=True) for r in rows]
        audit.record(uow, ctx.principal, "notifications.read", [patient_id], details={"returned": len(items)})
    next_cursor = rows[-1].seq if len(rows) == q.limit else None
    return json_response(NotificationPage(items=items, next_cursor=next_cursor))
