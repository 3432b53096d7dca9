"""Dead letters: the list (no event data, no subject: nothing about a patient), one dead letter
inspected, and Re-drive — one, or every pending one of a type — through the API's re-drive
(``dead_letters.redrive_audited``: same publish, same audit)."""

from __future__ import annotations

import uuid

from flask import Response

from shared import audit
from shared.api.events_routes import redrive_timeout, to_resource
from shared.console import forms
from shared.console.web import PREFIX, View, page, redirect
from shared.db import unit_of_work
from shared.errors import Conflict, ServiceUnavailable, ValidationFailed
from shared.events import dead_letters as service
from shared.log import get_logger

log = get_logger("patient_mgt.console")
PAGE_SIZE = 50
REDRIVE_ALL_LIMIT = 200  # per press of the button: the api request must end within its timeout


@page("GET", "/dead-letters", scope="admin")
def dead_letter_list(view: View) -> Response:
    q = forms.parse(view.request.args.to_dict(), forms.DeadLetterListQuery)
    with unit_of_work() as uow:
        rows = service.list_dead_letters(uow, status=q.status, event_type=q.type, before=q.before, limit=PAGE_SIZE)
        audit.record(uow, view.user, "events.dead_letters.list", service.subject_patient_ids(rows),
                     details={"returned": len(rows)})
    next_cursor = rows[-1].seq if len(rows) == PAGE_SIZE else None
    return view.render("dead_letters.html", rows=rows, q=q, next_cursor=next_cursor, args=view.request.args.to_dict())


@page("GET", "/dead-letters/<uuid:dead_letter_id>", scope="admin")
def dead_letter_page(view: View, dead_letter_id: uuid.UUID) -> Response:
    q = forms.parse(view.request.args.to_dict(), forms.DeadLetterQuery)
    with unit_of_work() as uow:
        row = service.get(uow, dead_letter_id)
        audit.record(uow, view.user, "events.dead_letters.list", service.subject_patient_ids([row]),
                     details={"returned": 1, "dead_letter_id": str(row.id)})
        resource = to_resource(row)
    return view.render("dead_letter.html", d=resource, outcome=q.outcome)


@page("POST", "/dead-letters/<uuid:dead_letter_id>/redrive", scope="admin")
def redrive_one(view: View, dead_letter_id: uuid.UUID) -> Response:
    with unit_of_work() as uow:
        service.redrive_audited(uow, view.user, dead_letter_id, timeout=redrive_timeout())
    return redirect(f"{PREFIX}/dead-letters/{dead_letter_id}", outcome="redriven")


@page("POST", "/dead-letters/redrive-type", scope="admin")
def redrive_type(view: View) -> Response:
    """Every pending dead letter of one type, oldest first, each in its own transaction (a sink
    that refuses one leaves it pending and stops the run: the rest would be refused too)."""
    event_type = (view.request.form.get("type") or "").strip()
    if not event_type or len(event_type) > 200:
        raise ValidationFailed([{"in": "body", "field": "type", "message": "the event type, 1-200 characters",
                                 "code": "missing" if not event_type else "string_too_long"}])
    with unit_of_work() as uow:
        ids = [r.id for r in service.list_dead_letters(uow, status="pending", event_type=event_type,
                                                       limit=REDRIVE_ALL_LIMIT)][::-1]
    redriven = refused = skipped = 0
    for dead_letter_id in ids:
        try:
            with unit_of_work() as uow:
                service.redrive_audited(uow, view.user, dead_letter_id, timeout=redrive_timeout())
            redriven += 1
        except Conflict:
            skipped += 1  # re-driven meanwhile, or no known target
        except ServiceUnavailable:
            refused = len(ids) - redriven - skipped
            break
    log.info("dead letters re-driven by type", extra={"fields": {"event_type": event_type, "redriven": redriven,
                                                                 "skipped": skipped, "refused": refused}})
    outcome = f"redriven:{redriven},skipped:{skipped},refused:{refused}"
    return redirect(f"{PREFIX}/dead-letters", type=event_type, outcome=outcome)
