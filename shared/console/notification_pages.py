"""Notifications that did not go out: ``failed``, with ``outcome_unknown`` (the sender stopped
during the provider call: it may or may not have been delivered) told apart.

Read through ``shared.notify.store`` and audited as the API's notification reads
(``notifications.read``, with the patients listed). Nothing here resends: the API has no resend,
and an ``outcome_unknown`` must be checked with the provider and the patient first
(docs/notifications.md).
"""

from __future__ import annotations

from flask import Response

from shared import audit
from shared.console import forms
from shared.console.web import View, page
from shared.db import unit_of_work
from shared.notify import store

PAGE_SIZE = 50
SHOW = {"all": None, "outcome_unknown": True, "other": False}


@page("GET", "/notifications", scope="admin")
def notification_list(view: View) -> Response:
    q = forms.parse(view.request.args.to_dict(), forms.NotificationListQuery)
    with unit_of_work() as uow:
        rows = store.page_failed(uow, outcome_unknown=SHOW[q.show], before=q.before, limit=PAGE_SIZE)
        audit.record(uow, view.user, "notifications.read", [r.patient_id for r in rows], details={"returned": len(rows)})
        counts = store.failed_counts(uow)
    next_cursor = rows[-1].seq if len(rows) == PAGE_SIZE else None
    return view.render("notifications.html", rows=rows, q=q, counts=counts, next_cursor=next_cursor,
                       args=view.request.args.to_dict())
