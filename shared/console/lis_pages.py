"""LIS messages: the list with its filters, one message, and Replay.

Reads go through ``shared.lis.operator`` (audited as the API's ``GET /lis/messages`` and
``GET /lis/messages/{id}`` are, raw reads included); Replay is ``operator.replay``, the API's.
"""

from __future__ import annotations

import uuid

from flask import Response

from shared.console import forms
from shared.console.hl7_view import readable
from shared.console.web import PREFIX, View, page, redirect
from shared.db import unit_of_work
from shared.errors import Forbidden, ServiceUnavailable
from shared.lis import operator, operator_views
from shared.lis.ingest import TransientFault
from shared.models.lis import LIS_STATUSES


@page("GET", "/lis/messages", scope="lis:read")
def message_list(view: View) -> Response:
    q = forms.parse(view.request.args.to_dict(), forms.MessageListQuery)
    f = operator.MessageFilter(status=q.status, type=q.type, since=q.since, until=q.until, warning=q.warning,
                               reason=q.reason, facility=q.facility, limit=q.limit, cursor=q.cursor)
    with unit_of_work() as uow:
        rows, next_cursor = operator.list_messages(uow, view.user, f, include_raw=False)
    return view.render("lis_messages.html", rows=rows, next_cursor=next_cursor, q=q, statuses=LIS_STATUSES,
                       args=view.request.args.to_dict())


@page("GET", "/lis/messages/<uuid:message_id>", scope="lis:read")
def message_page(view: View, message_id: uuid.UUID) -> Response:
    q = forms.parse(view.request.args.to_dict(), forms.MessageQuery)
    if q.raw and not view.can("lis:admin"):
        raise Forbidden("Raw LIS messages need scope lis:admin")
    with unit_of_work() as uow:
        message = operator.get_message(uow, view.user, message_id, include_raw=q.raw)
        history = operator_views.status_history(uow, message)
        orders, results = operator_views.touched(uow, message)
    raw = readable(message.raw, message.content_format) if q.raw and message.raw is not None else None
    return view.render("lis_message.html", m=message, history=history, orders=orders, results=results, raw=raw,
                       show_raw=q.raw, outcome=q.outcome, replayable=message.status in operator.REPLAYABLE)


@page("POST", "/lis/messages/<uuid:message_id>/replay", scope="lis:admin")
def replay(view: View, message_id: uuid.UUID) -> Response:
    try:
        _outcome, replayed = operator.replay(view.user, message_id)
    except TransientFault:
        raise ServiceUnavailable("The database is busy or unavailable; retry shortly") from None
    return redirect(f"{PREFIX}/lis/messages/{message_id}", outcome="replayed" if replayed else "not_replayed")
