"""LIS operator routes: the feed's sync status, its stored messages, and replay."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from flask import Response

from shared.db import unit_of_work
from shared.errors import Forbidden, ServiceUnavailable
from shared.http.context import RequestContext, json_response
from shared.http.routing import route
from shared.lis import operator
from shared.lis.ingest import TransientFault
from shared.schemas.lis import LisMessage, LisMessagePage, LisMessageQuery, LisMessageRead, LisReplay, LisSyncStatus

TAG = "lis"


def to_message(row: Any, include_raw: bool) -> LisMessage:
    data = {k: getattr(row, k) for k in LisMessage.model_fields if k not in ("raw_purged", "raw_base64")}
    data["raw_purged"] = row.raw is None
    data["raw_base64"] = base64.b64encode(row.raw).decode("ascii") if include_raw and row.raw is not None else None
    return LisMessage.model_validate(data)


def _raw_allowed(ctx: RequestContext, include_raw: bool) -> bool:
    if include_raw and not ctx.principal.has("lis:admin"):
        raise Forbidden("Raw LIS messages need scope lis:admin")
    return include_raw


@route("GET", "/lis/status", scope="lis:read", summary="LIS feed sync status: counts, last message, lag", tag=TAG,
       responses={200: LisSyncStatus})
def lis_status(ctx: RequestContext) -> Response:
    with unit_of_work() as uow:
        return json_response(LisSyncStatus.model_validate(operator.status(uow)))


@route("GET", "/lis/messages", scope="lis:read", summary="Stored LIS messages, newest first", tag=TAG,
       query=LisMessageQuery, responses={200: LisMessagePage}, audit_action="lis.messages.list")
def list_messages(ctx: RequestContext) -> Response:
    q = ctx.query(LisMessageQuery)
    include_raw = _raw_allowed(ctx, q.include_raw)
    f = operator.MessageFilter(status=q.status, type=q.type, since=q.since, warning=q.warning, limit=q.limit,
                               cursor=q.cursor)
    with unit_of_work() as uow:
        rows, next_cursor = operator.list_messages(uow, ctx.principal, f, include_raw=include_raw)
        page = LisMessagePage(items=[to_message(r, include_raw) for r in rows], next_cursor=next_cursor)
    return json_response(page)


@route("GET", "/lis/messages/<uuid:message_id>", scope="lis:read", summary="One stored LIS message", tag=TAG,
       query=LisMessageRead, responses={200: LisMessage}, audit_action="lis.message.read")
def read_message(ctx: RequestContext, message_id: uuid.UUID) -> Response:
    include_raw = _raw_allowed(ctx, ctx.query(LisMessageRead).include_raw)
    with unit_of_work() as uow:
        message = to_message(operator.get_message(uow, ctx.principal, message_id, include_raw=include_raw), include_raw)
    return json_response(message)


@route("POST", "/lis/messages/<uuid:message_id>/replay", scope="lis:admin",
       summary="Re-run a failed or quarantined LIS message from its stored bytes (idempotent)", tag=TAG,
       responses={200: LisReplay, 409: None}, audit_action="lis.message.replay")
def replay_message(ctx: RequestContext, message_id: uuid.UUID) -> Response:
    try:
        _outcome, replayed = operator.replay(ctx.principal, message_id)
    except TransientFault:
        raise ServiceUnavailable("The database is busy or unavailable; retry shortly") from None
    with unit_of_work() as uow:
        message = to_message(operator.get_message(uow, ctx.principal, message_id, include_raw=False), False)
    return json_response(LisReplay(replayed=replayed, message=message))
