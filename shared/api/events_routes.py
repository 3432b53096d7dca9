"""Dead letters: list undeliverable events and re-drive them (scope admin)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid

from flask import Response

from shared import audit
from shared.db import unit_of_work
from shared.events import dead_letters as service
from shared.events.catalog import CATALOG
from shared.http.context import RequestContext, json_response
from shared.http.routing import route
from shared.models import DeadLetter
from shared.schemas.dead_letters import DeadLetterError, DeadLetterEvent, DeadLetterOut, DeadLetterPage, DeadLetterQuery
from shared.settings import get_settings


@route("GET", "/events/dead-letters", scope="admin", summary="List dead-lettered events", tag="events",
       query=DeadLetterQuery, responses={200: DeadLetterPage})
def list_dead_letters(ctx: RequestContext) -> Response:
    q = ctx.query(DeadLetterQuery)
    with unit_of_work() as uow:
        rows = service.list_dead_letters(uow, status=q.status, event_type=q.type, before=q.before, limit=q.limit)
        items = [to_resource(r) for r in rows]
        audit.record(uow, ctx.principal, "events.dead_letters.list", service.subject_patient_ids(rows), details={"returned": len(items)})
    next_cursor = rows[-1].seq if len(rows) == q.limit else None
    return json_response(DeadLetterPage(items=items, next_cursor=next_cursor))


@route("POST", "/events/dead-letters/<uuid:dead_letter_id>/redrive", scope="admin", summary="Re-drive a dead-lettered event",
       tag="events", responses={200: DeadLetterOut, 409: None}, audit_action="events.dead_letter.redrive")
def redrive_dead_letter(ctx: RequestContext, dead_letter_id: uuid.UUID) -> Response:
    with unit_of_work() as uow:
        row = service.redrive_audited(uow, ctx.principal, dead_letter_id, timeout=redrive_timeout())
        resource = to_resource(row)
    return json_response(resource)


def redrive_timeout() -> float:
    return max(get_settings().publish_timeout_seconds, 5.0)


def to_resource(row: DeadLetter) -> DeadLetterOut:
    attrs = row.attributes
    data = None
    if row.event_type in CATALOG and row.data is not None:
        try:
            data = json.loads(row.data)
        except ValueError:
            data = None
    return DeadLetterOut(
        id=row.id,
        origin=row.origin,  # type: ignore[arg-type]
        event=DeadLetterEvent(id=row.event_id, source=row.event_source, type=row.event_type, subject=row.event_subject,
                              time=attrs.get("time"), dataschema=attrs.get("dataschema")),
        attributes=attrs,
        datacontenttype=row.datacontenttype,
        data=data,
        data_bytes=len(row.data or b""),
        error=DeadLetterError(code=row.error_code, data=row.error_data, response=_decode(row.error_data), destination=row.error_dest),
        delivery_attempts=row.delivery_attempts,
        received_at=row.received_at,
        dead_letter_count=row.dead_letter_count,
        redriven_at=row.redriven_at,
        redrive_count=row.redrive_count,
        redrivable=row.redriven_at is None and row.redrive_target is not None,
    )


def _decode(error_data: str | None) -> str | None:
    """knativeerrordata is base64 cut at 1024 characters: decode the whole quanta that arrived."""
    if not error_data:
        return None
    usable = error_data[: len(error_data) - len(error_data) % 4]
    try:
        return base64.b64decode(usable, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return None
