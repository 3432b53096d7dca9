"""Critical-result alerts: read one, acknowledge it (docs/critical-results.md)."""

from __future__ import annotations

import uuid

from flask import Response

from shared.critical import alerts as service
from shared.db import UnitOfWork, unit_of_work
from shared.http.context import RequestContext, etag, json_response
from shared.http.routing import route
from shared.models import CriticalAlert
from shared.schemas.critical import Alert


def _alert(uow: UnitOfWork, alert: CriticalAlert) -> Alert:
    messages = [{"level": m.level, "channel": m.channel, "status": m.status, "reason": m.reason,
                 "attempts": m.attempts, "sent_at": m.sent_at} for m in service.messages(uow, alert.id)]
    return Alert.model_validate({**{c: getattr(alert, c) for c in Alert.model_fields if c != "messages"},
                                 "messages": messages})


@route("GET", "/critical-alerts/<uuid:alert_id>", scope="patients:read", summary="Read a critical-result alert",
       tag="critical-alerts", responses={200: Alert}, audit_action="critical_alert.read", headers_out=("ETag",))
def read_alert(ctx: RequestContext, alert_id: uuid.UUID) -> Response:
    with unit_of_work() as uow:
        alert = _alert(uow, service.get_alert(uow, ctx.principal, alert_id))
    return json_response(alert, 200, {"ETag": etag(alert.version)})


@route("POST", "/critical-alerts/<uuid:alert_id>/acknowledge", scope="patients:write",
       summary="Acknowledge a critical-result alert (stops its escalation; idempotent)", tag="critical-alerts",
       responses={200: Alert}, audit_action="critical_alert.acknowledge", headers_out=("ETag",))
def acknowledge_alert(ctx: RequestContext, alert_id: uuid.UUID) -> Response:
    """The first acknowledgement records who and when and emits critical_alert.acknowledged; a repeat
    answers the same alert unchanged. An escalation already sent stays sent."""
    with unit_of_work() as uow:
        alert, _first = service.acknowledge(uow, ctx.principal, alert_id)
        body = _alert(uow, alert)
    return json_response(body, 200, {"ETag": etag(body.version)})
